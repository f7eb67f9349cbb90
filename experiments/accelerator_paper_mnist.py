"""The `paper` MNIST run for as many meta-steps as fit in a time budget on one accelerator (issue #8, part 5).

    python experiments/accelerator_paper_mnist.py --minutes 8 --workdir /tmp/paper_mnist

What it does, printing as it goes:
  1. calibrates: `gtnjax train` of `mnist.py:paper` (T=32, B=128, the official
     code's choices) for a few meta-steps in a scratch folder, and reads the
     median seconds per meta-step (compile excluded) from its metrics.jsonl;
  2. picks N = the meta-steps that fit in `--minutes` after that compile time
     (at most the config's 2000), so the cosine meta-lr schedule is the one of
     an N-step run, not a cut-off 2000-step one;
  3. meta-trains N steps with a test-accuracy evaluation of 5 fresh learners
     every N/10 meta-steps (printed as `meta-step S: test accuracy A`);
  4. prints the final evaluation: GTN, real data with the best constant lr of
     the sweep, the untrained-teacher control and real-data steps to match.
     The learned-schedule baseline is off here: at the paper scale it is a
     second meta-training as long as the first.

On a machine without tensorflow-datasets (the lent accelerator) point
GTNJAX_CACHE_DIR at a folder holding the `mnist-3.0.1-*.npz` cache that
`gtnjax.data.load("mnist")` wrote on a machine with it; `gtnjax.data` falls back
to that file. The device tool's command (wheels for the two packages the
machine lacks in `.whl`, see the device README; the cache in `.device_cache`):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:$PWD/src GTNJAX_CACHE_DIR=$PWD/.device_cache \
      && PYTHONUNBUFFERED=1 python3 experiments/accelerator_paper_mnist.py --minutes 8 \
           --workdir /tmp/paper_mnist | tee $OUT/log.txt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from gtnjax import rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = os.path.join(REPO, "experiments", "configs", "mnist.py") + ":paper"


def _train(config: str, workdir: str, overrides: dict[str, object]) -> None:
  """`gtnjax train` in a subprocess, its output streamed through."""
  command = [sys.executable, "-m", "gtnjax.cli", "train", "--config", config,
             "--workdir", workdir, "--no-progress",
             *[f"--config.{k}={v}" for k, v in overrides.items()]]
  print("$", " ".join(command[3:]), flush=True)
  subprocess.run(command, check=True)


def _records(workdir: str) -> list[dict]:
  return rundir.read_metrics(workdir)


def calibrate(config: str, workdir: str, steps: int, extra: dict[str, object]) -> tuple[float, float]:
  """(seconds per meta-step, seconds to the first step's end) from a short run."""
  shutil.rmtree(workdir, ignore_errors=True)
  start = time.time()
  _train(config, workdir, {**extra, "num_meta_steps": steps, "log_every": 1, "eval_every": 0,
                           "learned_schedule_baseline": "false", "checkpoint_every": steps})
  total = time.time() - start
  seconds = [r["seconds"] for r in _records(workdir)]
  per_step = float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
  # Everything that is not a steady meta-step: start-up, data, compiles, and
  # the final evaluation of the short run (an upper bound on the real one's).
  overhead = total - per_step * len(seconds)
  return per_step, overhead


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--minutes", type=float, default=8.0, help="budget for the whole run")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--config", default=PAPER)
  parser.add_argument("--calibration-steps", type=int, default=6)
  parser.add_argument("--config-override", action="append", default=[], metavar="FIELD=VALUE",
                      help="extra config overrides for the calibration and the real run")
  args = parser.parse_args()
  extra = dict(o.split("=", 1) for o in args.config_override)

  import jax  # only to name the device in the log
  print(f"devices: {jax.devices()}", flush=True)
  per_step, overhead = calibrate(args.config, args.workdir + "_calibration",
                                 args.calibration_steps, extra)
  from gtnjax import config as gconfig
  max_steps = gconfig.load_config_file(args.config).num_meta_steps
  steps = int(max(1, min(max_steps, (args.minutes * 60 - 2 * overhead) // per_step)))
  print(f"calibration: {per_step:.3f} s per meta-step, {overhead:.0f} s start-up, compile "
        f"and evaluation; meta-training {steps} of the config's {max_steps} meta-steps",
        flush=True)

  start = time.time()
  _train(args.config, args.workdir, {**extra, "num_meta_steps": steps,
                                     "eval_every": max(1, steps // 10),
                                     "learned_schedule_baseline": "false"})
  for record in _records(args.workdir):
    if "test_accuracy" in record:
      print(f"meta-step {record['step']}: test accuracy {record['test_accuracy']:.4f}")
  summary = rundir.read_summary(args.workdir)
  keys = ("dataset", "learner", "inner_steps", "inner_batch_size", "meta_steps",
          "gtn_test_accuracy", "real_data_test_accuracy", "untrained_teacher_test_accuracy",
          "real_data_steps_to_match", "learned_lr", "learned_momentum", "skipped_updates")
  print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=1))
  print(f"run: {time.time() - start:.0f} s on {jax.devices()[0].device_kind}")


if __name__ == "__main__":
  main()
