"""The experiment scripts' reports, run on a copy of the committed results."""

import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pytest

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "experiments")
RESULTS = os.path.join(os.path.dirname(__file__), "..", "results", "gtn_vs_real_data")


def _gtn_vs_real_data_module():
  sys.path.insert(0, EXPERIMENTS)  # the script imports its sibling `runner`
  try:
    path = os.path.join(EXPERIMENTS, "gtn_vs_real_data.py")
    spec = importlib.util.spec_from_file_location("gtn_vs_real_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    sys.path.remove(EXPERIMENTS)
  return module


def test_gtn_vs_real_data_seeds_report_pools_each_evaluation_over_meta_seeds(tmp_path):
  report = _gtn_vs_real_data_module()
  shutil.copytree(RESULTS, tmp_path / "results")
  lines = report.seeds_report(str(tmp_path / "results"))
  rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]): line
          for line in lines[2:]}
  # Each row pools one evaluation over every seed of a run that has it, and
  # an evaluation run on one seed only has no row.
  seeds_of = {}
  for name in report.SUITE:
    folder = tmp_path / "results" / name
    for file in (os.listdir(folder) if folder.is_dir() else ()):
      if file.startswith("evaluate_"):
        seeds_of.setdefault((name.rsplit("_s", 1)[0], file), []).append(name)
  assert set(rows) == {key for key, names in seeds_of.items() if len(names) > 1}
  assert ("mnist", "evaluate_cnn_small.json") in rows
  for (group, file), names in seeds_of.items():
    if len(names) < 2:
      continue
    gains = []
    for name in names:  # the per-seed gains, recomputed from the JSON here
      with open(tmp_path / "results" / name / file) as f:
        (result,) = json.load(f)["per_learner"].values()
      gains.append(np.subtract(result["gtn_tuned_schedule_test_accuracy"]["values"],
                               result["real_data_test_accuracy"]["values"]))
    means = [g.mean() for g in gains]
    cells = [c.strip() for c in rows[group, file].strip("|").split("|")]
    assert cells[2] == str(len(names))
    assert cells[3] == ", ".join(str(g.size) for g in gains)
    assert cells[4] == ", ".join(f"{m:+.3f}" for m in means)
    assert cells[5] == f"{np.mean(means):+.3f} ± {np.std(means, ddof=1):.3f}"
    assert cells[6] == f"{sum(int((g > 0).sum()) for g in gains)} of {sum(g.size for g in gains)}"
    # The 95% interval, bootstrapped here with another generator: resample
    # learners within each seed, average the seed means. Its
    # Monte Carlo error at 10,000 resamples is ~0.03 bootstrap standard errors
    # (allowed: 0.1), plus 0.0005 of rounding; a 90% interval (0.3 standard
    # errors inside), or one over seeds, lies outside.
    rng = np.random.default_rng(12345)
    draws = np.mean([rng.choice(g, (10_000, g.size)).mean(axis=1) for g in gains], axis=0)
    expected = np.percentile(draws, [2.5, 97.5])
    low, high = (float(v) for v in cells[7].strip("[]").split(","))
    np.testing.assert_allclose([low, high], expected, rtol=0,
                               atol=0.0005 + 0.1 * draws.std())
  # `--report` writes the table with this section.
  report.report(str(tmp_path / "results"))
  text = (tmp_path / "results" / "table.md").read_text()
  assert "\n".join(lines) in text


def test_tuned_difference_report_judges_the_tuned_schedule_against_both_baselines():
  """The per-architecture schedule's registered rule for unseen learners: each
  row is GTN with its tuned schedule minus one baseline, learner by learner,
  recomputed here from the committed evaluation files."""
  report = _gtn_vs_real_data_module()
  lines = report.tuned_difference_report(RESULTS)
  assert lines[:2] == report.DIFFERENCE_HEADER
  rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
  assert rows, "the per-architecture runs' tuned evaluations are committed"
  labels = dict((label, field) for field, label in report.BASELINES)
  for name, learner, count, label, mean, error, verdict in rows:
    files = [f for f in os.listdir(os.path.join(RESULTS, name)) if f.startswith("evaluate_")]
    for file in files:
      with open(os.path.join(RESULTS, name, file)) as f:
        result = json.load(f)["per_learner"].get(learner)
      if result is not None and len(result["real_data_test_accuracy"]["values"]) == int(count):
        break
    difference = np.subtract(result["gtn_tuned_schedule_test_accuracy"]["values"],
                             result[labels[label]]["values"])
    assert mean == f"{difference.mean():+.3f}"
    standard_error = difference.std(ddof=1) / np.sqrt(difference.size)
    assert error == f"{standard_error:.3f}"
    assert verdict == ("yes" if standard_error < abs(difference.mean()) / 2 else "**no**")


def _nas_study_module():
  path = os.path.join(EXPERIMENTS, "nas_study.py")
  spec = importlib.util.spec_from_file_location("nas_study", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_nas_study_confirmation_report_scores_a_variant_against_committed_comparators(
    tmp_path, monkeypatch):
  """The path `nas_study.py --confirm` runs once: a variant's confirmation-half
  scores against the committed ground truth and comparators. A variant whose
  scores are the ground truth itself has Spearman 1, and its paired difference
  with a comparator is 1 minus the comparator's Spearman."""
  from scipy import stats as scipy_stats
  study = _nas_study_module()
  monkeypatch.setattr(study, "STUDY", str(tmp_path))
  truth = {i: r for i, r in study._read_scores(study.GROUND_TRUTH).items()
           if i in study.CONFIRMATION}
  folder = tmp_path / "confirmation"
  os.makedirs(folder / "large_cnn")
  with open(folder / "large_cnn" / "scores.csv", "w") as f:
    f.write(",".join(study.SCORE_COLUMNS) + "\n")
    for i, row in truth.items():
      f.write(f"{i},{row['encoding']},{row['val_acc_seed0']},0.5\n")
  lines = study.table(["large_cnn", "real_same_steps"], study.CONFIRMATION, "t", str(folder))
  cells = [c.strip() for c in lines[4].strip("|").split("|")]
  assert cells[0] == "large_cnn" and cells[2] == "150"
  assert cells[3].startswith("+1.000 [+1.000, +1.000]")
  assert cells[6] == "0.50"
  real = study._column("real_same_steps")[0]
  common = sorted(set(truth) & set(real))
  rho = scipy_stats.spearmanr([real[i] for i in common],
                              [float(truth[i]["val_acc_seed0"]) for i in common])[0]
  (line,) = [l for l in study.paired_lines("large_cnn", ["real_same_steps"],
                                           study.CONFIRMATION, str(folder)) if "minus" in l
             and "real_same_steps" in l]
  assert f"({len(common)} candidates): {1 - rho:+.3f}" in line


def test_matched_cost_rule_and_its_committed_comparison():
  """The registered rule of nas_matched_cost.py (the largest real-data step
  count costing at most GTN's), on made-up and on the committed timings, and
  its comparator as nas_study.py reads it: every candidate, scored at the
  step count the rule chose."""
  path = os.path.join(EXPERIMENTS, "nas_matched_cost.py")
  spec = importlib.util.spec_from_file_location("nas_matched_cost", path)
  matched = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(matched)
  seconds = {"gtn": 0.5, **{f"real_{s}": 0.3 + s / 200 for s in matched.STEP_GRID}}
  assert matched.matched_steps(seconds) == 32                    # 0.46 <= 0.5 < 0.54
  seconds["real_80"] = 0.45                                       # noise: a later one cheaper
  assert matched.matched_steps(seconds) == 80
  with pytest.raises(SystemExit, match="costs more than GTN"):
    matched.matched_steps({**seconds, "gtn": 0.1})
  with open(os.path.join(os.path.dirname(matched.OUT), "matched_cost", "timing.json")) as f:
    timing = json.load(f)
  assert timing["matched_steps"] == matched.matched_steps(timing["seconds"])
  study = _nas_study_module()
  scores, _ = study._column("real_matched_cost")
  assert sorted(scores) == list(range(300))
  with open(os.path.join(os.path.dirname(matched.OUT), "matched_cost", "summary.json")) as f:
    assert json.load(f)["proxies"]["real_matched_cost"]["learner_steps"] == timing["matched_steps"]


def test_schedule_travel_reads_the_committed_schedules_and_their_step_budget():
  """experiments/schedule_travel.py on the committed runs: the budget is the
  sum of the cosine-decayed meta lr (0.110 at meta lr 0.001 over 200 steps),
  and RESULTS.md's reading holds — every generator teacher of gtn_vs_real_data
  whose schedule shares meta lr 0.001 moved its log lr by 0.9 of that budget
  or more."""
  sys.path.insert(0, EXPERIMENTS)
  try:
    import schedule_travel
  finally:
    sys.path.remove(EXPERIMENTS)
  np.testing.assert_allclose(schedule_travel.step_budget(0.001, 200, 0.1), 0.110, atol=5e-4)
  assert schedule_travel.step_budget(0.001, 200, 0.1, schedule_meta_lr=0.02) == pytest.approx(
      20 * schedule_travel.step_budget(0.001, 200, 0.1))
  rows = schedule_travel.run_rows(os.path.dirname(RESULTS))
  bound = [r for r in rows if r["run"].startswith("gtn_vs_real_data/") and r["teacher"] == "GTN"
           and r["schedule_meta_lr"] == 0.001 and "distillation" not in r["run"]]
  assert len(bound) >= 20
  assert min(r["lr_fraction_of_budget"] for r in bound) >= 0.9
  by_run = {r["run"]: r for r in bound}
  alone = by_run["gtn_vs_real_data/mnist_alone_cnn_small_gap_s0"]
  assert alone["momentum_range"][1] < 0.56  # the pooling network's 0.9 stayed out of reach


def test_a_rerun_reports_its_largest_test_change_and_the_study_its_validation_column(tmp_path):
  sys.path.insert(0, EXPERIMENTS)
  try:
    import meta_training_study
    import runner
  finally:
    sys.path.remove(EXPERIMENTS)
  folder = os.path.join(EXPERIMENTS, "..", "results", "study_mnist")
  shutil.copytree(folder, tmp_path / "study")
  before = json.load(open(tmp_path / "study" / "base" / "summary.json"))
  assert runner.largest_change(before, before) == 0.0
  after = json.loads(json.dumps(before))
  after["per_learner"]["cnn_small"]["gtn_test_accuracy"]["values"][2] += 0.25
  assert runner.largest_change(before, after) == pytest.approx(0.25)
  # The results a rerun replaces are kept, once, so numbers quoted from them stay checkable.
  shutil.rmtree(tmp_path / "study" / "base" / runner.PREVIOUS, ignore_errors=True)
  runner.keep_previous(str(tmp_path / "study" / "base"))
  json.dump(after, open(tmp_path / "study" / "base" / "summary.json", "w"))
  runner.keep_previous(str(tmp_path / "study" / "base"))
  assert json.load(open(tmp_path / "study" / "base" / "before_rerun" / "summary.json")) == before
  # The validation accuracy of the same learners is in the table, and the
  # best run by validation is named beside the best by test.
  after["gtn_validation_accuracy"] = {"mean": 0.99, "std": 0.01, "n": 5,
                                      "values": [0.99] * 5}
  json.dump(after, open(tmp_path / "study" / "base" / "summary.json", "w"))
  meta_training_study.report(str(tmp_path / "study"))
  table = open(tmp_path / "study" / "table.md").read()
  base_row = next(line for line in table.splitlines() if line.startswith("| base |"))
  assert "| 0.990 ± 0.010 |" in base_row
  assert "by GTN validation accuracy (runs that record it): base." in table
  real = before["real_data_test_accuracy"]
  assert f"| {meta_training_study.chosen_validation(real):.3f} |" in base_row
  assert meta_training_study.chosen_validation(real) == max(
      s["validation_accuracy"] for s in real["sweep"])
