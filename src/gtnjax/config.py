"""Run configuration: defaults, loading config files, overrides and validation.

A config file is a Python file with `get_config(arg: str | None) -> ConfigDict`
(big_vision style), usually starting from `default_config()`. On the command
line `--config FILE.py[:ARG]` picks one and `--config.FIELD=VALUE` overrides a
field. `validate` checks everything that can be checked without data or
compilation and raises `ConfigError` naming the field and the fix.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os

import ml_collections

from gtnjax import inner_loop, layers, registry, teacher


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field and the fix."""


# What a field is part of, declared once with the field (no list to keep in
# sync by hand):
#   RUN       it defines the run: a workdir holding a run with another value is
#             another run, and its checkpoints are refused on resume;
#   TEACHER   the teacher's own: the learned-schedule baseline (a real_data
#             teacher) takes its default, so runs differing only there share it;
#   CONSTANT  the constant-schedule real-data baseline depends on it (its cache key);
#   TEACHER_SPEC  `teacher.TeacherSpec` takes it (`teacher_spec_fields`);
#   ADDED_LATER  added after caches keyed by the RUN fields existed: it enters a
#             key only when set (`run_key_values`), so those caches are still found.
RUN, TEACHER, CONSTANT = "run", "teacher", "constant_baseline"
TEACHER_SPEC, ADDED_LATER = "teacher_spec", "added_later"

_FIELDS: dict[str, tuple] = {
    # Data and networks.
    "dataset": ("digits", RUN, CONSTANT),  # digits (embedded) or a tfds name: mnist, fashion_mnist, cifar10, ...
    # Learner name, or several joined by commas ("cnn,mlp"): cnn | cnn_gap | mlp |
    # cnn_large | cnn_small | cell:<6 ops> | flax:<module>:<factory> (a Flax module,
    # gtnjax.flax_learners) | a name given to train.prepare(..., learners=...).
    "learner": ("cnn_small", RUN),
    "random_widths": (False, RUN, CONSTANT),  # sample each learner's layer widths (masked) per initialisation
    "weight_norm": (True, RUN, CONSTANT, TEACHER_SPEC),  # weight-normalised kernels in learners and generator (the paper's); False: plain (ablation)
    "teacher": ("generator", RUN, TEACHER, TEACHER_SPEC),  # generator | real_data | distillation
    "curriculum": ("full", RUN, TEACHER, TEACHER_SPEC),  # full | none | shuffled_batch | shuffled_all | gaussian
    "soft_labels": (False, RUN, TEACHER, TEACHER_SPEC),  # learn [T, B, K] soft labels
    "noise_size": (128, RUN, TEACHER, TEACHER_SPEC),  # generator noise inputs Z
    "generator_padding": ("zeros", RUN, TEACHER, TEACHER_SPEC),  # zeros | reflect (the paper's code) in the generator's convs
    "output_init": ("data", RUN, TEACHER, TEACHER_SPEC),  # data (weight norm's data-dependent init of the output layer) | none (the paper's code)
    # Inner loop.
    "inner_steps": (16, RUN, CONSTANT, TEACHER_SPEC),  # T
    "inner_batch_size": (32, RUN, CONSTANT, TEACHER_SPEC),  # B
    "init_inner_lr": (0.1, RUN, TEACHER_SPEC),  # initial learned learning rate (every step)
    "init_inner_momentum": (0.5, RUN, TEACHER_SPEC),  # initial learned momentum (every step)
    "momentum_parameterisation": ("log", RUN, TEACHER_SPEC),  # log (the paper's code; can pass 1) | sigmoid (stays in (0, 1))
    "probe_every": (1, RUN),  # real-data probe loss every k inner steps (k | T); 0: final only
    # Inner-loop recomputation: none | step | step_dots | block | nested. "block"
    # keeps one learner state per probe interval; with probe_every=1 that is one
    # state per step, half of what "step" keeps (BENCHMARKS.md).
    "remat": ("block",),
    "generator_chunk": (1, TEACHER_SPEC),  # generator steps recomputed together in the backward pass (memory; see BENCHMARKS.md)
    # Convolution and max-pool implementations: same values to float rounding,
    # different speed (BENCHMARKS.md). "auto" picks by backend (cpu: gemm /
    # phases; gpu, tpu: lax); config.json records the name it resolved to.
    "conv_impl": ("auto", TEACHER_SPEC),  # auto | lax | routed | gemm | im2col | shifted_outputs
    "pool_impl": ("auto", TEACHER_SPEC),  # auto | lax | slices | phases
    # Meta-training.
    "meta_batch_size": (64, RUN),  # real images per probe batch
    "population": (1, RUN),  # learners per architecture per meta-step
    "num_meta_steps": (200, RUN),
    # Adam. 0.02 (the paper's value) made the generator's weight-norm directions
    # jump ~20% per step: digits probe accuracy stayed near chance (0.10-0.13)
    # for 70 meta-steps and reached 0.19 by 100; 0.001 climbed to 0.29
    # (experiments/meta_lr_study.py, results/meta_lr_study/result.json).
    "meta_lr": (0.001, RUN),
    "final_relative_lr": (0.1, RUN),  # cosine decay to this fraction of meta_lr
    # Adam's learning rate for the learned schedule (log lr, momentum) alone; 0:
    # meta_lr. Adam moves a parameter about its learning rate per step, so at
    # meta_lr 0.001 and 200 meta-steps the schedule can travel only ~0.11 in
    # log space (lr and momentum within ~11% of their initial values), which
    # every such run used up (experiments/schedule_travel.py). The real-data
    # learned-schedule baseline uses the same value.
    "schedule_meta_lr": (0.0, RUN, ADDED_LATER),
    # One learned schedule per meta-training architecture (`learner`), each
    # learner trained on the same data with its own; learners meta-training
    # never saw get the schedules' mean. The learned-schedule baseline too.
    "schedule_per_learner": (False, RUN, ADDED_LATER),
    "grad_clip": (10.0, RUN),  # global-norm clip of the meta-gradient; 0 disables
    "adam_b1": (0.9, RUN),
    "adam_b2": (0.999, RUN),
    "seed": (0, RUN, CONSTANT),
    # Ranking-aware meta-objective (GTN-NAS): the learner "cell:pool" draws each
    # learner's cell from the labelled cells of `ranking_cells` (a gtnjax.nas
    # ground-truth CSV), and the meta-loss adds ranking_weight times a pairwise
    # logistic loss that asks the population's final probe losses to rank
    # like the cells' labels (gtnjax.meta.ranking_loss).
    "ranking_cells": ("", RUN, ADDED_LATER),
    # Batch norm of cell learners ("cell:..."): "mean" (mean-only, like the
    # other gtnjax learners) or "full" (mean and variance with a learned
    # scale, as the official GTN-NAS candidates; statistics of the last
    # training batch, i.e. running-average momentum 0).
    "cell_batch_norm": ("mean", RUN, CONSTANT, ADDED_LATER),
    "ranking_weight": (0.0, RUN, TEACHER, ADDED_LATER),
    # How the architectures' meta-gradients combine (gtnjax.meta.MetaSetup):
    # "mean" (the paper's: the gradient of the mean meta-loss) | "balanced"
    # (each rescaled to the mean of their norms, then averaged).
    "population_gradient": ("mean", RUN, TEACHER, ADDED_LATER),
    # A non-finite meta-gradient skips the update (params and Adam state kept);
    # this many skips in a row stop the run with an error (1: the paper's code,
    # which stops on the first; 0: never stop).
    "max_consecutive_skips": (20,),
    # Bookkeeping.
    "log_every": (1,),  # meta-steps between metrics.jsonl lines
    "eval_every": (0,),  # meta-steps between test-accuracy evaluations logged as test_accuracy (0: none)
    "checkpoint_every": (50,),  # meta-steps between checkpoints (and one at the end)
    "keep_checkpoints": (3,),
    # Evaluation after training (and `gtnjax evaluate`).
    "eval_learners": ("",),  # architectures to evaluate; "" means `learner`
    "eval_seeds": (5,),
    "baseline_lrs": ((0.01, 0.03, 0.1, 0.3, 1.0), CONSTANT),  # real-data baseline sweep (constant lr)
    "baseline_momenta": ((0.5, 0.9), CONSTANT),
    # The official code's baseline: real batches with a meta-learned per-step lr
    # and momentum, meta-trained with this config's meta-training settings.
    "learned_schedule_baseline": (True,),
    "baseline_dir": ("",),  # cache of both baselines; "" means $GTNJAX_CACHE_DIR/baselines
    # Devices: population is sharded over this many devices; 0 means all.
    "num_devices": (0,),
}


def default_config() -> ml_collections.ConfigDict:
  """Every field a run reads (`_FIELDS`, with its meaning), with the defaults
  of the built-in single-learner run; the embedded digits run is
  `gtnjax/configs/digits.py`."""
  c = ml_collections.ConfigDict()
  for name, (default, *_) in _FIELDS.items():
    c[name] = default
  return c


def fields_with(role: str) -> tuple[str, ...]:
  """The config fields declared with `role` (RUN, TEACHER or CONSTANT), in order."""
  return tuple(name for name, (_, *roles) in _FIELDS.items() if role in roles)


# Fields whose change would make an existing workdir's checkpoints meaningless.
RUN_DEFINING_FIELDS = fields_with(RUN)


def key_values(config, role: str) -> dict:
  """The `role` fields of `config` for a cache key: every one, except the
  ADDED_LATER fields still at their defaults."""
  return {f: config[f] for f in fields_with(role)
          if not (f in fields_with(ADDED_LATER) and config[f] == _FIELDS[f][0])}


def run_key_values(config) -> dict:
  """The RUN fields of `config` for a cache key (`key_values`)."""
  return key_values(config, RUN)

# `teacher.TeacherSpec`'s names for the TEACHER_SPEC fields it names otherwise:
# the config's names say whose steps and batches they are, the spec is the teacher's.
_TEACHER_SPEC_NAMES = {"teacher": "kind", "inner_batch_size": "batch_size",
                       "init_inner_lr": "init_lr", "init_inner_momentum": "init_momentum"}


def teacher_spec_fields(config) -> dict:
  """The TEACHER_SPEC fields of `config` under `teacher.TeacherSpec`'s names
  (every spec field but the data set's image_shape and num_classes)."""
  return {_TEACHER_SPEC_NAMES.get(f, f): config[f] for f in fields_with(TEACHER_SPEC)}


def load_config_file(spec: str, defaults: ml_collections.ConfigDict | None = None
                     ) -> ml_collections.ConfigDict:
  """Load `FILE.py[:ARG]` by calling its `get_config(ARG)`; its fields must be
  those of `defaults` (the training config's unless given)."""
  defaults = default_config() if defaults is None else defaults
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"--config: no file {path!r}; configs live in experiments/configs/ "
                      "(e.g. --config experiments/configs/digits.py)")
  module_spec = importlib.util.spec_from_file_location("gtnjax_user_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # a user's file: report it rather than a traceback
    raise ConfigError(f"--config: {path} failed to load: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise ConfigError(f"--config: {path} defines no get_config(arg) function")
  try:
    config = module.get_config(arg or None)
  except ValueError as e:
    raise ConfigError(f"--config {spec}: {e}") from e
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"--config: {path}: get_config must return an ml_collections.ConfigDict")
  unknown = set(config.keys()) - set(defaults.keys())
  if unknown:
    raise ConfigError(f"--config: {path} sets unknown field(s) {sorted(unknown)}; "
                      f"known fields: {sorted(defaults.keys())}")
  return config


def _parse_value(field: str, text: str, current):
  if isinstance(current, bool):
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
      return True
    if lowered in ("0", "false", "no"):
      return False
    raise ConfigError(f"--config.{field}: expected true or false, got {text!r}")
  if isinstance(current, (int, float)):
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ConfigError(f"--config.{field}: expected a number, got {text!r}")
    if isinstance(current, int) and not float(value).is_integer():
      raise ConfigError(f"--config.{field}: expected an integer, got {text!r}")
    return type(current)(value)
  if isinstance(current, tuple):
    try:
      value = ast.literal_eval(text if "," in text or text.startswith("(") else text + ",")
    except (ValueError, SyntaxError):
      raise ConfigError(f"--config.{field}: expected comma-separated numbers, got {text!r}")
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
  return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, str]
                    ) -> ml_collections.ConfigDict:
  """Apply `FIELD=VALUE` strings, typed like the field's current value."""
  config = ml_collections.ConfigDict(config.to_dict())
  for field, text in overrides.items():
    if field not in config:
      close = difflib.get_close_matches(field, list(config.keys()), n=3)
      hint = f" (did you mean {', '.join(close)}?)" if close else ""
      raise ConfigError(f"--config.{field}: no such config field{hint}; "
                        f"known fields: {', '.join(sorted(config.keys()))}")
    config[field] = _parse_value(field, text, config[field])
  return config


def learner_names(config) -> tuple[str, ...]:
  return tuple(n.strip() for n in config.learner.split(",") if n.strip())


def eval_learner_names(config) -> tuple[str, ...]:
  names = tuple(n.strip() for n in config.eval_learners.split(",") if n.strip())
  return names or learner_names(config)


def validate(config, custom_learners: tuple[str, ...] = ()) -> None:
  # Long but flat: one `need` per rule, read top to bottom like a table.
  """Every check that needs neither data nor compilation. Raises ConfigError.

  custom_learners: names of learner specs given in Python (`train.prepare`'s
  `learners`), valid in `learner` and `eval_learners` besides the built-in names.
  """
  def need(condition, field, message):
    if not condition:
      raise ConfigError(f"config field '{field}' = {config[field]!r}: {message}")

  need(isinstance(config.eval_every, int) and config.eval_every >= 0, "eval_every",
       "must be an integer >= 0 (0: no evaluation during meta-training)")
  for field in ("inner_steps", "inner_batch_size", "meta_batch_size", "population",
                "num_meta_steps", "noise_size", "log_every", "checkpoint_every",
                "keep_checkpoints", "eval_seeds", "generator_chunk"):
    need(isinstance(config[field], int) and config[field] > 0, field,
         "must be a positive integer")
  for field in ("meta_lr", "init_inner_lr", "init_inner_momentum"):
    need(config[field] > 0, field, "must be positive (it is log-parameterised or a step size)")
  need(config.schedule_meta_lr >= 0, "schedule_meta_lr",
       "must be >= 0 (0: the schedule is updated with meta_lr)")
  need(0 < config.final_relative_lr <= 1, "final_relative_lr", "must be in (0, 1]")
  need(config.grad_clip >= 0, "grad_clip", "must be >= 0 (0 disables clipping)")
  need(0 <= config.adam_b1 < 1, "adam_b1", "must be in [0, 1)")
  need(0 <= config.adam_b2 < 1, "adam_b2", "must be in [0, 1)")
  need(config.num_devices >= 0, "num_devices", "must be >= 0 (0 uses every device)")
  need(isinstance(config.max_consecutive_skips, int) and config.max_consecutive_skips >= 0,
       "max_consecutive_skips", "must be an integer >= 0 (0: never stop on skipped updates)")
  need(config.momentum_parameterisation in teacher.MOMENTUM_PARAMETERISATIONS,
       "momentum_parameterisation", f"choose one of {', '.join(teacher.MOMENTUM_PARAMETERISATIONS)}")
  need(config.momentum_parameterisation == "log" or config.init_inner_momentum < 1,
       "init_inner_momentum", "must be below 1 with momentum_parameterisation=sigmoid")
  need(config.generator_padding in layers.UPSAMPLE_PADDING_MODES, "generator_padding",
       f"choose one of {', '.join(layers.UPSAMPLE_PADDING_MODES)}")
  need(config.output_init in teacher.OUTPUT_INITS, "output_init",
       f"choose one of {', '.join(teacher.OUTPUT_INITS)}")
  need(config.probe_every >= 0, "probe_every", "must be >= 0 (0: only the final probe)")
  need(config.probe_every == 0 or config.inner_steps % config.probe_every == 0, "probe_every",
       f"must divide inner_steps={config.inner_steps} (or be 0 for the final probe only)")
  need(config.teacher in teacher.TEACHER_KINDS, "teacher",
       f"unknown teacher; choose one of {', '.join(teacher.TEACHER_KINDS)}")
  need(config.curriculum in teacher.CURRICULA, "curriculum",
       f"unknown curriculum; choose one of {', '.join(teacher.CURRICULA)}")
  need(config.conv_impl == "auto" or config.conv_impl in layers.CONV_IMPLS, "conv_impl",
       f"unknown implementation; choose auto or one of {', '.join(layers.CONV_IMPLS)}")
  need(config.pool_impl == "auto" or config.pool_impl in layers.POOL_IMPLS, "pool_impl",
       f"unknown implementation; choose auto or one of {', '.join(layers.POOL_IMPLS)}")
  need(config.remat in inner_loop.REMAT_POLICIES, "remat",
       f"unknown policy; choose one of {', '.join(inner_loop.REMAT_POLICIES)}")
  for field, names in (("learner", learner_names(config)),
                       ("eval_learners", eval_learner_names(config))):
    need(len(names) > 0, field, "name at least one learner")
    for name in names:
      if name in custom_learners:
        need(not config.random_widths, "random_widths",
             f"is not supported for learners given in Python ({name})")
        continue
      error = registry.name_error(name)
      need(error is None, field, error)
      need(not (config.random_widths and name.startswith(registry.CELL_PREFIX)),
           "random_widths", f"is not supported for cell learners ({name})")
      need(not (config.random_widths and name.startswith(registry.FLAX_PREFIX)),
           "random_widths", f"is not supported for Flax learners ({name})")
  pool_learner = registry.CELL_PREFIX + "pool"
  uses_pool = pool_learner in learner_names(config) + eval_learner_names(config)
  need(not uses_pool or config.ranking_cells, "ranking_cells",
       f"the learner {pool_learner} draws its cells from a table: give a gtnjax.nas "
       "ground-truth CSV of labelled cells")
  from gtnjax.nas import network  # a light module; cell learners are gtnjax.nas's
  need(config.cell_batch_norm in network.BATCH_NORMS, "cell_batch_norm",
       f"choose one of {', '.join(network.BATCH_NORMS)}")
  need(config.ranking_weight >= 0, "ranking_weight", "must be >= 0 (0: no ranking loss)")
  # gtnjax.meta.POPULATION_GRADIENTS (a layer above this module; a test keeps them equal).
  need(config.population_gradient in ("mean", "balanced"), "population_gradient",
       "must be one of ('mean', 'balanced')")
  need(config.ranking_weight == 0 or pool_learner in learner_names(config), "ranking_weight",
       f"ranks the labelled cells of the learner {pool_learner}: set learner={pool_learner!r}")
  need(config.ranking_weight == 0 or config.population >= 2, "ranking_weight",
       "ranks the learners of one meta-step: set population >= 2")
  need(len(config.baseline_lrs) > 0 and all(v > 0 for v in config.baseline_lrs),
       "baseline_lrs", "give one or more positive learning rates")
  need(len(config.baseline_momenta) > 0 and all(0 <= v < 1 for v in config.baseline_momenta),
       "baseline_momenta", "give one or more momenta in [0, 1)")
  error = teacher.soft_labels_error(config.teacher, config.curriculum, config.soft_labels)
  need(error is None, "soft_labels", error)


def validate_for_data(config, image_shape: tuple[int, int, int], num_train: int) -> None:
  """Checks that need the data set's shape."""
  error = teacher.image_shape_error(config.teacher, image_shape)
  if error:
    raise ConfigError(f"config field 'teacher' = {config.teacher!r} with data set "
                      f"{config.dataset!r}: {error}")
  if num_train < 1:
    raise ConfigError(f"data set {config.dataset!r} has no training images")


def with_resolved_impls(config) -> ml_collections.ConfigDict:
  """A copy of `config` with conv_impl and pool_impl resolved ("auto" becomes
  this backend's choice): what a run's specs use and its config.json records."""
  resolved = ml_collections.ConfigDict(config.to_dict())
  resolved.conv_impl = layers.resolve_impl("conv2d", config.conv_impl)
  resolved.pool_impl = layers.resolve_impl("max_pool", config.pool_impl)
  return resolved


def to_json(config) -> str:
  return json.dumps(config.to_dict(), indent=1, sort_keys=True, default=list)


def from_json(text: str) -> ml_collections.ConfigDict:
  values = json.loads(text)
  base = default_config()
  for field, value in values.items():
    if field in base:
      base[field] = tuple(value) if isinstance(base[field], tuple) else value
  return base
