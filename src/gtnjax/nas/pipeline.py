"""`gtnjax nas`: ground truth, teacher, proxies, rankings and searches, resumably.

Stages, each of which resumes where it stopped (rerun the same command); this
module only runs them in order:
  1. ground truth  `ground_truth.run` fills the table (default
                   WORKDIR/ground_truth.csv; `ground_truth=` another, e.g. the
                   committed results/nas_fmnist/ground_truth.csv), or with
                   `train_ground_truth=False` uses only the rows it has;
  2. teacher       `gtnjax train` of `config.teacher` in WORKDIR/teacher;
  3. real lr       (`scoring.choose_real_lr`) the real-data proxies' peak lr,
                   chosen on validation for the teacher's fixed learner
                   (WORKDIR/real_proxy_lr.json);
  4. proxies       (`scoring.compute_proxies`, `scoring.proxy_costs`)      every proxy of every candidate, a row each in
                   WORKDIR/proxies.csv (the teacher-free ones computed once
                   per setting and shared by runs through a cache,
                   `teacher_free_cache_path`), then their costs timed on a
                   few candidates (WORKDIR/proxy_costs.json);
  5. analysis      (`analysis.analyse`) rank metrics with bootstrap intervals, paired bootstraps
                   of gtn against every other proxy, the test-retest ceiling,
                   searches; WORKDIR/summary.json and
                   WORKDIR/proxies_vs_ground_truth.png.
The ground-truth score is validation accuracy of seed 0 (the test split
appears only in the reported accuracy of searched architectures).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from gtnjax import data, preemption, report, rundir, train
from gtnjax.nas import analysis, ground_truth, scoring
from gtnjax.nas import config as nas_config


def run(config, workdir: str, *, ground_truth_path: str | None = None,
        train_ground_truth: bool = True, progress: bool = True,
        log: Callable[[str], None] = print) -> dict[str, Any]:
  """Every stage of GTN-NAS in `workdir`; returns the summary."""
  nas_config.validate(config)
  teacher_dir = os.path.join(workdir, "teacher")
  # A teacher already there (finished or not) must be this config's: a
  # finished one is not retrained, so another config's would be used silently.
  rundir.check_config(teacher_dir, config.teacher)
  os.makedirs(workdir, exist_ok=True)
  data.check_available(config.dataset)
  dataset = data.load(config.dataset)
  path = ground_truth_path or os.path.join(workdir, "ground_truth.csv")
  if train_ground_truth:
    rows = ground_truth.run(config, dataset, path, log=log)
  else:
    rows = ground_truth.read_table(path)
  if len(rows) < 2:
    raise nas_config.NasConfigError(
        f"{path} has {len(rows)} ground-truth rows; train them first "
        "(experiments/nas_ground_truth.py) or let gtnjax nas train them")
  if not os.path.exists(os.path.join(teacher_dir, "summary.json")):  # else finished
    result = report.train_and_evaluate(config.teacher, teacher_dir, progress=progress)
    if result.get("preempted"):
      raise preemption.Preempted(result["step"])
  teacher_run, teacher_params, _ = train.load_teacher(teacher_dir)
  untrained_params = teacher_run.teacher_spec.init(teacher_run.keys()[0])
  real_lr = scoring.choose_real_lr(config, teacher_run, dataset, workdir, log)
  context = scoring.ProxyContext(config, dataset, teacher_run.teacher_spec, teacher_params,
                                 untrained_params, real_lr)
  scores = scoring.compute_proxies(context, rows, workdir, log)
  costs = scoring.proxy_costs(context, rows, workdir, log)
  summary = analysis.analyse(config, rows, scores, costs, workdir, log)
  summary["real_proxy_lr"] = real_lr
  with open(os.path.join(teacher_dir, "summary.json")) as f:
    summary["teacher"] = {k: v for k, v in json.load(f).items()
                          if k in ("gtn_test_accuracy", "real_data_test_accuracy", "learner")}
  rundir.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
