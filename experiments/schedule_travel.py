"""How far did each learned inner-loop schedule move from its initial value?

    python experiments/schedule_travel.py            # writes results/schedule_travel/

Adam moves each parameter by about its learning rate per step, whatever the
gradient's size, so over a run a parameter can travel at most about the sum of
the meta learning rates, its "step budget" (with a few consecutive gradients of
one sign; Adam can exceed it only briefly after a sign change). The learned
schedule is log-parameterised (log lr; log momentum, or the logit of momentum
with `momentum_parameterisation="sigmoid"`), so the budget bounds log(lr / its
initial value) and the momentum's parameter likewise. A schedule whose travel
is close to its budget was still moving at full speed when meta-training ended:
its final value says which way the meta-gradient pointed, not where it would
settle.

For every committed run with a learned schedule (`results/*/*/summary.json`
with `learned_lr`, the GTN teacher's; and its learned-schedule real-data
baseline where it has one) this reads the final schedule from the summary and
the meta-training settings from `config.json`, and writes `travel.json` and
`table.md`. Reads committed files only; runs in seconds.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os

import numpy as np
import optax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step_budget(meta_lr: float, num_meta_steps: int, final_relative_lr: float,
                schedule_meta_lr: float = 0.0) -> float:
  """Sum over the run of the learning rate the schedule parameters are updated with
  (the cosine decay of `gtnjax.meta.make_optimizer`)."""
  lr = schedule_meta_lr or meta_lr
  decay = optax.cosine_decay_schedule(lr, num_meta_steps, alpha=final_relative_lr)
  return float(sum(decay(step) for step in range(num_meta_steps)))


def momentum_parameter(momentum: np.ndarray, parameterisation: str) -> np.ndarray:
  """The momentum in the space it is learned in (teacher.TeacherSpec.init)."""
  if parameterisation == "log":
    return np.log(momentum)
  return np.log(momentum / (1.0 - momentum))


def travel(lrs, momenta, config: dict) -> dict:
  """Largest change over the T steps of log lr and of the momentum's parameter,
  from their initial values. Step 0's momentum is left out: it multiplies a
  zero velocity, so it gets no gradient and never moves."""
  lrs, momenta = np.asarray(lrs, np.float64), np.asarray(momenta, np.float64)[1:]
  parameterisation = config.get("momentum_parameterisation", "log")
  init_momentum = np.asarray(config["init_inner_momentum"], np.float64)
  return {
      "lr_travel": float(np.max(np.abs(np.log(lrs / config["init_inner_lr"])))),
      "momentum_travel": float(np.max(np.abs(
          momentum_parameter(momenta, parameterisation)
          - momentum_parameter(init_momentum, parameterisation)))),
      "lr_range": [float(lrs.min()), float(lrs.max())],
      "momentum_range": [float(momenta.min()), float(momenta.max())],
  }


def run_rows(results_root: str) -> list[dict]:
  rows = []
  for path in sorted(glob.glob(os.path.join(results_root, "*", "*", "summary.json"))):
    folder = os.path.dirname(path)
    config_path = os.path.join(folder, "config.json")
    with open(path) as f:
      summary = json.load(f)
    if "learned_lr" not in summary or not os.path.exists(config_path):
      continue
    with open(config_path) as f:
      config = json.load(f)
    budget = step_budget(config["meta_lr"], config["num_meta_steps"],
                         config["final_relative_lr"], config.get("schedule_meta_lr", 0.0))
    run = os.path.relpath(folder, results_root)
    own = summary.get("learned_schedule_per_learner")  # one schedule per architecture
    schedules = ([(f"GTN, {name}'s", v["lr"], v["momentum"]) for name, v in own.items()] if own
                 else [("GTN", summary["learned_lr"], summary["learned_momentum"])])
    baseline = summary.get("real_data_learned_schedule_test_accuracy") or {}
    if "lr" in baseline and "momentum" in baseline:
      schedules.append(("real data, learned schedule", baseline["lr"], baseline["momentum"]))
    for teacher, lrs, momenta in schedules:
      moved = travel(lrs, momenta, config)
      rows.append({"run": run, "teacher": teacher, "meta_lr": config["meta_lr"],
                   "schedule_meta_lr": config.get("schedule_meta_lr", 0.0) or config["meta_lr"],
                   "num_meta_steps": config["num_meta_steps"], "budget": budget,
                   "lr_fraction_of_budget": moved["lr_travel"] / budget,
                   "momentum_fraction_of_budget": moved["momentum_travel"] / budget, **moved})
  return rows


def table(rows: list[dict]) -> str:
  lines = ["| run | schedule of | meta lr of the schedule | meta-steps | step budget | "
           "log-lr travel (share of budget) | momentum travel (share) | lr range | momentum range |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
        f"| {r['run']} | {r['teacher']} | {r['schedule_meta_lr']:g} | {r['num_meta_steps']} | "
        f"{r['budget']:.3f} | {r['lr_travel']:.3f} ({r['lr_fraction_of_budget']:.2f}) | "
        f"{r['momentum_travel']:.3f} ({r['momentum_fraction_of_budget']:.2f}) | "
        f"{r['lr_range'][0]:.3f}–{r['lr_range'][1]:.3f} | "
        f"{r['momentum_range'][0]:.3f}–{r['momentum_range'][1]:.3f} |")
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results", default=os.path.join(REPO, "results"))
  parser.add_argument("--out", default=os.path.join(REPO, "results", "schedule_travel"))
  args = parser.parse_args()
  rows = run_rows(args.results)
  if not rows:
    raise SystemExit(f"no run with a learned schedule under {args.results}")
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "travel.json"), "w") as f:
    json.dump(rows, f, indent=1)
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(table(rows))
  shares = np.array([max(r["lr_fraction_of_budget"], r["momentum_fraction_of_budget"])
                     for r in rows])
  print(table(rows))
  print(f"{len(rows)} schedules; larger of the two travels as a share of the step budget: "
        f"median {np.median(shares):.2f}, {np.sum(shares > 0.8)} of {len(rows)} above 0.8")
  if any(math.isnan(s) for s in shares):
    raise SystemExit("a schedule has a non-finite value; see travel.json")


if __name__ == "__main__":
  main()
