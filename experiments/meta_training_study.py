"""What makes GTN data teach better than real data at a CPU scale (issue #8, part 2).

    TFDS_DATA_DIR=../shared/tfds python experiments/meta_training_study.py            # every run not yet done
    TFDS_DATA_DIR=../shared/tfds python experiments/meta_training_study.py --only base,official
    python experiments/meta_training_study.py --report                               # table + plots only

Each study run is one `gtnjax train` of `mnist.py:cpu` (T=8, B=32, cnn_small,
200 meta-steps, seed 0, one learner per meta-step: the `cpu` config as it was
before this study) with one or two fields changed, so the runs differ from
`base` in one factor at a time.
A run trains in `--workdir-root/NAME` (checkpoints: rerunning resumes where a
kill stopped it) and, when it ends, its `config.json`, `metrics.jsonl` and
`summary.json` are copied to `results/study_mnist/NAME/` (committed). Runs that
already have a summary there are skipped, so the script can be rerun until the
whole table is done, committing after each part.

`--report` writes `results/study_mnist/table.md` (test accuracy of fresh
learners on GTN data against the best constant-lr real-data baseline, the
same learners' validation accuracy where the run records it (`--rerun` adds
it to runs made before gtnjax did: each is deterministic, so the rerun also
checks its old test accuracies, printing the largest change), the
learned schedule at the end, skipped updates, clipping and saturation) and
`results/study_mnist/curves.png` (probe accuracy, learned mean lr, learned
max momentum, meta-gradient norm and saturated-pixel fraction per run).

`--code DIR` runs the gtnjax package found in DIR/src (default: this checkout),
so a long study can run from a frozen copy while the checkout changes.
"""

from __future__ import annotations

import os

from gtnjax import rundir

import runner

CONFIG = os.path.join(runner.CONFIGS, "mnist.py") + ":cpu"
OFFICIAL = {"meta_lr": "0.02", "init_inner_lr": "0.02", "grad_clip": "0"}

# name -> (overrides of mnist.py:cpu, what the run asks). Ordered by what each
# run can tell: the first ones decide where the study goes.
RUNS: dict[str, tuple[dict[str, str], str]] = {
    "base": ({}, "gtnjax defaults: meta lr 0.001, inner lr 0.1, clip 10, P=1, B=32, log momentum"),
    "official": (dict(OFFICIAL), "the official code's meta lr 0.02, inner lr 0.02, no clip"),
    "population_4": ({"population": "4"}, "4 learners per meta-step"),
    "meta_lr_0.01": ({"meta_lr": "0.01"}, "meta lr 0.01"),
    "meta_lr_0.003": ({"meta_lr": "0.003"}, "meta lr 0.003"),
    "official_sigmoid": ({**OFFICIAL, "momentum_parameterisation": "sigmoid"},
                         "official values, momentum bounded in (0, 1) by a sigmoid"),
    "meta_steps_600": ({"num_meta_steps": "600", "checkpoint_every": "100"}, "600 meta-steps"),
    "no_clip": ({"grad_clip": "0"}, "no gradient clipping"),
    "init_lr_0.02": ({"init_inner_lr": "0.02"}, "initial inner lr 0.02 (official)"),
    "batch_64": ({"inner_batch_size": "64"}, "inner batch 64 (its own real-data baseline)"),
    "sigmoid": ({"momentum_parameterisation": "sigmoid"}, "momentum through a sigmoid"),
    "meta_lr_0.03": ({"meta_lr": "0.03"}, "meta lr 0.03 (clip 10)"),
}


def chosen_validation(real_data: dict) -> float:
  """Validation accuracy of the (lr, momentum) the real-data sweep chose."""
  return next(s["validation_accuracy"] for s in real_data["sweep"]
              if (s["lr"], s["momentum"]) == (real_data["lr"], real_data["momentum"]))


def report(results_root: str) -> None:
  rows = []
  for name, (overrides, question) in RUNS.items():
    folder = os.path.join(results_root, name)
    summary = rundir.read_summary(folder)
    if summary is None:
      continue
    records = rundir.read_metrics(folder)
    config = rundir.load_config(folder)
    last = records[-1]
    clip = config.get("grad_clip", 0)
    clipped = sum(r["grad_norm"] > clip for r in records) / len(records) if clip else 0.0
    tail = records[-len(records) // 10:]
    rows.append((name, question, summary, last, clipped, records, tail))

  def acc(d):
    return f"{d['mean']:.3f} ± {d['std']:.3f}"

  lines = [
      "| run | what changes | GTN test acc. | GTN validation acc. | real data, best constant lr "
      "| its validation acc. | learned-schedule real data "
      "| final probe acc. (last 10%) | lr mean / max | momentum mean / max | updates clipped "
      "| skipped | saturated pixels | wall s |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, question, summary, last, clipped, records, tail in rows:
    learned = summary.get("real_data_learned_schedule_test_accuracy")
    validation = summary.get("gtn_validation_accuracy")
    probe = sum(r["meta_accuracy"] for r in tail) / len(tail)
    saturated = last.get("saturated_fraction")
    lines.append(
        f"| {name} | {question} | {acc(summary['gtn_test_accuracy'])} | "
        f"{acc(validation) if validation else '—'} | "
        f"{acc(summary['real_data_test_accuracy'])} | "
        f"{chosen_validation(summary['real_data_test_accuracy']):.3f} | "
        f"{acc(learned) if learned else '—'} | "
        f"{probe:.3f} | {last['inner_lr_mean']:.3f} / {last.get('inner_lr_max', float('nan')):.3f} | "
        f"{last['inner_momentum_mean']:.2f} / {last.get('inner_momentum_max', float('nan')):.2f} | "
        f"{clipped:.0%} | {summary.get('skipped_updates', 0)} | "
        f"{'—' if saturated is None else f'{saturated:.1%}'} | {summary['wall_seconds']:.0f} |")
  lines += ["", "Best run by GTN test accuracy: "
            + max(rows, key=lambda r: r[2]["gtn_test_accuracy"]["mean"])[0]
            + "; by GTN validation accuracy (runs that record it): "
            + (max((r for r in rows if "gtn_validation_accuracy" in r[2]),
                   key=lambda r: r[2]["gtn_validation_accuracy"]["mean"], default=("—",))[0])
            + ". Validation: the fresh learners of the test column, scored on the validation "
            "split (settings are compared on it); real data: the chosen setting's validation "
            "accuracy in the sweep that chose it."]
  with open(os.path.join(results_root, "table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fields = [("meta_accuracy", "final probe accuracy", False),
            ("inner_lr_mean", "learned lr (mean over steps)", True),
            ("inner_momentum_max", "learned momentum (max over steps)", False),
            ("grad_norm", "meta-gradient norm", True),
            ("saturated_fraction", "pixels with |x| > 1.9", False)]
  fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6))
  for i, (name, _, _, _, _, records, _) in enumerate(rows):
    # tab10's ten colours, then the same dashed: every run its own line.
    style = {"color": f"C{i % 10}", "linestyle": ("-", "--", ":")[i // 10 % 3]}
    steps = [r["step"] for r in records]
    for ax, (field, title, log) in zip(axes, fields):
      if field in records[0]:
        values = [r[field] for r in records]
        if field == "meta_accuracy":  # smoothed: one learner per step is noisy
          k = 10
          values = [sum(values[max(0, i - k + 1):i + 1]) / len(values[max(0, i - k + 1):i + 1])
                    for i in range(len(values))]
        ax.plot(steps, values, lw=1, label=name, **style)
      ax.set_title(title, fontsize=9)
      ax.set_xlabel("meta-step")
      if log:
        ax.set_yscale("log")
  axes[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(os.path.join(results_root, "curves.png"), dpi=110)
  plt.close(fig)


# The study compares runs against the constant-schedule baseline (cached, so
# computed once per batch size); the learned-schedule baseline, a second
# meta-training per run, is left to the runs that test the final settings.
# population=1 pins the base the study started from (mnist.py:cpu now uses the
# 4 that the study chose).
SUITE: runner.Suite = {
    name: (CONFIG, {"learned_schedule_baseline": "false", "population": "1", **overrides})
    for name, (overrides, _) in RUNS.items()}

if __name__ == "__main__":
  runner.main(__doc__, "study_mnist", SUITE, report)
