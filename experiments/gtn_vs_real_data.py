"""GTN against both real-data baselines at the `cpu` scale (issue #8, part 3).

    TFDS_DATA_DIR=../shared/tfds python experiments/gtn_vs_real_data.py          # runs not yet done
    python experiments/gtn_vs_real_data.py --report                               # table only

Runs `gtnjax train` with `mnist.py:cpu` and `fashion_mnist.py:cpu` (the
defaults the meta-training study chose) for two meta-training seeds each,
evaluating fresh learners of the training architecture and of three it never
saw (on MNIST seed 0's teacher); then a population of two architectures during meta-training, and a
dataset-distillation teacher with the same budget (for the learning curves);
then the teachers' schedules tuned per learner, and two more unseen learners
on the population's teacher (`EVALUATIONS`).
Each run's `config.json`, `metrics.jsonl` and `summary.json` (and the
learned-schedule baseline's metrics) land in `results/gtn_vs_real_data/NAME/`;
finished runs are skipped, so the script resumes. `--report` writes
`results/gtn_vs_real_data/table.md`.
"""

from __future__ import annotations

import json
import os

import numpy as np
from gtnjax import rundir, stats

import runner
CPU = {name: os.path.join(runner.CONFIGS, f"{name}.py") + ":cpu"
       for name in ("mnist", "fashion_mnist")}
UNSEEN = "cnn_small,mlp,cnn_gap,cnn"   # cnn_small is the training learner; the rest are unseen
# A cell network of gtnjax.nas: a third architecture family neither teacher saw.
CELL = "cell:conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"
SUITE: runner.Suite = {
    "mnist_s0": (CPU["mnist"], {"seed": "0", "eval_learners": UNSEEN}),
    # The unseen learners are evaluated on MNIST seed 0's teacher only: together
    # they add ~12 minutes of evaluation on 2 cores.
    "fashion_mnist_s0": (CPU["fashion_mnist"], {"seed": "0"}),
    "mnist_s1": (CPU["mnist"], {"seed": "1"}),
    "fashion_mnist_s1": (CPU["fashion_mnist"], {"seed": "1"}),
    **{f"mnist_population_cnn_small_mlp_s{seed}": (CPU["mnist"], {
        "seed": seed, "learner": "cnn_small,mlp", "eval_learners": f"{UNSEEN},{CELL}"})
       for seed in ("0", "1", "2")},
    # The same with a small pooling-headed CNN in the population: do the unseen
    # pooling-headed networks (cnn_gap, the cell network) then gain too?
    "mnist_population_cnn_small_mlp_gap_s0": (CPU["mnist"], {
        "seed": "0", "learner": "cnn_small,mlp,cnn_small_gap",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}"}),
    # Held-out meta-training seeds (issue #22, registered before they ran):
    # seed 0 of MNIST is the study row that chose `population = 4`, so the
    # claim is restated on seeds no setting was chosen on, each with 10 fresh
    # learners (the standard error of each difference should be below half the
    # difference), reported under their own group, apart from s0 and s1.
    **{f"{dataset}_heldout_s{seed}": (CPU[dataset], {"seed": seed, "eval_seeds": "10"})
       for seed in ("2", "3", "4") for dataset in ("mnist", "fashion_mnist")},
    # The paper's horizon (issue #22 part 2, registered before they ran): T=32
    # inner steps at the `cpu` scale otherwise (B=32, cnn_small, population 4),
    # two meta-training seeds per data set, 10 fresh learners each. Added
    # before any of them finished (issue #22 part 3): MNIST's also evaluate
    # the unseen learners, the pooling-headed ones included, since "slow
    # starters need more steps" is the diagnosis to test.
    **{f"{dataset}_t32_s{seed}": (CPU[dataset], {
        "seed": seed, "inner_steps": "32", "eval_seeds": "10",
        **({"eval_learners": f"{UNSEEN},{CELL}"} if dataset == "mnist" else {})})
       for seed in ("0", "1") for dataset in ("mnist", "fashion_mnist")},
    # Issue #22 part 3, registered before it ran: the population with a
    # pooling network (as mnist_population_cnn_small_mlp_gap_s0) at T=32. At
    # T=8 no data teaches pooling-headed networks much (real data's best is
    # 0.28-0.33), and a teacher meta-trained on cnn_gap alone at T=16 teaches
    # it (Fashion-MNIST, issue #21's large_cnn teacher): does the horizon fix
    # the population's pooling member without losing the others?
    "mnist_population_cnn_small_mlp_gap_t32_s0": (CPU["mnist"], {
        "seed": "0", "inner_steps": "32", "learner": "cnn_small,mlp,cnn_small_gap",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}"}),
    # Issue #22 part 3, registered before it ran (2026-12-04): is it the
    # population or the horizon? At T=8 a pooling network in the population
    # is not taught (cnn_small_gap 0.193 vs real data 0.283), while #21's
    # teacher meta-trained on cnn_gap alone at T=16 (Fashion-MNIST) teaches
    # it. The same pooling network alone at T=8 decides: GTN ahead of both
    # baselines on cnn_small_gap (standard error below half the difference)
    # points at how the population's losses are combined; not ahead points at
    # the horizon (tested by mnist_population_cnn_small_mlp_gap_t32_s0).
    "mnist_alone_cnn_small_gap_s0": (CPU["mnist"], {
        "seed": "0", "learner": "cnn_small_gap", "eval_learners": "cnn_small_gap,cnn_gap",
        "eval_seeds": "10"}),
    # Issue #22 part 3, registered before it ran (2026-12-04): a proposed fix.
    # At the initial teacher of that population, cnn_small's meta-gradient is
    # 6x cnn_small_gap's and drives 86% of the mean gradient's direction
    # (experiments/population_gradients.py, results/population_gradients/).
    # population_gradient="balanced" rescales each architecture's gradient to
    # their mean norm. It fixes the population's pooling member if GTN is
    # ahead of both baselines on cnn_small_gap (standard error below half the
    # difference) while cnn_small, mlp and the unseen cnn stay ahead of both.
    "mnist_population_cnn_small_mlp_gap_balanced_s0": (CPU["mnist"], {
        "seed": "0", "learner": "cnn_small,mlp,cnn_small_gap", "population_gradient": "balanced",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    # Registered 2026-12-04 after mnist_alone_cnn_small_gap_s0 (a tie with
    # real data at T=8: even alone, 8 steps teach a pooling network little)
    # and before any balanced result: the balanced population at the horizon
    # where real data does teach pooling networks (0.68 / 0.50 at T=32), with
    # the same success rule as the T=8 balanced run, beside the registered
    # mnist_population_cnn_small_mlp_gap_t32_s0 (the mean's gradient).
    "mnist_population_cnn_small_mlp_gap_balanced_t32_s0": (CPU["mnist"], {
        "seed": "0", "inner_steps": "32", "learner": "cnn_small,mlp,cnn_small_gap",
        "population_gradient": "balanced",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    # Issue #22 part 3, registered 2026-12-04 before it ran, after
    # experiments/schedule_travel.py showed that no learned schedule at the
    # `cpu` scale could leave its initial value (lr 0.1, momentum 0.5) by more
    # than ~11%: Adam at meta_lr 0.001 moves a parameter ~0.11 in 200
    # meta-steps, and the schedules used all of it. The pooling networks'
    # best real-data setting is lr 0.1 with momentum 0.9 (effective step ~2x
    # cnn_small's best), out of that reach. Here the schedule gets the paper's
    # meta lr, 0.02 (budget ~2.2 in log space), the generator keeps 0.001, and
    # momentum is bounded by a sigmoid (the study's `official` row, log
    # momentum at meta lr 0.02, passed 1). No value was tuned. Success rule,
    # as for the balanced run: GTN ahead of both baselines on cnn_small_gap
    # (standard error below half the difference) while cnn_small, mlp and the
    # unseen cnn stay ahead of both; the unseen cnn_gap is reported beside it.
    "mnist_population_cnn_small_mlp_gap_free_schedule_s0": (CPU["mnist"], {
        "seed": "0", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
        "momentum_parameterisation": "sigmoid",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    # Registered 2026-12-04 with the run above, before either ran: the same,
    # with one learned schedule per architecture (`schedule_per_learner`; the
    # unseen learners get the rows' mean). The pooling networks' best
    # real-data step is ~5x cnn_small's, which one shared schedule cannot give
    # both. Same success rule; beside the shared free schedule, it is the
    # better fix if its cnn_small_gap gain over the constant baseline is larger
    # by more than twice the standard error of the two gains' difference.
    "mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0": (CPU["mnist"], {
        "seed": "0", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
        "momentum_parameterisation": "sigmoid", "schedule_per_learner": "true",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    # Registered 2026-12-04 after seed 0's result and before this ran: the
    # confirmation seed of one schedule per architecture. Seed 0 taught the
    # pooling member and the unseen cnn_gap, but the unseen cnn lost with the
    # rows' mean schedule and won with the schedule tuned for it on validation
    # (a rule chosen after that failure). Fixed here, before this seed:
    # unseen learners are judged with their schedule tuned on validation
    # (EVALUATIONS below, 10 learners). Success: GTN ahead of both baselines
    # (standard error below half the difference) on cnn_small_gap, cnn_small
    # and mlp with their own schedules, and on the unseen cnn and cnn_gap with
    # the tuned schedule.
    "mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1": (CPU["mnist"], {
        "seed": "1", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
        "momentum_parameterisation": "sigmoid", "schedule_per_learner": "true",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    # Registered 2026-12-05 before it ran: a third meta-training seed of one
    # schedule per architecture, since seed 1's cnn_small_gap clause passed by
    # a hair (standard error 0.020 against a bar of 0.021). The rule is seed
    # 1's, unchanged; with the same evaluations (EVALUATIONS below).
    "mnist_population_cnn_small_mlp_gap_schedule_per_learner_s2": (CPU["mnist"], {
        "seed": "2", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
        "momentum_parameterisation": "sigmoid", "schedule_per_learner": "true",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    # Registered 2026-12-05 before it ran: does the fix carry to the other
    # data set? The same population, schedule meta lr and rule as the MNIST
    # seeds (seed 1's), on Fashion-MNIST's `cpu` config, seed 0; the unseen
    # learners with their schedule tuned on validation (EVALUATIONS below).
    "fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0": (
        CPU["fashion_mnist"], {
            "seed": "0", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
            "momentum_parameterisation": "sigmoid", "schedule_per_learner": "true",
            "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}",
            "eval_seeds": "10"}),
    # Registered 2026-12-05 (eleventh session) before either ran: a second
    # Fashion-MNIST seed of one schedule per architecture (seed 1's rule,
    # unchanged; evaluations as Fashion seed 0's), and a fourth MNIST seed
    # with 20 fresh learners instead of 10. On MNIST GTN's mean led the
    # learned-schedule baseline on the pooling networks on every seed, but
    # with 10 learners that lead was about as large as its noise (seed 2
    # missed the rule on cnn_small_gap and the tuned unseen cnn_gap). Seed 3
    # asks whether the lead separates with twice the learners: the same rule
    # (standard error below half the difference, every clause), judged on 20
    # learners for the population and for the tuned unseen cnn and cnn_gap. It
    # is reported as its own seed, beside seeds 0-2, not pooled with them.
    "fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1": (
        CPU["fashion_mnist"], {
            "seed": "1", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
            "momentum_parameterisation": "sigmoid", "schedule_per_learner": "true",
            "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}",
            "eval_seeds": "10"}),
    "mnist_population_cnn_small_mlp_gap_schedule_per_learner_s3": (CPU["mnist"], {
        "seed": "3", "learner": "cnn_small,mlp,cnn_small_gap", "schedule_meta_lr": "0.02",
        "momentum_parameterisation": "sigmoid", "schedule_per_learner": "true",
        "eval_learners": "cnn_small,mlp,cnn_small_gap,cnn,cnn_gap", "eval_seeds": "20"}),
    # Registered 2026-12-05 before it ran: the fix at the paper's horizon.
    # At T=32 the mean-gradient population left its pooling member 0.160
    # behind real data (mnist_population_cnn_small_mlp_gap_t32_s0, its
    # schedule pinned by the meta lr). Seed 1's rule, unchanged, at
    # inner_steps 32; the unseen learners' schedules tuned on validation.
    "mnist_population_cnn_small_mlp_gap_schedule_per_learner_t32_s0": (CPU["mnist"], {
        "seed": "0", "inner_steps": "32", "learner": "cnn_small,mlp,cnn_small_gap",
        "schedule_meta_lr": "0.02", "momentum_parameterisation": "sigmoid",
        "schedule_per_learner": "true",
        "eval_learners": f"cnn_small,mlp,cnn_small_gap,cnn,cnn_gap,{CELL}", "eval_seeds": "10"}),
    "mnist_distillation_s0": (CPU["mnist"], {"seed": "0", "teacher": "distillation"}),
    # Dataset distillation learns raw pixels: at the generator's meta lr of
    # 0.001 they hardly move in 200 steps (the run above stays near chance), so
    # the baseline gets its own meta lr, chosen on the training-set probe
    # accuracy of the last 10% of meta-steps (`best_distillation`), not on test.
    **{f"mnist_distillation_meta_lr_{lr}_s0": (CPU["mnist"], {
        "seed": "0", "teacher": "distillation", "meta_lr": lr,
        "learned_schedule_baseline": "false"}) for lr in ("0.01", "0.03", "0.1", "0.3")},
}
# Evaluations of finished teachers (`gtnjax evaluate --tune-schedule`: no
# meta-training again). Each learner is scored as at the end of training and
# also with the teacher's schedule tuned for it on validation (lr scale x
# momentum, 8 settings; the real-data baseline gets 10): an unseen learner may
# need another step size than the teacher learned for its own. Beside the
# learners of the runs, more architectures meta-training never saw: the
# paper's larger CNN, and classic MNIST networks written as plain Flax modules
# outside gtnjax (experiments/outside_learners.py: no weight norm, no batch
# norm). With 5 fresh learners LeNet-5's gain was inside the spread, so the
# outside networks are also scored on 20 (the two added later were given 20
# before they were run).
OUTSIDE = "flax:outside_learners:"
LENET = OUTSIDE + "make_lenet5"
OUTSIDE_WINNERS = ((LENET, 20), (OUTSIDE + "make_lenet_300_100", 20),
                   (OUTSIDE + "make_two_conv_cnn", 20))
EVALUATIONS: dict[str, tuple[runner.Evaluation, ...]] = {
    "mnist_s0": tuple(UNSEEN.split(",")),
    "mnist_s1": ("cnn_small",),
    "fashion_mnist_s0": ("cnn_small",),
    "fashion_mnist_s1": ("cnn_small",),
    "mnist_population_cnn_small_mlp_s0": (
        *UNSEEN.split(","), CELL, "cnn_large", LENET, (LENET, 20),
        (OUTSIDE + "make_lenet_300_100", 20), (OUTSIDE + "make_two_conv_cnn", 20)),
    # A second and a third meta-training seed of the population teacher for
    # the unseen learners (each registered before it ran; the third before the
    # second's results were in).
    **{f"mnist_population_cnn_small_mlp_s{seed}": (
        *UNSEEN.split(","), CELL, "cnn_large", *OUTSIDE_WINNERS) for seed in ("1", "2")},
    # The unseen learners of the per-architecture schedule with their schedule
    # tuned on validation: for seed 0 after the fact (its cnn row was run
    # first, by hand, with this command's flags), for seed 1 its registered rule.
    # Added 2026-12-05, while seed 1 was evaluated and before any of these
    # ran: the three outside networks that, with cnn, are the four unseen
    # architectures the cnn_small+mlp population teaches on every seed (20
    # learners, as there). Issue #22 asks that a fix for the pooling networks
    # keeps those four: it does where GTN stays ahead of both baselines on each
    # of them on each seed (standard error below half the difference).
    **{f"mnist_population_cnn_small_mlp_gap_schedule_per_learner_s{seed}": (
        ("cnn", 10), ("cnn_gap", 10), (CELL, 10), *OUTSIDE_WINNERS) for seed in ("0", "1", "2")},
    **{name: (("cnn", 10), ("cnn_gap", 10), (CELL, 10)) for name in (
        "fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0",
        "fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1",
        "mnist_population_cnn_small_mlp_gap_schedule_per_learner_t32_s0")},
    # Seed 3's rule is judged on 20 learners; the cell network and the outside
    # networks (not in the rule) are left out to keep it to one session.
    "mnist_population_cnn_small_mlp_gap_schedule_per_learner_s3": (("cnn", 20), ("cnn_gap", 20)),
}
EVALUATE_FLAGS = ("--tune-schedule",)


def best_distillation(results_root: str) -> str | None:
  """The distillation run with the highest mean probe accuracy over its last
  10% of meta-steps (training-set probes, never the test split)."""
  scores = {}
  for name in SUITE:
    records = rundir.read_metrics(os.path.join(results_root, name, rundir.METRICS_FILE))
    if "distillation" in name and records:
      tail = records[-max(1, len(records) // 10):]
      scores[name] = float(np.mean([r["meta_accuracy"] for r in tail]))
  return max(scores, key=scores.get) if scores else None


def _fmt(values: list[float]) -> str:
  values = np.asarray(values)
  spread = f" ± {values.std(ddof=1):.3f}" if values.size > 1 else ""
  return f"{values.mean():.3f}{spread}"


def run_group(name: str) -> str:
  """A run's name without its meta-training seed: the runs pooled over seeds."""
  return name.rsplit("_s", 1)[0]


def paired_gains(results_root: str) -> dict[tuple[str, str], np.ndarray]:
  """{(run, evaluation file): GTN with its schedule tuned minus real data with
  its best constant schedule, learner by learner} (both columns train the same
  initialisations), for every `--tune-schedule` evaluation of the suite."""
  gains = {}
  for name in SUITE:
    folder = os.path.join(results_root, name)
    if not os.path.isdir(folder):
      continue
    for file in sorted(f for f in os.listdir(folder) if f.startswith("evaluate_")):
      with open(os.path.join(folder, file)) as f:
        per_learner = json.load(f)["per_learner"]
      for result in per_learner.values():
        if "gtn_tuned_schedule_test_accuracy" in result:
          gains[name, file] = (np.asarray(result["gtn_tuned_schedule_test_accuracy"]["values"])
                               - np.asarray(result["real_data_test_accuracy"]["values"]))
  return gains


def paired_report(results_root: str) -> list[str]:
  """Per run and evaluation: the paired gain's mean ± std (min, max), learners
  ahead, and a 95% percentile bootstrap of its mean (10,000 resamples, seed 0)."""
  lines = ["| run | evaluation | learners | paired GTN tuned − real, mean ± std (min, max) "
           "| ahead | 95% bootstrap of the mean |", "|---|---|---|---|---|---|"]
  for (name, file), gain in paired_gains(results_root).items():
    low, high = stats.bootstrap_interval(lambda a, b: float(np.mean(a - b)), gain,
                                           np.zeros_like(gain), num_resamples=10_000, seed=0)
    lines.append(f"| {name} | {file} | {gain.size} | {gain.mean():+.3f} ± "
                 f"{gain.std(ddof=1):.3f} ({gain.min():+.3f}, {gain.max():+.3f}) | "
                 f"{int((gain > 0).sum())} of {gain.size} | [{low:+.3f}, {high:+.3f}] |")
  return lines


def seeds_report(results_root: str) -> list[str]:
  """The paired gain over meta-training seeds, for every evaluation run on
  more than one seed of a run: each seed's mean gain, their mean ± std over
  seeds, the learners ahead in all seeds, and a 95% bootstrap of the mean over
  seeds that resamples learners within each seed (10,000 resamples, seed 0) —
  so it holds the learners' noise, not the seeds'; the std over seeds is the
  only measure of the seeds' noise."""
  by_group: dict[tuple[str, str], dict[str, np.ndarray]] = {}
  for (name, file), gain in paired_gains(results_root).items():
    by_group.setdefault((run_group(name), file), {})[name] = gain
  lines = ["| run | evaluation | meta seeds | learners per seed | mean gain per seed "
           "| mean ± std over seeds | ahead | 95% bootstrap over learners |",
           "|---|---|---|---|---|---|---|---|"]
  for (group, file), per_seed in by_group.items():
    if len(per_seed) < 2:
      continue
    rng = np.random.default_rng(0)  # per row, so a row does not change when others are added
    gains = list(per_seed.values())
    seed_means = np.asarray([g.mean() for g in gains])
    resampled = np.mean([g[rng.integers(0, g.size, (10_000, g.size))].mean(axis=1)
                         for g in gains], axis=0)
    low, high = np.percentile(resampled, [2.5, 97.5])
    ahead = sum(int((g > 0).sum()) for g in gains)
    total = sum(g.size for g in gains)
    lines.append(f"| {group} | {file} | {len(gains)} | {', '.join(str(g.size) for g in gains)} | "
                 f"{', '.join(f'{m:+.3f}' for m in seed_means)} | {seed_means.mean():+.3f} ± "
                 f"{seed_means.std(ddof=1):.3f} | {ahead} of {total} | [{low:+.3f}, {high:+.3f}] |")
  return lines


BASELINES = (("real_data_test_accuracy", "best constant lr"),
             ("real_data_learned_schedule_test_accuracy", "learned schedule"))


def _difference_rows(name: str, learner: str, result: dict, gtn_field: str) -> list[str]:
  """GTN (`gtn_field`) minus each real-data baseline of one learner's result,
  learner by learner (the columns train the same initialisations): the mean,
  its standard error, and whether that is below half the difference."""
  gtn = np.asarray(result[gtn_field]["values"])
  rows = []
  for field, label in BASELINES:
    if field not in result:
      continue
    difference = gtn - np.asarray(result[field]["values"])
    error = difference.std(ddof=1) / np.sqrt(difference.size)
    verdict = "yes" if error < abs(difference.mean()) / 2 else "**no**"
    rows.append(f"| {name} | {learner} | {difference.size} | {label} | "
                f"{difference.mean():+.3f} | {error:.3f} | {verdict} |")
  return rows


DIFFERENCE_HEADER = ["| run | learner | learners | baseline | GTN − baseline, mean "
                     "| standard error | SE < half the difference |",
                     "|---|---|---|---|---|---|---|"]


def difference_report(results_root: str) -> list[str]:
  """For the runs registered with 10 fresh learners (held-out seeds, T=32,
  one pooling network alone, the balanced population, the free schedules):
  GTN minus each real-data baseline with the standard error of the mean
  difference and whether it is below half the difference (issue #22's bar)."""
  lines = list(DIFFERENCE_HEADER)
  for name in SUITE:
    if not any(tag in name for tag in ("_heldout_", "_t32_", "_alone_", "_balanced_",
                                       "_free_schedule_", "_schedule_per_learner_")):
      continue
    path = os.path.join(results_root, name, rundir.SUMMARY_FILE)
    if not os.path.exists(path):
      continue
    for learner, result in rundir.read_json(path)["per_learner"].items():
      lines += _difference_rows(name, learner, result, "gtn_test_accuracy")
  return lines


def tuned_difference_report(results_root: str) -> list[str]:
  """The same bar for the per-architecture schedule's unseen learners with the
  schedule tuned on validation (the confirmation seed's registered rule):
  GTN with its tuned schedule minus each real-data baseline."""
  lines = list(DIFFERENCE_HEADER)
  for name in SUITE:
    if "_schedule_per_learner_" not in name:
      continue
    for learner, seeds in map(runner.split_evaluation, EVALUATIONS.get(name, ())):
      path = runner.evaluation_path(results_root, name, learner, seeds)
      if os.path.exists(path):
        for learner_name, result in rundir.read_json(path)["per_learner"].items():
          lines += _difference_rows(name, learner_name, result,
                                    "gtn_tuned_schedule_test_accuracy")
  return lines


def report(results_root: str) -> None:
  summaries = {}
  for name in SUITE:
    path = os.path.join(results_root, name, "summary.json")
    if os.path.exists(path):
      with open(path) as f:
        summaries[name] = json.load(f)
      for learner, seeds in map(runner.split_evaluation, EVALUATIONS.get(name, ())):
        extra = runner.evaluation_path(results_root, name, learner, seeds)
        if seeds is None and os.path.exists(extra):  # the table is over the run's learners
          with open(extra) as f:
            for learner_name, result in json.load(f)["per_learner"].items():
              summaries[name]["per_learner"].setdefault(learner_name, {}).update(result)
  lines = ["| data set / run | learner | meta seeds | GTN | GTN, schedule tuned "
           "| real data, best constant lr | real data, learned schedule | untrained teacher "
           "| real-data steps to match GTN |",
           "|---|---|---|---|---|---|---|---|---|"]
  groups: dict[tuple[str, str], list[dict]] = {}
  for name, summary in summaries.items():
    group = run_group(name)
    for learner, result in summary["per_learner"].items():
      groups.setdefault((group, learner), []).append(
          {**result, "inner_steps": summary["inner_steps"]})
  for (group, learner), results in groups.items():
    def column(field):
      if not all(field in r for r in results):
        return "—"
      return _fmt([r[field]["mean"] for r in results])
    def match(r):  # at T real data already matches: GTN is not ahead of it
      steps = r.get("real_data_steps_to_match")
      if steps is None:
        return f"> {16 * r['inner_steps']}"
      return f"≤ {steps} (not ahead)" if steps == r["inner_steps"] else str(steps)
    matches = ", ".join(match(r) for r in results)
    lines.append(f"| {group} | {learner} | {len(results)} | {column('gtn_test_accuracy')} | "
                 f"{column('gtn_tuned_schedule_test_accuracy')} | "
                 f"{column('real_data_test_accuracy')} | "
                 f"{column('real_data_learned_schedule_test_accuracy')} | "
                 f"{column('untrained_teacher_test_accuracy')} | "
                 f"{matches} |")
  best = best_distillation(results_root)
  if best:
    lines.append("")
    lines.append(f"Dataset distillation's meta lr chosen on training-set probes: {best}.")
  lines.append("")
  lines.append("Mean over meta-training seeds of each seed's mean over its fresh learners; "
               "± is the standard deviation over meta-training seeds.")
  lines += ["", "Learner by learner, the schedule tuned (`gtnjax evaluate --tune-schedule`):", "",
            *paired_report(results_root), "",
            "Over meta-training seeds (evaluations run on more than one seed):", "",
            *seeds_report(results_root), "",
            "Held-out seeds and T=32, each run's fresh learners paired:", "",
            *difference_report(results_root), "",
            "One schedule per architecture, unseen learners with the schedule tuned on "
            "validation, paired:", "", *tuned_difference_report(results_root)]
  with open(os.path.join(results_root, "table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  runner.main(__doc__, "gtn_vs_real_data", SUITE, report, EVALUATIONS, EVALUATE_FLAGS)
