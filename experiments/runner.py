"""What every experiment script shares: run `gtnjax train` for each named run of a
suite (resuming it), copy its results under `results/`, and the command line.

A suite is {name: (config spec, {field: value} overrides)}. A run whose
`results/SUITE/NAME/summary.json` exists is skipped, so a script can be rerun
until the suite is done, committing the results folder after each part.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable

from gtnjax import rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "experiments", "configs")

Suite = dict[str, tuple[str, dict[str, str]]]


def run_one(name: str, config: str, overrides: dict[str, str], workdir_root: str,
            results_root: str, code: str) -> None:
  """`gtnjax train` one run (resuming it), then copy its results to results_root/name."""
  workdir = os.path.join(workdir_root, name)
  os.makedirs(workdir, exist_ok=True)
  command = [sys.executable, "-m", "gtnjax.cli", "train", "--config", config,
             "--workdir", workdir, "--no-progress",
             *[f"--config.{k}={v}" for k, v in overrides.items()]]
  env = {**os.environ, "PYTHONPATH": os.path.join(code, "src")}
  start = time.time()
  print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command[3:])}", flush=True)
  with open(os.path.join(workdir, "log.txt"), "a") as log:
    status = subprocess.call(command, env=env, stdout=log, stderr=subprocess.STDOUT)
  if status != 0 or rundir.read_summary(workdir) is None:
    print(f"  {name} exited {status} without a summary; see {workdir}/log.txt", flush=True)
    return
  out = os.path.join(results_root, name)
  os.makedirs(out, exist_ok=True)
  for f in (rundir.CONFIG_FILE, rundir.METRICS_FILE, rundir.SUMMARY_FILE):
    shutil.copy(os.path.join(workdir, f), os.path.join(out, f))
  summary = rundir.read_summary(out)
  learned = summary.get("real_data_learned_schedule_test_accuracy")
  if learned:  # the baseline's own meta-training curves, so its number can be checked too
    shutil.copy(os.path.join(learned["workdir"], rundir.METRICS_FILE),
                os.path.join(out, "learned_schedule_baseline_metrics.jsonl"))
  print(f"  {name}: GTN {summary['gtn_test_accuracy']['mean']:.3f} ± "
        f"{summary['gtn_test_accuracy']['std']:.3f}, real data "
        f"{summary['real_data_test_accuracy']['mean']:.3f}"
        + (f", learned schedule {learned['mean']:.3f}" if learned else "")
        + f"; {time.time() - start:.0f} s", flush=True)


# An evaluation: a learner name, or (learner name, number of fresh learners)
# where the run's default number is too few to separate GTN from real data.
Evaluation = str | tuple[str, int]


def evaluation_path(results_root: str, name: str, learner: str,
                    seeds: int | None = None) -> str:
  """Where `evaluate_one` keeps run `name`'s evaluation of `learner`."""
  slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", learner)
  suffix = f"_{seeds}_learners" if seeds else ""
  return os.path.join(results_root, name, f"evaluate_{slug}{suffix}.json")


def split_evaluation(evaluation: Evaluation) -> tuple[str, int | None]:
  return (evaluation, None) if isinstance(evaluation, str) else evaluation


def evaluate_one(name: str, learner: str, workdir_root: str, results_root: str,
                 code: str, flags: tuple[str, ...] = (), seeds: int | None = None) -> None:
  """`gtnjax evaluate [flags]` a finished run's teacher on a learner (fresh
  learners and both real-data baselines, no meta-training again); its JSON goes
  next to the run's summary. `experiments/` is on PYTHONPATH for
  `flax:outside_learners:...`."""
  workdir = os.path.join(workdir_root, name)
  out = evaluation_path(results_root, name, learner, seeds)
  command = [sys.executable, "-m", "gtnjax.cli", "evaluate", "--workdir", workdir,
             "--learner", learner, *flags, *(["--seeds", str(seeds)] if seeds else [])]
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(
      [os.path.join(code, "src"), os.path.join(REPO, "experiments")])}
  start = time.time()
  print(f"[{time.strftime('%H:%M:%S')}] {name}: evaluate {learner}", flush=True)
  with open(os.path.join(workdir, "log.txt"), "a") as log:
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
  if result.returncode != 0:
    print(f"  {name}: evaluate {learner} exited {result.returncode}; see {workdir}/log.txt",
          flush=True)
    return
  evaluation = json.loads(result.stdout)
  with open(out, "w") as f:
    json.dump(evaluation, f, indent=1)
  gtn = evaluation["per_learner"][learner]["gtn_test_accuracy"]
  real = evaluation["per_learner"][learner]["real_data_test_accuracy"]
  print(f"  {name} / {learner}: GTN {gtn['mean']:.3f} ± {gtn['std']:.3f}, real data "
        f"{real['mean']:.3f}; {time.time() - start:.0f} s", flush=True)


PREVIOUS = "before_rerun"


def keep_previous(folder: str) -> None:
  """Copy a run's results files into folder/before_rerun/ (once: a second rerun
  keeps the first results, the ones a report may quote)."""
  previous = os.path.join(folder, PREVIOUS)
  if os.path.isdir(previous):
    return
  os.makedirs(previous)
  for f in (rundir.CONFIG_FILE, rundir.METRICS_FILE, rundir.SUMMARY_FILE):
    if os.path.exists(os.path.join(folder, f)):
      shutil.copy(os.path.join(folder, f), os.path.join(previous, f))


def largest_change(before: dict, after: dict) -> float:
  """Largest absolute difference between two summaries' per-learner test
  accuracies (every `*_test_accuracy` value both record); 0 if they agree."""
  def values(summary):
    out = {}
    for learner, fields in summary.get("per_learner", {"": summary}).items():
      for field, result in fields.items():
        if field.endswith("_test_accuracy") and isinstance(result, dict) and "values" in result:
          out[learner, field] = result["values"]
    return out
  old, new = values(before), values(after)
  return max((abs(a - b) for k in old.keys() & new.keys() for a, b in zip(old[k], new[k])),
             default=0.0)


def main(doc: str, suite_name: str, suite: Suite, report: Callable[[str], None],
         evaluations: dict[str, tuple[Evaluation, ...]] | None = None,
         evaluate_flags: tuple[str, ...] = ()) -> None:
  """The command line of an experiment script: run what is missing, then report.

  `evaluations` {run name: learners, or (learner, fresh learners)} are evaluated (`gtnjax evaluate
  *evaluate_flags`) on that run's finished teacher after it trains
  (`evaluate_one`), each once."""
  parser = argparse.ArgumentParser(description=doc.strip().split("\n")[0])
  parser.add_argument("--only", default="", help="comma-separated run names (default: all)")
  parser.add_argument("--workdir-root", default=os.path.join(REPO, "runs", suite_name))
  parser.add_argument("--results", default=os.path.join(REPO, "results", suite_name))
  parser.add_argument("--code", default=REPO, help="checkout whose src/ provides gtnjax")
  parser.add_argument("--report", action="store_true", help="only write the report")
  parser.add_argument("--rerun", action="store_true",
                      help="train the named runs again even where their results exist (to record "
                           "what a newer gtnjax adds to a summary); the old results stay until the "
                           "new run has finished, and the change in its test accuracies is printed")
  args = parser.parse_args()
  names = [n for n in args.only.split(",") if n] or list(suite)
  unknown = [n for n in names if n not in suite]
  if unknown:
    parser.error(f"unknown run(s) {unknown}; choose from {', '.join(suite)}")
  if not args.report:
    for name in names:
      before = rundir.read_summary(os.path.join(args.results, name))
      if before is None or args.rerun:
        if before is not None:  # kept beside the new files, so old numbers stay checkable
          keep_previous(os.path.join(args.results, name))
        config, overrides = suite[name]
        run_one(name, config, overrides, args.workdir_root, args.results,
                os.path.abspath(args.code))
      after = rundir.read_summary(os.path.join(args.results, name))
      if before is not None and after is not None and args.rerun:
        print(f"  {name}: largest change in a test accuracy against the old results: "
              f"{largest_change(before, after):.2g}", flush=True)
    for name in names:
      for learner, seeds in map(split_evaluation, (evaluations or {}).get(name, ())):
        done = os.path.exists(evaluation_path(args.results, name, learner, seeds))
        trained = rundir.read_summary(os.path.join(args.results, name)) is not None
        if trained and not done:
          evaluate_one(name, learner, args.workdir_root, args.results,
                       os.path.abspath(args.code), evaluate_flags, seeds)
  os.makedirs(args.results, exist_ok=True)
  report(args.results)
