"""Meta-training runs: the loop behind `gtnjax train`, usable from Python.

    from gtnjax import config as gconfig, train
    cfg = gconfig.default_config()            # or gconfig.load_config_file(...)
    summary = train.train(cfg, "runs/digits")
    # your own learner: cfg.learner = "my_cnn"; train.train(cfg, dir, learners=[spec])
    # with spec = gtnjax.flax_learners.from_flax(MyCnn(), (8, 8, 1), 10, name="my_cnn")

A run owns one workdir:
  config.json        the config it was started with, "auto" implementations
                     resolved (resuming checks it);
  metrics.jsonl      one JSON object per logged meta-step;
  tensorboard/       event files of the same metrics;
  checkpoints/       Orbax checkpoints (every `checkpoint_every` steps and at the end);
  summary.json       evaluation after the last meta-step.
Running the same command again on the same workdir resumes from the newest
checkpoint and, on the same machine, reproduces the uninterrupted run exactly:
every random draw comes from `fold_in(key(seed), step)`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import (baselines, checkpointing, config as gconfig, data, evaluation, learners,
                    meta, parallel, teacher)

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

  def learner_spec(self, name: str) -> learners.LearnerSpec:
    return _learner_spec(self.config, name, self.dataset, self.custom_learners)

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
      kind=config.teacher, curriculum=config.curriculum, image_shape=dataset.image_shape,
      num_classes=dataset.num_classes, inner_steps=config.inner_steps,
      batch_size=config.inner_batch_size, noise_size=config.noise_size,
      soft_labels=config.soft_labels, init_lr=config.init_inner_lr,
      init_momentum=config.init_inner_momentum, generator_chunk=config.generator_chunk,
      momentum_parameterisation=config.momentum_parameterisation,
      generator_padding=config.generator_padding, output_init=config.output_init,
      weight_norm=config.weight_norm, conv_impl=impls.conv_impl, pool_impl=impls.pool_impl)
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
                         remat=config.remat)
  optimizer = meta.make_optimizer(config.meta_lr, config.num_meta_steps,
                                  config.final_relative_lr, config.grad_clip,
                                  config.adam_b1, config.adam_b2)
  return Run(config, dataset, setup, optimizer, custom)


def _check_custom_learner_names(config, custom: tuple[Any, ...]) -> tuple[Any, ...]:
  names = [spec.name for spec in custom]
  used = set(gconfig.learner_names(config)) | set(gconfig.eval_learner_names(config))
  for name in names:
    if names.count(name) > 1:
      raise gconfig.ConfigError(f"learners: two learners are named {name!r}")
    if name in learners.ARCHITECTURES or name.startswith(
        (learners.CELL_PREFIX, learners.FLAX_PREFIX)):
      raise gconfig.ConfigError(f"learners: {name!r} is a built-in learner name; give yours "
                                "another (from_flax(..., name=...))")
    if name not in used:
      raise gconfig.ConfigError(
          f"learners: {name!r} is named in neither config.learner ({config.learner!r}) nor "
          f"config.eval_learners ({config.eval_learners!r}); set config.learner = {name!r}")
  return custom


def _learner_spec(config, name: str, dataset: data.Dataset,
                  custom: tuple[Any, ...] = ()) -> learners.LearnerSpec:
  # One place, so that the specs of meta-training and of evaluation are equal
  # (one compilation) and use the implementations config.json records.
  for spec in custom:
    if spec.name == name:
      return spec
  impls = gconfig.with_resolved_impls(config)
  return learners.make_learner(name, dataset.image_shape, dataset.num_classes,
                               random_widths=config.random_widths,
                               weight_norm=config.weight_norm,
                               conv_impl=impls.conv_impl, pool_impl=impls.pool_impl)


def _check_workdir_learners(workdir: str, fingerprints: dict[str, str]) -> None:
  """A user's learner (Flax) changed under an unchanged name is another run."""
  path = os.path.join(workdir, LEARNERS_FILE)
  if not os.path.exists(path):
    return  # a new workdir, or a run started before definitions were recorded
  try:
    with open(path) as f:
      saved = json.load(f)
  except json.JSONDecodeError as e:
    raise gconfig.ConfigError(f"{path} is not valid JSON ({e}): it is written atomically, so "
                              "something else changed it; restore it or choose a new --workdir")
  changed = sorted(n for n in set(saved) | set(fingerprints) if saved.get(n) != fingerprints.get(n))
  if changed:
    raise gconfig.ConfigError(
        f"--workdir {workdir} holds a run whose learner definition differs from the one "
        f"given now ({', '.join(changed)}; recorded in {path}); give the same module "
        "definition to resume it, or choose a new --workdir")


def _check_workdir_config(workdir: str, config) -> None:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f)
  changed = [f for f in gconfig.RUN_DEFINING_FIELDS
             if f in saved and saved[f] != (list(config[f]) if isinstance(config[f], tuple)
                                            else config[f])]
  if changed:
    detail = ", ".join(f"{f}: {saved[f]!r} -> {config[f]!r}" for f in changed)
    raise gconfig.ConfigError(
        f"--workdir {workdir} holds a run with a different config ({detail}); resume it with "
        "its own config (see its config.json) or choose a new --workdir")


def _read_metrics(path: str, up_to_step: int) -> list[str]:
  """Lines of metrics.jsonl with step <= up_to_step (later ones were not checkpointed)."""
  if not os.path.exists(path):
    return []
  kept = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        break  # a line cut by a kill: nothing after it is trustworthy
      if record.get("step", 0) <= up_to_step:
        kept.append(line if line.endswith("\n") else line + "\n")
  return kept


class Preempted(Exception):
  """A SIGTERM (or stop_after) stopped a nested meta-training with a checkpoint."""

  def __init__(self, step: int):
    super().__init__(f"preempted at meta-step {step}")
    self.step = step


class NonFiniteMetaLoss(RuntimeError):
  """Meta-training stopped after `max_consecutive_skips` non-finite meta-steps."""


class _PreemptionFlag:
  """Turns SIGTERM into a flag checked between meta-steps."""

  def __init__(self):
    self.raised = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      self._previous = None
    return self

  def _handle(self, signum, frame):
    self.raised = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _any_process(flag: bool) -> bool:
  """True if `flag` is set on any process, so that all stop at the same step."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


def make_step_fn(run: Run):
  """The jitted meta-step over `config.num_devices` devices (default all) and its mesh."""
  mesh = parallel.make_mesh(run.config.num_devices or jax.device_count())
  return meta.make_meta_step(run.setup, run.optimizer, mesh), mesh


@dataclasses.dataclass
class MetaTrainResult:
  state: meta.MetaState
  step: int          # meta-steps taken in total (resumed ones included)
  preempted: bool    # stopped early (SIGTERM or stop_after) with a checkpoint


# The definitions of a run's user-given learners (`learners.definition_fingerprints`):
# their names alone, in config.json, do not say what ran.
LEARNERS_FILE = "learners.json"


def _write_config(workdir: str, config, learner_fingerprints: dict[str, str]) -> None:
  """Create the workdir, refuse a different run's, record this config and the
  definitions of its user-given learners (process 0).

  conv_impl and pool_impl are recorded resolved ("gemm", not "auto"), so the
  record says what ran. They are not run-defining (the implementations agree
  to float rounding), so a resumed run started with "auto" accepts its own
  record, and one may resume on a backend with another default.
  """
  os.makedirs(workdir, exist_ok=True)
  _check_workdir_config(workdir, config)
  _check_workdir_learners(workdir, learner_fingerprints)
  if jax.process_index() == 0:  # atomically: other processes may be reading them
    files = {LEARNERS_FILE: json.dumps(learner_fingerprints, indent=1, sort_keys=True),
             "config.json": gconfig.to_json(gconfig.with_resolved_impls(config))}
    for name, text in files.items():  # config.json last: it marks a started run
      tmp = os.path.join(workdir, name + ".tmp")
      with open(tmp, "w") as f:
        f.write(text)
      os.replace(tmp, os.path.join(workdir, name))


class _MetricsLog:
  """metrics.jsonl and TensorBoard scalars, written by process 0 only.

  On a resume the lines after the restored checkpoint are dropped first (they
  were not checkpointed and will be written again); the ones up to it stay
  byte for byte.
  """

  def __init__(self, workdir: str, start_step: int, enabled: bool):
    self._enabled = enabled
    if not enabled:
      return
    path = os.path.join(workdir, "metrics.jsonl")
    kept = _read_metrics(path, start_step)
    with open(path, "w") as f:
      f.writelines(kept)
    from tensorboardX import SummaryWriter  # heavy import, only for training
    self._writer = SummaryWriter(os.path.join(workdir, "tensorboard"))
    self._file = open(path, "a")

  def write(self, step: int, values: dict[str, float], seconds: float) -> None:
    if not self._enabled:
      return
    self._file.write(json.dumps({"step": step, **values, "seconds": seconds}) + "\n")
    self._file.flush()
    for name, value in values.items():
      self._writer.add_scalar(f"meta/{name}", value, step)

  def close(self) -> None:
    if self._enabled:
      self._file.close()
      self._writer.close()


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


def meta_train(run: Run, workdir: str, *, progress: bool = True,
               stop_after: int | None = None, description: str | None = None
               ) -> MetaTrainResult:
  """Meta-train `run` in `workdir` (resuming from its newest checkpoint).

  Writes config.json, metrics.jsonl, tensorboard/ and checkpoints/; raises
  NonFiniteMetaLoss after `max_consecutive_skips` skipped updates in a row.
  """
  config = run.config
  # In a multi-process job every process runs this function; only process 0
  # writes files (Orbax checkpoints are written collectively by all).
  main = jax.process_index() == 0
  _write_config(workdir, config, learners.definition_fingerprints(run.setup.learners))
  checkpointer = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints)
  step_fn, state, (train_images, train_labels), start_step = _start_or_resume(
      run, workdir, checkpointer)
  _, train_key = run.keys()
  log = _MetricsLog(workdir, start_step, enabled=main)

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
  with _PreemptionFlag() as flag:
    step = start_step
    while step < end_step:
      t0 = time.perf_counter()
      state, metrics = step_fn(state, train_key, train_images, train_labels)
      step += 1
      # One scalar per step: a skipped update must be seen when it happens.
      if int(metrics["skipped"]):
        consecutive_skips += 1
        _LOG.warning("meta-step %d: non-finite meta-loss or gradient, update skipped "
                     "(%d in a row, %d in this run)", step, consecutive_skips,
                     int(state.skipped_updates))
        postfix["skipped"] = int(state.skipped_updates)
      else:
        consecutive_skips = 0
      evaluate_now = config.eval_every and step % config.eval_every == 0
      if step % config.log_every == 0 or step == end_step or evaluate_now:
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        seconds = time.perf_counter() - t0  # the meta-step alone, not the evaluation
        if evaluate_now:  # fresh learners of the first architecture, test split
          values["test_accuracy"] = evaluation.evaluate_teacher(
              run.teacher_spec, state.teacher_params, run.setup.learners[0], run.dataset,
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
      if _any_process(flag.raised):
        preempted = True
        break
  close()
  if preempted or step < config.num_meta_steps:
    _LOG.warning("stopped at meta-step %d of %d with a checkpoint; rerun the same command "
                 "to resume", step, config.num_meta_steps)
  return MetaTrainResult(state, step, preempted or step < config.num_meta_steps)


def train(config, workdir: str, *, progress: bool = True, data_dir: str | None = None,
          stop_after: int | None = None, learners: Sequence[Any] = ()) -> dict[str, Any]:
  """Meta-train (or resume) in `workdir`, evaluate, write summary.json.

  Args:
    config: a ConfigDict (see gtnjax.config.default_config).
    workdir: the run's folder; created if missing.
    progress: show progress bars.
    data_dir: tfds data folder (default: $TFDS_DATA_DIR).
    stop_after: stop (with a checkpoint) after this many meta-steps in total,
      as a preemption would; for tests and time-boxed jobs.
    learners: learner specs built in Python, named in the config (see `prepare`).

  Returns:
    The summary dict (also in workdir/summary.json); {"preempted": True, ...}
    if stopped early by SIGTERM or `stop_after`.
  """
  start_time = time.time()
  run = prepare(config, data_dir=data_dir, learners=learners)
  result = meta_train(run, workdir, progress=progress, stop_after=stop_after)
  if result.preempted:
    return {"preempted": True, "step": result.step}
  try:
    summary = summarise(run, result.state.teacher_params, run.keys()[0], progress=progress)
  except Preempted as e:  # the baseline's meta-training; rerunning resumes it
    return {"preempted": True, "step": e.step}
  summary["wall_seconds"] = time.time() - start_time
  summary["skipped_updates"] = int(result.state.skipped_updates)
  if jax.process_index() == 0:
    tmp = os.path.join(workdir, "summary.json.tmp")
    with open(tmp, "w") as f:
      json.dump(summary, f, indent=1)
    os.replace(tmp, os.path.join(workdir, "summary.json"))
  return summary


def summarise(run: Run, teacher_params, init_key: jax.Array | None = None,
              learner_names: tuple[str, ...] | None = None,
              num_seeds: int | None = None, progress: bool = True,
              tune_schedule: bool = False) -> dict[str, Any]:
  """Evaluation of a teacher against both real-data baselines (`gtnjax.baselines`).

  Per learner: the teacher's test accuracy (`gtn_test_accuracy`), the constant-
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
  learned_baseline = config.learned_schedule_baseline and config.teacher != "real_data"
  if learned_baseline:
    learned = baselines.learned_schedule(run, names, num_seeds, progress=progress)
  sweep_size = len(config.baseline_lrs) * len(config.baseline_momenta) + 1
  schedule_sweep = (len(evaluation.SCHEDULE_LR_SCALES) * len(evaluation.SCHEDULE_MOMENTA)
                    if tune_schedule else 0)
  bar = tqdm(total=len(names) * (sweep_size + 1 + (init_key is not None) + schedule_sweep),
             desc="evaluate", unit="run", dynamic_ncols=True,
             disable=not (progress and jax.process_index() == 0))
  per_learner = {}
  for name in names:
    spec = run.learner_spec(name)
    bar.set_postfix(learner=name)
    gtn = evaluation.evaluate_teacher(run.teacher_spec, teacher_params, spec, run.dataset,
                                      seed=config.seed, num_seeds=num_seeds)
    bar.update(1)
    real = baselines.constant_schedule(run, name, num_seeds, progress=lambda: bar.update(1))
    result = {"gtn_test_accuracy": gtn, "real_data_test_accuracy": real}
    if tune_schedule:
      result["gtn_tuned_schedule_test_accuracy"] = evaluation.evaluate_teacher_tuned(
          run.teacher_spec, teacher_params, spec, run.dataset, seed=config.seed,
          num_seeds=num_seeds, progress=lambda: bar.update(1))
    if learned_baseline:
      result["real_data_learned_schedule_test_accuracy"] = learned[name]
    result["real_data_steps_to_match"] = evaluation.steps_to_match(gtn["mean"],
                                                                   real["steps_curve"])
    if init_key is not None:
      untrained = run.teacher_spec.init(init_key)
      result["untrained_teacher_test_accuracy"] = evaluation.evaluate_teacher(
          run.teacher_spec, untrained, spec, run.dataset, seed=config.seed,
          num_seeds=num_seeds)
      bar.update(1)
    per_learner[name] = result
  bar.close()
  lr, momentum = run.teacher_spec.schedule(teacher_params)
  first = per_learner[names[0]]
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
      "per_learner": per_learner,
  }


def load_teacher(workdir: str, *, data_dir: str | None = None, learners: Sequence[Any] = ()
                 ) -> tuple[Run, Any, int]:
  """(run, teacher params, step) from a workdir's config and newest checkpoint;
  `learners`: the learner specs the run was given in Python (see `prepare`)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise checkpointing.CheckpointError(
        f"{workdir} holds no run (no config.json): train one first with "
        f"`gtnjax train --config ... --workdir {workdir}`")
  with open(path) as f:
    config = gconfig.from_json(f.read())
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


def curriculum_arrays(run: Run, teacher_params) -> dict[str, np.ndarray]:
  """The synthetic curriculum as plain arrays (the contents of `gtnjax export`).

  It is the curriculum the first fresh learner of `gtnjax evaluate` (and of
  `summary.json`) trains on, so training that learner on the arrays reproduces
  its accuracy (tests/test_cli.py checks it with a loop written outside gtnjax).
  """
  teacher_key, _ = evaluation.seed_data_and_learner_keys(run.config.seed, 1)
  batches = jax.jit(run.teacher_spec.batches)(
      teacher_params, teacher_key[0],
      jnp.asarray(run.dataset.train_images), jnp.asarray(run.dataset.train_labels))
  arrays = {
      "x": np.asarray(batches.x, np.float32),
      "y": np.asarray(batches.y, np.float32),
      "lr": np.asarray(batches.lr, np.float32),
      "momentum": np.asarray(batches.momentum, np.float32),
      "mean": np.asarray(run.dataset.mean, np.float32),
      "std": np.asarray(run.dataset.std, np.float32),
      "dataset": np.asarray(run.config.dataset),
      "learner": np.asarray(gconfig.learner_names(run.config)[0]),
  }
  return arrays


def export_curriculum(run: Run, teacher_params, path: str) -> dict[str, np.ndarray]:
  """Write `curriculum_arrays` to an .npz atomically; returns the arrays."""
  arrays = curriculum_arrays(run, teacher_params)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return arrays
