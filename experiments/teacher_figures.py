"""What the teacher learned (issue #8, part 4): samples per step and class, schedules.

    python experiments/teacher_figures.py \
        --runs runs/gtn_vs_real_data/mnist_s0,runs/gtn_vs_real_data/mnist_s1 \
        --out results/teacher_mnist

For each finished `gtnjax train` workdir: `OUT/<run>_samples.png` (one row per
inner step, one column per class: the first image of the curriculum of
`gtnjax export` whose target's argmax is that class). For all runs together:
`OUT/schedules.png` and `OUT/schedules.json`, the learned per-step learning
rate and momentum beside those of the run's learned-schedule real-data baseline
(when it has been trained), and per step the fractions of generated pixels
below and above the real pixel range [0, 1] (by more than 0.05) and the mean
confidence of the targets (largest class probability; 1.0 for one-hot labels).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from gtnjax import export, report, train, visualize


def describe_run(workdir: str, out: str) -> dict:
  run, params, step = train.load_teacher(workdir)
  arrays = export.curriculum_arrays(run, params)
  name = os.path.basename(os.path.normpath(workdir))
  grid = visualize.sample_grid(arrays["x"], arrays["y"], arrays["mean"], arrays["std"],
                               max_steps=run.config.inner_steps)
  visualize.save_png(grid, os.path.join(out, f"{name}_samples.png"))
  # Back to pixel units, where real images lie in [0, 1].
  pixels = arrays["x"] * arrays["std"] + arrays["mean"]
  record = {
      "workdir": workdir, "checkpoint_step": int(step), "dataset": run.config.dataset,
      "lr": arrays["lr"].tolist(), "momentum": arrays["momentum"].tolist(),
      "pixels_below_0": np.mean(pixels < -0.05, axis=(1, 2, 3, 4)).tolist(),
      "pixels_above_1": np.mean(pixels > 1.05, axis=(1, 2, 3, 4)).tolist(),
      "target_confidence": arrays["y"].max(-1).mean(-1).tolist(),
  }
  learned = report.trained_learned_schedule(run)
  if learned is not None:
    baseline_run, baseline_params = learned
    baseline = export.curriculum_arrays(baseline_run, baseline_params)
    record["real_data_learned_schedule"] = {"lr": baseline["lr"].tolist(),
                                            "momentum": baseline["momentum"].tolist()}
  return record


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", required=True, help="comma-separated finished workdirs")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  records = {os.path.basename(os.path.normpath(w)): describe_run(w, args.out)
             for w in args.runs.split(",") if w}
  with open(os.path.join(args.out, "schedules.json"), "w") as f:
    json.dump(records, f, indent=1)

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  for i, (name, r) in enumerate(records.items()):
    steps = np.arange(1, len(r["lr"]) + 1)
    for ax, key in zip(axes, ("lr", "momentum")):
      ax.plot(steps, r[key], marker="o", ms=3, color=f"C{i}", label=f"GTN {name}")
      if "real_data_learned_schedule" in r:
        ax.plot(steps, r["real_data_learned_schedule"][key], ls="--", color=f"C{i}",
                label=f"real data, learned ({name})")
  for ax, title in zip(axes, ("learned learning rate", "learned momentum")):
    ax.set_xlabel("inner step")
    ax.set_title(title, fontsize=9)
  axes[1].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "schedules.png"), dpi=120)
  for name, r in records.items():
    print(name, "lr", np.round(r["lr"], 3), "momentum", np.round(r["momentum"], 3))
    if "real_data_learned_schedule" in r:
      s = r["real_data_learned_schedule"]
      print(" " * len(name), "real-data learned: lr", np.round(s["lr"], 3),
            "momentum", np.round(s["momentum"], 3))
    print(" " * len(name), "pixels below 0", np.round(r["pixels_below_0"], 3),
          "above 1", np.round(r["pixels_above_1"], 3),
          "target confidence", np.round(r["target_confidence"], 3))


if __name__ == "__main__":
  main()
