"""Issue #21 target (ii) at matched wall-clock cost: real data at as many steps
as the GTN proxy's cost buys, against the GTN proxy.

    TFDS_DATA_DIR=../shared/tfds python experiments/nas_matched_cost.py
    python experiments/nas_study.py --confirm large_cnn   # the table with this comparator

Registered in `results/nas_study/PLAN.md` (fifth session) before it ran:
  1. per-candidate seconds of the GTN proxy (the default teacher, read from
     `--teacher`, a finished `gtnjax nas` teacher) and of the real-data proxy
     at each of STEP_GRID steps, timed side by side in this process, each the
     median of 3 compiled runs (compilation excluded, the validation scoring
     included in both), median over the first 3 ground-truth candidates as
     `gtnjax.nas.scoring.proxy_costs` does; S* = the largest step count whose
     cost is at most GTN's (`timing.json`);
  2. S*'s peak lr chosen on validation for the fixed cell, as
     `scoring.choose_real_lr` does (`real_proxy_lr.json`);
  3. real data at S* scored on every candidate (`proxies.csv`, resumable; one
     compiled program for all of them, the masked cell network);
  4. `summary.json` in the shape `nas_study.py` reads comparators from, so
     that `nas_study.py --confirm` pairs GTN with it on the confirmation half.
Everything lands in `results/nas_study/matched_cost/`. Run it with nothing
else on the machine: step 1 is a timing. `--steps N --out DIR` scores real
data at N steps instead (a sensitivity check beside the registered one,
reusing its timing).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import data, rundir, train
from gtnjax.nas import config as nas_config
from gtnjax.nas import ground_truth, proxies, scoring, space

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
OUT = os.path.join(ROOT, "results", "nas_study", "matched_cost")
STEP_GRID = (16, 32, 48, 64, 80, 96, 112, 128)
COLUMN = "real_matched_cost"   # the comparator's column, as nas_study.py names it
TIMING_REPEATS = 3


def _seconds(fn, args) -> float:
  """Median of TIMING_REPEATS runs of `fn` compiled beforehand."""
  compiled = fn.lower(*args).compile()
  times = []
  for _ in range(TIMING_REPEATS):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def _program(config, spec, teacher_spec, proxy: str, steps: int):
  """One training proxy as `gtnjax nas` compiles it; `steps` is the real-data
  proxy's step count (the GTN proxy takes `config.gtn_steps`)."""
  return jax.jit(lambda encoding, *args: proxies.training_scores(
      spec, encoding, teacher_spec, *args, proxies=(proxy,), gtn_steps=config.gtn_steps,
      long_steps=steps, batch_size=config.teacher.inner_batch_size,
      gtn_scoring=scoring.gtn_scoring(config)))


def matched_steps(seconds: dict[str, float]) -> int:
  """The registered rule: the largest step count of STEP_GRID whose real-data
  proxy costs at most the GTN proxy (`seconds`: "gtn" and "real_<steps>")."""
  affordable = [s for s in STEP_GRID if seconds[f"real_{s}"] <= seconds["gtn"]]
  if not affordable:
    raise SystemExit(f"real data at {STEP_GRID[0]} steps costs more than GTN ({seconds}): "
                     "no step count of the grid matches")
  return max(affordable)


def measure_costs(config, context, rows, arrays) -> dict:
  """Step 1: seconds per candidate of GTN and of real data at each step count."""
  per: dict[str, list[float]] = {}
  for row in rows[:config.cost_candidates]:
    spec, encoding = scoring.candidate_network(config, space.from_string(row["encoding"]),
                                               context.dataset)
    key = scoring.proxy_key(row["index"])
    args = (encoding, context.teacher_params, context.untrained_params, key, *arrays,
            0.05, 0.05)  # lr only scales the update; it does not change the work
    per.setdefault("gtn", []).append(
        _seconds(_program(config, spec, context.teacher_spec, "gtn", STEP_GRID[0]), args))
    for steps in STEP_GRID:
      per.setdefault(f"real_{steps}", []).append(
          _seconds(_program(config, spec, context.teacher_spec, "real_9x_steps", steps), args))
    jax.clear_caches()
  seconds = {name: float(np.median(v)) for name, v in per.items()}
  return {"seconds": seconds, "per_candidate": per, "matched_steps": matched_steps(seconds),
          "candidates": [r["index"] for r in rows[:config.cost_candidates]],
          "machine": f"{jax.default_backend()}:{jax.devices()[0].device_kind}"}


def score_all(config, context, rows, arrays, steps: int, lr: float, path: str,
              column: str) -> None:
  """Step 3: real data at `steps` on every candidate, appended row by row."""
  done = set()
  if os.path.exists(path):
    with open(path, newline="") as f:
      done = {int(r["index"]) for r in csv.DictReader(f)}
  todo = [r for r in rows if r["index"] not in done]
  with open(path, "a", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=("index", "encoding", column, "seconds"))
    if not done:
      writer.writeheader()
    for n, row in enumerate(todo):
      t0 = time.time()
      spec, encoding = scoring.candidate_network(config, space.from_string(row["encoding"]),
                                                 context.dataset)
      # Called directly (jitted, static settings): the masked network's one
      # program serves every candidate.
      score = proxies.training_scores(
          spec, encoding, context.teacher_spec, context.teacher_params,
          context.untrained_params, scoring.proxy_key(row["index"]), *arrays, lr, lr,
          proxies=("real_9x_steps",), gtn_steps=config.gtn_steps, long_steps=steps,
          batch_size=config.teacher.inner_batch_size,
          gtn_scoring=scoring.gtn_scoring(config))["real_9x_steps"]
      writer.writerow({"index": row["index"], "encoding": row["encoding"],
                       column: float(score), "seconds": round(time.time() - t0, 3)})
      f.flush()
      if (n + 1) % 25 == 0 or n + 1 == len(todo):
        print(f"[{n + 1}/{len(todo)}] real data at {steps} steps", flush=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=os.path.join(ROOT, "experiments", "configs",
                                                       "nas_fmnist.py"))
  parser.add_argument("--teacher", default=os.path.join(ROOT, "runs", "nas_fmnist", "teacher"),
                      help="a finished teacher of this config (gtnjax nas's WORKDIR/teacher)")
  parser.add_argument("--ground-truth", default=os.path.join(ROOT, "results", "nas_fmnist",
                                                             "ground_truth.csv"))
  parser.add_argument("--out", default=OUT)
  parser.add_argument("--steps", type=int, default=None,
                      help="score real data at this many steps instead of the matched count "
                      "(a sensitivity check, not the registered comparison; use another --out)")
  args = parser.parse_args()
  config = nas_config.load(args.config)
  nas_config.validate(config)
  rundir.check_config(args.teacher, config.teacher)  # this config's teacher, or stop now
  data.check_available(config.dataset)
  os.makedirs(args.out, exist_ok=True)
  dataset = data.load(config.dataset)
  rows = ground_truth.read_table(args.ground_truth)
  teacher_run, teacher_params, _ = train.load_teacher(args.teacher)
  context = scoring.ProxyContext(config, dataset, teacher_run.teacher_spec, teacher_params,
                                 teacher_run.teacher_spec.init(teacher_run.keys()[0]), {})
  arrays = tuple(jnp.asarray(a) for a in (dataset.train_images, dataset.train_labels,
                                          dataset.validation_images, dataset.validation_labels))
  # A sensitivity run (--steps) reuses the registered run's timing.
  timing_path = os.path.join(OUT if args.steps else args.out, "timing.json")
  timing = rundir.read_json(timing_path)
  if timing is None and args.steps:
    raise SystemExit(f"no {timing_path}: run the registered comparison (without --steps) first")
  if timing is None:
    timing = measure_costs(config, context, rows, arrays)
    rundir.write_json(timing_path, timing)
  steps = args.steps or timing["matched_steps"]
  print(f"seconds per candidate: {json.dumps(timing['seconds'])}; matched: "
        f"{timing['matched_steps']} steps; scoring {steps}")
  # Step 2: choose_real_lr picks the lr of gtn_steps and of gtn_steps x
  # long_proxy_factor steps; the factor makes the second S*.
  lr_config = nas_config.load(args.config)
  lr_config.long_proxy_factor = steps // config.gtn_steps
  if lr_config.long_proxy_factor * config.gtn_steps != steps:
    raise SystemExit(f"{steps} steps is not a multiple of gtn_steps {config.gtn_steps}")
  lr = scoring.choose_real_lr(lr_config, teacher_run, dataset, args.out, print)["real_9x_steps"]
  column = f"real_{steps}_steps" if args.steps else COLUMN
  score_all(config, context, rows, arrays, steps, lr, os.path.join(args.out, "proxies.csv"),
            column)
  rundir.write_json(os.path.join(args.out, "summary.json"), {
      "proxies": {column: {"proxy_seconds": timing["seconds"][f"real_{steps}"],
                           "learner_steps": steps, "peak_lr": lr}},
      "gtn_seconds_same_timing": timing["seconds"]["gtn"]})


if __name__ == "__main__":
  main()
