"""The meta-training loop behind `gtnjax train`, usable from Python.

    from gtnjax import config as gconfig, report, train
    cfg = gconfig.load_config_file("experiments/configs/digits.py")
    result = train.train(cfg, "runs/digits")          # meta-training alone
    summary = report.train_and_evaluate(cfg, "runs/digits")  # and the evaluation
    # your own learner: cfg.learner = "my_cnn"; train.train(cfg, dir, learners=[spec])
    # with spec = gtnjax.flax_learners.from_flax(MyCnn(), (8, 8, 1), 10, name="my_cnn")

`prepare` turns a config into a `Run` (data, specs, optimizer; every error
comes there, before anything compiles); `meta_train` runs the loop in a
workdir (its files: `gtnjax.rundir`). Running the same command again on the
same workdir resumes from the newest checkpoint and, on the same machine,
reproduces the uninterrupted run exactly: every random draw comes from
`fold_in(key(seed), step)`. The evaluation that ends `gtnjax train` is
`gtnjax.report`, above this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Sequence

import jax

from gtnjax import (checkpointing, config as gconfig, data, evaluation, learners, meta,
                    parallel, preemption, registry, rundir, teacher)

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Run:
  """A validated config with its data, specs and optimizer (nothing compiled yet)."""
  config: Any
  dataset: data.Dataset
  setup: meta.MetaSetup
  optimizer: Any
  custom_learners: tuple[Any, ...] = ()  # `prepare`'s `learners`

  @property
  def teacher_spec(self) -> teacher.TeacherSpec:
    return self.setup.teacher

  def learner_spec(self, name: str) -> learners.Learner:
    return _learner_spec(self.config, name, self.dataset, self.custom_learners)

  def teacher_for(self, name: str, teacher_params) -> tuple[teacher.TeacherSpec, Any]:
    """(spec, params) that train learner `name`: with a schedule per
    meta-training architecture, its own, or their mean for a learner
    meta-training never saw (`TeacherSpec.for_schedule`)."""
    names = gconfig.learner_names(self.config)
    index = names.index(name) if name in names else None
    return self.teacher_spec.for_schedule(teacher_params, index)

  def keys(self) -> tuple[jax.Array, jax.Array]:
    """(teacher-init key, meta-training key), both from config.seed."""
    init_key, train_key = jax.random.split(jax.random.key(self.config.seed))
    return init_key, train_key


def prepare(config, *, data_dir: str | None = None, learners: Sequence[Any] = ()) -> Run:
  """Validate the config, load the data and build the specs: every error comes here.

  Args:
    config: see `gtnjax.config.default_config`.
    data_dir: tfds data folder (default: $TFDS_DATA_DIR).
    learners: learner specs built in Python (e.g. `gtnjax.flax_learners.from_flax`),
      which `config.learner` and `config.eval_learners` name by their `name`
      besides the built-in names; each must be named there and fit the data set.
  """
  custom = _check_custom_learner_names(config, tuple(learners))
  gconfig.validate(config, tuple(spec.name for spec in custom))
  if config.ranking_cells and not os.path.isfile(config.ranking_cells):
    raise gconfig.ConfigError(
        f"config field 'ranking_cells' = {config.ranking_cells!r}: no such file (from "
        f"{os.getcwd()}); give the path of a gtnjax.nas ground-truth CSV of labelled cells")
  data.check_available(config.dataset, data_dir=data_dir)
  dataset = data.load(config.dataset, data_dir=data_dir)
  gconfig.validate_for_data(config, dataset.image_shape, dataset.train_images.shape[0])
  for spec in custom:
    if (tuple(spec.input_shape), spec.num_classes) != (dataset.image_shape, dataset.num_classes):
      raise gconfig.ConfigError(
          f"learners: {spec.name!r} takes {tuple(spec.input_shape)} images and "
          f"{spec.num_classes} classes, but data set {config.dataset!r} has "
          f"{dataset.image_shape} and {dataset.num_classes}; build it for those")
  impls = gconfig.with_resolved_impls(config)
  tspec = teacher.TeacherSpec(
      image_shape=dataset.image_shape, num_classes=dataset.num_classes,
      schedules=len(gconfig.learner_names(config)) if config.schedule_per_learner else 1,
      **gconfig.teacher_spec_fields(impls))
  try:
    specs = tuple(_learner_spec(config, n, dataset, custom)
                  for n in gconfig.learner_names(config))
    for name in gconfig.eval_learner_names(config):  # fails now, not after meta-training
      _learner_spec(config, name, dataset, custom)
  except gconfig.ConfigError:
    raise
  except ValueError as e:  # e.g. a Flax module that does not fit the data set
    raise gconfig.ConfigError(str(e)) from e
  setup = meta.MetaSetup(teacher=tspec, learners=specs, population=config.population,
                         meta_batch_size=config.meta_batch_size,
                         probe_every=config.probe_every or config.inner_steps,
                         remat=config.remat, ranking_weight=config.ranking_weight,
                         population_gradient=config.population_gradient)
  optimizer = meta.make_optimizer(config.meta_lr, config.num_meta_steps,
                                  config.final_relative_lr, config.grad_clip,
                                  config.adam_b1, config.adam_b2,
                                  schedule_meta_lr=config.schedule_meta_lr)
  return Run(config, dataset, setup, optimizer, custom)


def _check_custom_learner_names(config, custom: tuple[Any, ...]) -> tuple[Any, ...]:
  names = [spec.name for spec in custom]
  used = set(gconfig.learner_names(config)) | set(gconfig.eval_learner_names(config))
  for name in names:
    if names.count(name) > 1:
      raise gconfig.ConfigError(f"learners: two learners are named {name!r}")
    if registry.is_reserved(name):
      raise gconfig.ConfigError(f"learners: {name!r} is a built-in learner name; give yours "
                                "another (from_flax(..., name=...))")
    if name not in used:
      raise gconfig.ConfigError(
          f"learners: {name!r} is named in neither config.learner ({config.learner!r}) nor "
          f"config.eval_learners ({config.eval_learners!r}); set config.learner = {name!r}")
  return custom


def _learner_spec(config, name: str, dataset: data.Dataset,
                  custom: tuple[Any, ...] = ()) -> learners.Learner:
  # One place, so that the specs of meta-training and of evaluation are equal
  # (one compilation) and use the implementations config.json records.
  for spec in custom:
    if spec.name == name:
      return spec
  impls = gconfig.with_resolved_impls(config)
  return registry.make_learner(name, dataset.image_shape, dataset.num_classes,
                               random_widths=config.random_widths,
                               weight_norm=config.weight_norm,
                               conv_impl=impls.conv_impl, pool_impl=impls.pool_impl,
                               cell_pool=config.ranking_cells,
                               cell_batch_norm=config.cell_batch_norm)


class NonFiniteMetaLoss(RuntimeError):
  """Meta-training stopped after `max_consecutive_skips` non-finite meta-steps."""


def make_step_fn(run: Run):
  """The jitted meta-step over `config.num_devices` devices (default all) and its mesh."""
  mesh = parallel.make_mesh(run.config.num_devices or jax.device_count())
  return meta.make_meta_step(run.setup, run.optimizer, mesh), mesh


@dataclasses.dataclass
class MetaTrainResult:
  state: meta.MetaState
  step: int          # meta-steps taken in total (resumed ones included)
  preempted: bool    # stopped early (SIGTERM or stop_after) with a checkpoint


def _start_or_resume(run: Run, workdir: str, checkpointer: checkpointing.Checkpointer):
  """The jitted step, the state and the training set placed on the mesh, and
  the meta-step to start from (that of the newest checkpoint, else 0)."""
  init_key, _ = run.keys()
  step_fn, mesh = make_step_fn(run)
  state, train_images, train_labels = parallel.replicate(
      (meta.init_state(run.setup, run.optimizer, init_key), run.dataset.train_images,
       run.dataset.train_labels), mesh)
  restored = checkpointer.restore_latest(state)
  start_step = 0
  if restored is not None:
    start_step, state = restored
    _LOG.info("resuming %s from meta-step %d", workdir, start_step)
  return step_fn, state, (train_images, train_labels), start_step


def _count_skips(metrics, state: meta.MetaState, step: int, consecutive: int,
                 postfix: dict[str, Any]) -> int:
  """Skipped updates in a row after this step, warning at each one: a skipped
  update must be seen when it happens (one scalar read per step)."""
  if not int(metrics["skipped"]):
    return 0
  _LOG.warning("meta-step %d: non-finite meta-loss or gradient, update skipped "
               "(%d in a row, %d in this run)", step, consecutive + 1, int(state.skipped_updates))
  postfix["skipped"] = int(state.skipped_updates)
  return consecutive + 1


def meta_train(run: Run, workdir: str, *, progress: bool = True,
               stop_after: int | None = None, description: str | None = None
               ) -> MetaTrainResult:
  # One loop with its bookkeeping in order (step, skips, log, checkpoint,
  # stops): that order is what makes a resume exact and every process stop at
  # the same step, so it stays in one place.
  """Meta-train `run` in `workdir` (resuming from its newest checkpoint).

  Writes config.json, metrics.jsonl, tensorboard/ and checkpoints/; raises
  NonFiniteMetaLoss after `max_consecutive_skips` skipped updates in a row.
  """
  config = run.config
  # In a multi-process job every process runs this function; only process 0
  # writes files (Orbax checkpoints are written collectively by all).
  main = jax.process_index() == 0
  rundir.start(workdir, config, learners.definition_fingerprints(run.setup.learners), write=main)
  checkpointer = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints)
  step_fn, state, (train_images, train_labels), start_step = _start_or_resume(
      run, workdir, checkpointer)
  _, train_key = run.keys()
  log = rundir.MetricsLog(workdir, start_step, enabled=main)

  from tqdm import tqdm
  end_step = config.num_meta_steps if stop_after is None else min(stop_after,
                                                                   config.num_meta_steps)
  preempted = False
  bar = tqdm(total=config.num_meta_steps, initial=start_step, disable=not (progress and main),
             desc=description or f"meta-train {config.dataset}", unit="step",
             dynamic_ncols=True)

  def close():
    bar.close()
    checkpointer.save(step, state)
    checkpointer.close()
    log.close()

  consecutive_skips = 0
  postfix = {}
  with preemption.PreemptionFlag() as flag:
    step = start_step
    while step < end_step:
      t0 = time.perf_counter()
      state, metrics = step_fn(state, train_key, train_images, train_labels)
      step += 1
      consecutive_skips = _count_skips(metrics, state, step, consecutive_skips, postfix)
      evaluate_now = bool(config.eval_every) and step % config.eval_every == 0
      if step % config.log_every == 0 or step == end_step or evaluate_now:
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        seconds = time.perf_counter() - t0  # the meta-step alone, not the evaluation
        if evaluate_now:  # fresh learners of the first architecture, test split
          values["test_accuracy"] = evaluation.evaluate_teacher(
              *run.teacher_for(gconfig.learner_names(config)[0], state.teacher_params),
              run.setup.learners[0], run.dataset,
              seed=config.seed, num_seeds=config.eval_seeds)["mean"]
          postfix["test"] = f"{values['test_accuracy']:.3f}"
        log.write(step, values, seconds)
        postfix.update(loss=f"{values['meta_loss']:.3f}", acc=f"{values['meta_accuracy']:.3f}")
        bar.set_postfix(postfix)
      bar.update(1)
      if step % config.checkpoint_every == 0:
        checkpointer.save(step, state)
      if config.max_consecutive_skips and consecutive_skips >= config.max_consecutive_skips:
        close()  # the skipped updates left the state as it was before them
        raise NonFiniteMetaLoss(
            f"{consecutive_skips} meta-step(s) in a row ending at {step} had a non-finite "
            f"meta-loss or gradient (max_consecutive_skips={config.max_consecutive_skips}); "
            f"the last finite state is checkpointed in {workdir}. Lower meta_lr, set grad_clip "
            "> 0 or momentum_parameterisation=sigmoid, and train in a new --workdir")
      if preemption.any_process(flag.raised):
        preempted = True
        break
  close()
  if preempted or step < config.num_meta_steps:
    _LOG.warning("stopped at meta-step %d of %d with a checkpoint; rerun the same command "
                 "to resume", step, config.num_meta_steps)
  return MetaTrainResult(state, step, preempted or step < config.num_meta_steps)


def train(config, workdir: str, *, progress: bool = True, data_dir: str | None = None,
          stop_after: int | None = None, learners: Sequence[Any] = ()) -> MetaTrainResult:
  """Meta-train (or resume) `config` in `workdir`: `prepare`, then `meta_train`.

  Args:
    config: a ConfigDict (see gtnjax.config.default_config).
    workdir: the run's folder; created if missing.
    progress: show a progress bar.
    data_dir: tfds data folder (default: $TFDS_DATA_DIR).
    stop_after: stop (with a checkpoint) after this many meta-steps in total,
      as a preemption would; for tests and time-boxed jobs.
    learners: learner specs built in Python, named in the config (see `prepare`).

  Returns:
    The final state and step; `preempted` if stopped early (SIGTERM or
    `stop_after`). `gtnjax.report.train_and_evaluate` adds the evaluation.
  """
  run = prepare(config, data_dir=data_dir, learners=learners)
  return meta_train(run, workdir, progress=progress, stop_after=stop_after)


def load_teacher(workdir: str, *, data_dir: str | None = None, learners: Sequence[Any] = ()
                 ) -> tuple[Run, Any, int]:
  """(run, teacher params, step) from a workdir's config and newest checkpoint;
  `learners`: the learner specs the run was given in Python (see `prepare`)."""
  config = rundir.load_config(workdir)
  run = prepare(config, data_dir=data_dir, learners=learners)
  init_key, _ = run.keys()
  like = meta.init_state(run.setup, run.optimizer, init_key)
  checkpointer = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints)
  restored = checkpointer.restore_latest(like)
  checkpointer.close()
  if restored is None:
    raise checkpointing.CheckpointError(
        f"{workdir} has no checkpoint yet: run `gtnjax train` on it first")
  step, state = restored
  return run, state.teacher_params, step
