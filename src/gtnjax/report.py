"""The evaluation report: a teacher against both real-data baselines.

What `gtnjax train` ends with (`train_and_evaluate`, which writes
summary.json) and what `gtnjax evaluate` prints (`summarise`). It sits above
the meta-training loop because one of the baselines needs it: the learned-
schedule baseline (the official code's: real batches with a meta-learned
per-step lr and momentum) is a `real_data` teacher meta-trained with the
run's own settings and budget, in a cached workdir of its own
(`baselines.learned_schedule_workdir`), so an interrupted one resumes. The
constant-schedule baseline needs no meta-training and lives in
`gtnjax.baselines`.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import jax

from gtnjax import baselines, config as gconfig, evaluation, learners, preemption, rundir, train

# Per learner evaluations of a learned-schedule baseline, in its workdir.
_EVALUATIONS_FILE = "evaluations.json"


def train_and_evaluate(config, workdir: str, *, progress: bool = True,
                       data_dir: str | None = None, stop_after: int | None = None,
                       learners: Sequence[Any] = ()) -> dict[str, Any]:
  """Meta-train (or resume) in `workdir`, evaluate, write summary.json:
  `gtnjax train`.

  Args:
    config: a ConfigDict (see gtnjax.config.default_config).
    workdir: the run's folder; created if missing.
    progress: show progress bars.
    data_dir: tfds data folder (default: $TFDS_DATA_DIR).
    stop_after: stop (with a checkpoint) after this many meta-steps in total,
      as a preemption would; for tests and time-boxed jobs.
    learners: learner specs built in Python, named in the config (see
      `train.prepare`).

  Returns:
    The summary dict (also in workdir/summary.json); {"preempted": True, ...}
    if stopped early by SIGTERM or `stop_after`.
  """
  start_time = time.time()
  run = train.prepare(config, data_dir=data_dir, learners=learners)
  result = train.meta_train(run, workdir, progress=progress, stop_after=stop_after)
  if result.preempted:
    return {"preempted": True, "step": result.step}
  try:
    summary = summarise(run, result.state.teacher_params, run.keys()[0], progress=progress)
  except preemption.Preempted as e:  # the baseline's meta-training; rerunning resumes it
    return {"preempted": True, "step": e.step}
  summary["wall_seconds"] = time.time() - start_time
  summary["skipped_updates"] = int(result.state.skipped_updates)
  if jax.process_index() == 0:
    rundir.write_summary(workdir, summary)
  return summary


def _evaluate_learner(run: train.Run, teacher_params, name: str, num_seeds: int,
                      init_key: jax.Array | None, tune_schedule: bool,
                      progress: Callable[[], None]) -> dict[str, Any]:
  """One learner's columns of `summarise` but the learned-schedule baseline."""
  config, spec = run.config, run.learner_spec(name)
  tspec, own_params = run.teacher_for(name, teacher_params)
  gtn = evaluation.evaluate_teacher(tspec, own_params, spec, run.dataset,
                                    seed=config.seed, num_seeds=num_seeds)
  progress()
  # The same learners on validation: settings are compared on this, never on test.
  gtn_validation = evaluation.evaluate_teacher(tspec, own_params, spec, run.dataset,
                                               seed=config.seed, num_seeds=num_seeds,
                                               split="validation")
  progress()
  real = baselines.constant_schedule(run, name, num_seeds, progress=progress)
  result = {"gtn_test_accuracy": gtn, "gtn_validation_accuracy": gtn_validation,
            "real_data_test_accuracy": real}
  if tune_schedule:
    result["gtn_tuned_schedule_test_accuracy"] = evaluation.evaluate_teacher_tuned(
        tspec, own_params, spec, run.dataset, seed=config.seed,
        num_seeds=num_seeds, progress=progress)
  result["real_data_steps_to_match"] = evaluation.steps_to_match(gtn["mean"],
                                                                 real["steps_curve"])
  if init_key is not None:
    untrained_spec, untrained = run.teacher_for(name, run.teacher_spec.init(init_key))
    result["untrained_teacher_test_accuracy"] = evaluation.evaluate_teacher(
        untrained_spec, untrained, spec, run.dataset, seed=config.seed,
        num_seeds=num_seeds)
    progress()
  return result


def summarise(run: train.Run, teacher_params, init_key: jax.Array | None = None,
              learner_names: tuple[str, ...] | None = None,
              num_seeds: int | None = None, progress: bool = True,
              tune_schedule: bool = False) -> dict[str, Any]:
  """Evaluation of a teacher against both real-data baselines.

  Per learner: the teacher's test accuracy (`gtn_test_accuracy`), the same
  fresh learners' validation accuracy (`gtn_validation_accuracy`, what a choice
  between teachers is made on), the constant-
  schedule baseline (`real_data_test_accuracy`, with `steps_curve`), the
  learned-schedule baseline (`real_data_learned_schedule_test_accuracy`), how
  many real-data steps of the constant schedule match the teacher's accuracy
  (`real_data_steps_to_match`, None beyond the curve), and with `init_key` the
  untrained teacher. With `tune_schedule` also the teacher's curriculum with its
  schedule tuned per learner on validation (`gtn_tuned_schedule_test_accuracy`,
  `evaluation.evaluate_teacher_tuned`).
  """
  from tqdm import tqdm
  config = run.config
  names = learner_names or gconfig.eval_learner_names(config)
  num_seeds = num_seeds or config.eval_seeds
  # A teacher that learns only the schedule is itself a learned-schedule baseline.
  learned_baseline = config.learned_schedule_baseline and run.teacher_spec.learns_inputs
  if learned_baseline:
    learned = learned_schedule(run, names, num_seeds, progress=progress)
  sweep_size = len(config.baseline_lrs) * len(config.baseline_momenta) + 1
  schedule_sweep = (len(evaluation.SCHEDULE_LR_SCALES) * len(evaluation.SCHEDULE_MOMENTA)
                    if tune_schedule else 0)
  bar = tqdm(total=len(names) * (sweep_size + 2 + (init_key is not None) + schedule_sweep),
             desc="evaluate", unit="run", dynamic_ncols=True,
             disable=not (progress and jax.process_index() == 0))
  per_learner = {}
  for name in names:
    bar.set_postfix(learner=name)
    per_learner[name] = _evaluate_learner(run, teacher_params, name, num_seeds, init_key,
                                          tune_schedule, lambda: bar.update(1))
    if learned_baseline:
      per_learner[name]["real_data_learned_schedule_test_accuracy"] = learned[name]
  bar.close()
  lr, momentum = run.teacher_spec.schedule(teacher_params)
  first = per_learner[names[0]]
  own_schedules = _schedule_per_learner(run, teacher_params)
  return {
      "dataset": config.dataset,
      "learner": names[0],
      "teacher": config.teacher,
      "curriculum": config.curriculum,
      "inner_steps": config.inner_steps,
      "inner_batch_size": config.inner_batch_size,
      "meta_steps": config.num_meta_steps,
      "seed": config.seed,
      **first,
      "learned_lr": [float(v) for v in lr],
      "learned_momentum": [float(v) for v in momentum],
      **({"learned_schedule_per_learner": own_schedules} if own_schedules else {}),
      "per_learner": per_learner,
  }


def _schedule_per_learner(run: train.Run, teacher_params) -> dict[str, dict[str, list]]:
  """{meta-training learner: its own schedule} for a teacher with one schedule
  per architecture (`learned_lr` is then their mean); {} for a shared one."""
  if run.teacher_spec.schedules == 1:
    return {}
  out = {}
  for name in gconfig.learner_names(run.config):
    own_spec, own_params = run.teacher_for(name, teacher_params)
    lr, momentum = own_spec.schedule(own_params)
    out[name] = {"lr": [float(v) for v in lr], "momentum": [float(v) for v in momentum]}
  return out


def trained_learned_schedule(run):
  """(baseline run, its teacher params) of `run`'s learned-schedule baseline
  if it has been meta-trained, else None (nothing is trained here)."""
  workdir = baselines.learned_schedule_workdir(run.config, run.setup.learners)
  if not os.path.exists(os.path.join(workdir, rundir.CONFIG_FILE)):
    return None
  baseline_run, params, _ = train.load_teacher(workdir, learners=run.custom_learners)
  return baseline_run, params


def learned_schedule(run, learner_names: tuple[str, ...], num_seeds: int, *,
                     progress: bool = True) -> dict[str, dict[str, Any]]:
  """Test accuracy of fresh learners on real batches with a meta-learned
  schedule, per learner name; meta-trains the schedule on first use."""
  workdir = baselines.learned_schedule_workdir(run.config, run.setup.learners)
  wanted = {}
  for name in learner_names:
    fingerprint = learners.definition_fingerprints([run.learner_spec(name)])
    wanted[name] = baselines.cache_key("evaluation",
                                       {"learner": name, "num_seeds": num_seeds, **fingerprint})
  cached = rundir.read_json(os.path.join(workdir, _EVALUATIONS_FILE)) or {}
  if all(key in cached for key in wanted.values()):
    return {name: cached[key] for name, key in wanted.items()}

  baseline_run = train.prepare(baselines.learned_schedule_config(run.config),
                               learners=run.custom_learners)
  result = train.meta_train(baseline_run, workdir, progress=progress,
                            description="meta-train the learned-schedule real-data baseline")
  if result.preempted:
    raise preemption.Preempted(result.step)
  out = {}
  for name, key in wanted.items():
    if key not in cached:
      tspec, params = baseline_run.teacher_for(name, result.state.teacher_params)
      lr, momentum = tspec.schedule(params)
      cached[key] = {
          **evaluation.evaluate_teacher(
              tspec, params, baseline_run.learner_spec(name), baseline_run.dataset,
              seed=run.config.seed, num_seeds=num_seeds),
          "lr": [float(v) for v in lr], "momentum": [float(v) for v in momentum],
          "meta_steps": result.step, "workdir": workdir}
    out[name] = cached[key]
  rundir.write_json(os.path.join(workdir, _EVALUATIONS_FILE), cached)
  return out
