"""Few-step learning curves: test accuracy after each inner step 0..T (issue #8, part 4).

    python experiments/few_step_curves.py --runs runs/final/mnist_s0,runs/final/mnist_s1 \
        [--distillation runs/final/mnist_distill_s0,...] --out results/curves_mnist

For every GTN run (a `gtnjax train` workdir; several meta-training seeds are
averaged) fresh learners are trained on
  - the GTN curriculum with its learned schedule,
  - real data with the learned-schedule baseline's schedule (the run's cached
    `real_data` teacher, `gtnjax.baselines`),
  - real data with the best constant lr and momentum of the sweep,
  - (optionally) a dataset-distillation teacher meta-trained with the same budget,
and scored on the test split after every step. Writes `OUT/curves.json` and
`OUT/curves.png`: mean over meta-training seeds of the mean over 5 learners,
with the spread over meta-training seeds shaded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os

import jax
import numpy as np

from gtnjax import baselines, config as gconfig, evaluation, report, train


def curves_of_run(workdir: str, num_seeds: int, with_baselines: bool = True
                  ) -> dict[str, list[float]]:
  run, params, _ = train.load_teacher(workdir)
  config = run.config
  name = gconfig.learner_names(config)[0]
  spec = run.learner_spec(name)
  teacher_spec, own_params = run.teacher_for(name, params)
  out = {"gtn": evaluation.learning_curve(
      spec, run.dataset, jax.tree_util.Partial(teacher_spec.batches, own_params),
      seed=config.seed, num_seeds=num_seeds)["mean"]}
  if not with_baselines:
    return out
  learned = report.trained_learned_schedule(run)
  if learned is not None:
    baseline_spec, baseline_params = learned[0].teacher_for(name, learned[1])
    out["real_data_learned_schedule"] = evaluation.learning_curve(
        spec, run.dataset, jax.tree_util.Partial(baseline_spec.batches, baseline_params),
        seed=config.seed, num_seeds=num_seeds)["mean"]
  best = baselines.constant_schedule(run, spec.name, num_seeds)
  out["real_data_constant"] = evaluation.learning_curve(
      spec, run.dataset, functools.partial(
          evaluation.real_batches, num_classes=spec.num_classes, inner_steps=config.inner_steps,
          batch_size=config.inner_batch_size, lr=best["lr"], momentum=best["momentum"]),
      seed=config.seed, num_seeds=num_seeds)["mean"]
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", required=True, help="comma-separated GTN workdirs")
  parser.add_argument("--distillation", default="", help="comma-separated distillation workdirs")
  parser.add_argument("--out", required=True)
  parser.add_argument("--seeds", type=int, default=5, help="fresh learners per curve")
  args = parser.parse_args()
  per_run = [curves_of_run(w, args.seeds) for w in args.runs.split(",") if w]
  for w in (w for w in args.distillation.split(",") if w):
    per_run_distill = curves_of_run(w, args.seeds, with_baselines=False)
    per_run.append({"distillation": per_run_distill["gtn"]})
  names = sorted({name for r in per_run for name in r})
  summary = {}
  for name in names:
    rows = np.asarray([r[name] for r in per_run if name in r])
    summary[name] = {"mean": rows.mean(0).tolist(),
                     "std_over_meta_seeds": (rows.std(0, ddof=1) if len(rows) > 1
                                             else 0 * rows[0]).tolist(),
                     "meta_seeds": len(rows)}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "curves.json"), "w") as f:
    json.dump({"runs": args.runs.split(","), "distillation": args.distillation.split(","),
               "learners_per_curve": args.seeds, "curves": summary}, f, indent=1)

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.6))
  for name, curve in summary.items():
    mean, std = np.asarray(curve["mean"]), np.asarray(curve["std_over_meta_seeds"])
    steps = np.arange(len(mean))
    ax.plot(steps, mean, marker="o", ms=3, label=f"{name} (n={curve['meta_seeds']})")
    ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
  ax.set_xlabel("inner step")
  ax.set_ylabel("test accuracy")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "curves.png"), dpi=120)
  for name, curve in summary.items():
    print(name, " ".join(f"{v:.3f}" for v in curve["mean"]))


if __name__ == "__main__":
  main()
