"""Soak test: many meta-steps of a small config; RSS over time and compilations.

    pip install -e '.[benchmarks]'   # psutil
    python benchmarks/soak.py --steps 1000 --out benchmarks/results/soak.json

Runs the real training loop (`gtnjax.report.train_and_evaluate`: metrics file, TensorBoard,
checkpoints every 100 steps) on the digits test scale and samples the process's
resident memory every `--every` meta-steps from a background thread. Counts the
XLA compilations that happen after the first meta-step from JAX's compile log:
a healthy loop compiles its step once and never again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CompileCounter(logging.Handler):
  def __init__(self):
    super().__init__()
    self.events: list[tuple[float, str]] = []

  def emit(self, record):
    message = record.getMessage()
    if "Finished XLA compilation" in message:
      self.events.append((time.time(), message.split("\n")[0][:160]))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--every", type=float, default=2.0, help="seconds between RSS samples")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()

  import jax
  jax.config.update("jax_log_compiles", True)
  counter = CompileCounter()
  jax_logger = logging.getLogger("jax")
  jax_logger.addHandler(counter)
  jax_logger.setLevel(logging.WARNING)
  jax_logger.propagate = False  # count compilations without printing each one

  from gtnjax import config as gconfig, report
  config = gconfig.load_config_file(os.path.join(REPO, "experiments", "configs", "digits.py")
                                    + ":test")
  config.num_meta_steps = args.steps
  config.checkpoint_every = 100
  config.eval_seeds = 2

  process = psutil.Process()
  samples: list[tuple[float, float, int]] = []
  stop = threading.Event()
  workdir = tempfile.mkdtemp(prefix="gtnjax_soak_")
  metrics_path = os.path.join(workdir, "metrics.jsonl")

  def sample():
    while not stop.is_set():
      lines = sum(1 for _ in open(metrics_path)) if os.path.exists(metrics_path) else 0
      samples.append((time.time(), process.memory_info().rss / 2**20, lines))
      stop.wait(args.every)

  thread = threading.Thread(target=sample, daemon=True)
  start = time.time()
  thread.start()
  summary = report.train_and_evaluate(config, workdir, progress=False)
  stop.set()
  thread.join()

  # Compilations between the first and the last meta-step; the evaluation
  # after the loop compiles its own functions and is not counted.
  first_step_done = next((t for t, _, n in samples if n >= 1), start)
  loop_done = next((t for t, _, n in samples if n >= args.steps), time.time())
  late = [(t, m) for t, m in counter.events if first_step_done < t < loop_done]
  in_loop = [(t, rss, n) for t, rss, n in samples if n >= 1]
  tenth = max(1, len(in_loop) // 10)
  early = sum(r for _, r, _ in in_loop[:tenth]) / tenth
  final = sum(r for _, r, _ in in_loop[-tenth:]) / tenth
  result = {
      "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
      "meta_steps": args.steps,
      "wall_seconds": time.time() - start,
      "rss_mib_first_tenth_of_loop": early,
      "rss_mib_last_tenth_of_loop": final,
      "rss_growth_mib": final - early,
      "rss_mib_max": max(r for _, r, _ in samples),
      "compilations_total": len(counter.events),
      "compilations_during_loop_after_first_step": len(late),
      "late_compilations": [m for _, m in late][:20],
      "rss_samples": [{"seconds": round(t - start, 1), "rss_mib": round(r, 1), "step": n}
                      for t, r, n in samples],
      "gtn_test_accuracy": summary["gtn_test_accuracy"]["mean"],
  }
  print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=1))
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
