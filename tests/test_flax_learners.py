"""A user's Flax module as a learner (gtnjax.flax_learners): wrapping, the
batch-statistics convention, the meta-gradient through it, `flax:` names, a run.

The factories below are also learner names, e.g. "flax:test_flax_learners:make_cnn"
(pytest puts tests/ on the import path).
"""

import json
import os
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from _derivative_checks import QUICK_COMPILE, check_directional_derivatives
from gtnjax import (baselines, config as gconfig, evaluation, flax_learners, inner_loop,
                    meta, registry, report, rundir, teacher, train)
from gtnjax.teacher import InnerBatches

SHAPE = (8, 8, 1)
CLASSES = 3


class SmallCnn(nn.Module):
  """conv-BatchNorm-swish-avgpool, dense-BatchNorm-swish, dense (smooth, so that
  finite differences meet no kink)."""
  num_classes: int = CLASSES
  momentum: float = 0.0
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    norm = lambda h: nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                                  param_dtype=self.param_dtype)(h)
    x = nn.Conv(4, (3, 3), param_dtype=self.param_dtype)(x)
    x = nn.avg_pool(nn.swish(norm(x)), (2, 2), (2, 2))
    x = nn.Dense(8, param_dtype=self.param_dtype)(x.reshape(x.shape[0], -1))
    x = nn.swish(norm(x))
    return nn.Dense(self.num_classes, param_dtype=self.param_dtype)(x)


class Mlp(nn.Module):
  """Dense-BatchNorm-relu, dense, with the training flag under another name."""
  num_classes: int = 10
  width: int = 16

  @nn.compact
  def __call__(self, x, is_training: bool = False):
    x = nn.Dense(self.width)(x.reshape(x.shape[0], -1))
    x = nn.BatchNorm(use_running_average=not is_training, momentum=0.0)(x)
    return nn.Dense(self.num_classes)(nn.relu(x))


class PlainMlp(nn.Module):
  """No BatchNorm and no training flag."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.num_classes)(nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1))))


# "flax:test_flax_learners:<factory>" learners for the digits data set (10 classes).
def make_cnn():
  return SmallCnn(num_classes=10)


def make_plain_mlp():
  return PlainMlp()


def make_three_class_cnn():
  return SmallCnn(num_classes=CLASSES)  # does not fit digits


def not_a_module():
  return 3


def random_batches(key, steps, batch, lr=0.1, momentum=0.5):
  x_key, y_key = jax.random.split(key)
  x = jax.random.normal(x_key, (steps, batch, *SHAPE))
  y = jax.nn.one_hot(jax.random.randint(y_key, (steps, batch), 0, CLASSES), CLASSES)
  return InnerBatches(x, y, jnp.full((steps,), lr), jnp.full((steps,), momentum))


# ------------------------------------------------------------------ wrapping
def test_linen_learner_gives_logits_and_trains_with_unroll():
  spec = flax_learners.from_flax(SmallCnn(), SHAPE, CLASSES, name="small_cnn")
  x = jax.random.normal(jax.random.key(1), (5, *SHAPE))
  # One fixed batch seen 6 times: the training loss must fall.
  batches = jax.tree.map(lambda a: jnp.repeat(a, 6, axis=0),
                         random_batches(jax.random.key(2), 1, 8))
  probes = inner_loop.Probes(jax.random.normal(jax.random.key(3), (2, 6, *SHAPE)),
                             jnp.array([[0, 1, 2, 0, 1, 2]] * 2))

  @jax.jit  # one compilation, not one per operation
  def run():
    state = inner_loop.init_state(spec, jax.random.key(0))
    out = inner_loop.unroll(spec, state, batches, probes, remat="block")
    # The statistics of the latest training batch, with the parameters
    # entering that step (gtnjax's convention: momentum 0) ...
    before_last = evaluation.continue_training(spec, state,
                                               jax.tree.map(lambda a: a[:5], batches))
    last_stats = spec.apply(before_last.params, batches.x[5])[1]
    # ... and test-mode logits with them, of the whole batch and of a part.
    test_all = spec.apply(out.state.params, x, out.state.batch_means)[0]
    test_two = spec.apply(out.state.params, x[:2], out.state.batch_means)[0]
    return state, spec.apply(state.params, x), out, last_stats, test_all, test_two

  state, (logits, stats), out, last_stats, test_all, test_two = run()
  chex.assert_trees_all_equal(state.batch_means, {  # Flax's initial statistics
      f"BatchNorm_{i}": {"mean": jnp.zeros((w,)), "var": jnp.ones((w,))}
      for i, w in enumerate((4, 8))})
  chex.assert_shape(logits, (5, CLASSES))
  chex.assert_tree_all_finite((logits, stats, out))
  assert float(out.train_losses[-1]) < 0.75 * float(out.train_losses[0])
  chex.assert_trees_all_close(out.state.batch_means, last_stats, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(test_all[:2], test_two, rtol=1e-5, atol=1e-6)


def test_specs_are_hashed_by_the_module_definition():
  a = flax_learners.from_flax(Mlp(), SHAPE, 10, name="mlp", train_kwarg="is_training")
  b = flax_learners.from_flax(Mlp(), SHAPE, 10, name="mlp", train_kwarg="is_training")
  c = flax_learners.from_flax(Mlp(width=8), SHAPE, 10, name="mlp", train_kwarg="is_training")
  assert a == b and hash(a) == hash(b) and a.fingerprint == b.fingerprint
  assert a != c and a.fingerprint != c.fingerprint
  plain = flax_learners.from_flax(PlainMlp(), SHAPE, 10)  # no train parameter: none passed
  assert plain.train_kwarg is None and plain.name == "PlainMlp"
  assert plain.initial_batch_stats() == {}


@pytest.mark.parametrize("module,kwargs,message", [
    (SmallCnn(momentum=0.9), {}, "momentum=0.0"),              # a running average
    (Mlp(CLASSES), {}, "do not come from the training batch"),  # flag not passed: "train"
    (Mlp(CLASSES), {"train_kwarg": "training"}, "has no parameter 'training'"),
    (SmallCnn(), {"num_classes": 10}, "expected (4, 10)"),
])
def test_modules_breaking_the_convention_are_refused_with_the_fix(module, kwargs, message):
  kwargs = {"num_classes": CLASSES, **kwargs}
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    flax_learners.from_flax(module, SHAPE, **kwargs)


class NnxMlp(nnx.Module):
  def __init__(self, width: int, momentum: float = 0.0, *, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(64, width, rngs=rngs)
    self.norm = nnx.BatchNorm(width, momentum=momentum, rngs=rngs)
    self.out = nnx.Linear(width, CLASSES, rngs=rngs)

  def __call__(self, x):
    return self.out(nnx.relu(self.norm(self.hidden(x.reshape(x.shape[0], -1)))))


def test_nnx_module_natively():
  """An NNX class is split and merged natively (no linen bridge): fresh
  parameters per key, training-mode statistics of its batch, and the
  convention checks of linen modules."""
  spec = flax_learners.from_nnx(NnxMlp, SHAPE, CLASSES, kwargs={"width": 8})
  assert spec.name == "NnxMlp" and isinstance(spec, flax_learners.NnxLearnerSpec)
  assert spec == flax_learners.from_nnx(NnxMlp, SHAPE, CLASSES, kwargs={"width": 8})
  a, b = (spec.init(jax.random.key(k)) for k in (0, 1))
  assert not np.allclose(a["hidden"]["kernel"], b["hidden"]["kernel"])  # fresh per key
  state = inner_loop.init_state(spec, jax.random.key(0))
  batches = random_batches(jax.random.key(2), 3, 8)
  state = jax.jit(lambda s: jax.lax.scan(
      lambda s, b: inner_loop.sgd_step(spec, s, *b), s, batches)[0])(state)
  chex.assert_tree_all_finite(state)
  chex.assert_shape(state.batch_means["norm"]["mean"], (8,))
  assert not np.allclose(state.batch_means["norm"]["mean"], 0)  # a batch's, not the initial
  with pytest.raises(ValueError, match="momentum=0.0"):
    flax_learners.from_nnx(NnxMlp, SHAPE, CLASSES, kwargs={"width": 8, "momentum": 0.99})
  with pytest.raises(ValueError, match="nnx.Module class"):
    flax_learners.from_nnx(NnxMlp(8, rngs=nnx.Rngs(0)), SHAPE, CLASSES)


# --------------------------------------------------------- the meta-gradient
@pytest.mark.usefixtures("float64")
def test_meta_gradient_through_a_batchnorm_learner_matches_finite_differences():
  """Through 2 inner steps of a linen CNN with two BatchNorms: the gradient
  reaches the teacher through the learner's training-mode batch statistics
  and through the stored ones its probes use. The distillation teacher (learned
  pixels, soft labels, lr, momentum) feeds the learner exactly what a
  generator would (an `InnerBatches`) and compiles in a third of the time;
  the generator's own derivatives are test_meta_gradient.py's."""
  lspec = flax_learners.from_flax(SmallCnn(param_dtype=jnp.float64), SHAPE, CLASSES,
                                  name="small_cnn")
  tspec = teacher.TeacherSpec(kind="distillation", curriculum="full", image_shape=SHAPE,
                              num_classes=CLASSES, inner_steps=2, batch_size=4,
                              soft_labels=True, init_lr=0.1)
  setup = meta.MetaSetup(tspec, (lspec,), population=2, meta_batch_size=8, probe_every=1,
                         remat="step")
  # The floor: every leaf moves the meta-loss (one that ignored the teacher
  # would give 0 both ways); the smallest here is ~5e-3.
  checked, paths = check_directional_derivatives(setup, min_abs=1e-3,
                                                 compiler_options=QUICK_COMPILE)
  assert checked == len(paths) == 4
  assert paths == {"['pixels']", "['label_logits']", "['log_lr']", "['log_momentum']"}


# ------------------------------------------------------------ "flax:" names
def test_flax_names_resolve_and_bad_ones_name_the_fix():
  name = "flax:test_flax_learners:make_plain_mlp"
  assert registry.name_error(name) is None
  spec = registry.make_learner(name, SHAPE, 10)
  assert isinstance(spec, flax_learners.FlaxLearnerSpec) and spec.name == name
  assert spec == registry.make_learner(name, SHAPE, 10)  # one spec: one compilation
  for bad, message in [
      ("flax:no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
      ("flax:test_flax_learners:no_such_factory", "has no callable 'no_such_factory'"),
      ("flax:test_flax_learners:not_a_module", "returned a int, not a flax.linen Module"),
      ("flax:test_flax_learners", "write flax:<module>:<factory>"),
      ("flax:test_flax_learners:make-mlp", "write flax:<module>:<factory>")]:
    error = registry.name_error(bad)
    assert error is not None and message in error, (bad, error)
    config = gconfig.default_config()
    config.learner = bad
    with pytest.raises(gconfig.ConfigError, match="config field 'learner'"):
      gconfig.validate(config)
  config = gconfig.default_config()
  config.learner, config.random_widths = name, True
  with pytest.raises(gconfig.ConfigError, match="not supported for Flax learners"):
    gconfig.validate(config)
  # In a run: resolved by prepare; one that does not fit the data set is a ConfigError.
  config = gconfig.default_config()  # digits
  config.learner = name
  assert train.prepare(config).setup.learners[0] == spec
  config.learner = "flax:test_flax_learners:make_three_class_cnn"
  with pytest.raises(gconfig.ConfigError, match=r"expected \(4, 10\)"):
    train.prepare(config)


# --------------------------------------------------------------------- runs
def tiny_config(tmp_path, **overrides):
  """digits.py:test made smaller still: compilation is most of a run's time."""
  config = gconfig.load_config_file(os.path.join(os.path.dirname(__file__), "..", "experiments",
                                                 "configs", "digits.py") + ":test")
  config.update(dict(num_meta_steps=2, checkpoint_every=2, inner_steps=2, inner_batch_size=8,
                     meta_batch_size=16, eval_seeds=1, baseline_lrs=(0.1,),
                     learned_schedule_baseline=False, baseline_dir=str(tmp_path / "baselines")))
  config.update(overrides)
  return config


@pytest.mark.slow
def test_train_run_with_a_flax_learner_named_in_the_config(tmp_path, monkeypatch):
  """Config -> prepare -> meta-training -> evaluation -> baseline -> summary. The
  distillation teacher and a two-point baseline curve only save compile time."""
  monkeypatch.setattr(baselines, "STEP_MULTIPLES", (1, 2))
  config = tiny_config(tmp_path, learner="flax:test_flax_learners:make_cnn",
                       teacher="distillation")
  summary = report.train_and_evaluate(config, str(tmp_path / "run"), progress=False)
  assert summary["learner"] == config.learner
  for field in ("gtn_test_accuracy", "real_data_test_accuracy",
                "untrained_teacher_test_accuracy"):
    assert 0 <= summary[field]["mean"] <= 1
  records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
  assert [r["step"] for r in records] == [1, 2]
  assert all(np.isfinite(r["meta_loss"]) and r["grad_norm"] > 0 for r in records)


def test_learners_given_in_python():
  spec = flax_learners.from_flax(Mlp(), (8, 8, 1), 10, name="my_mlp",
                                 train_kwarg="is_training")
  config = gconfig.load_config_file(os.path.join(os.path.dirname(__file__), "..", "experiments",
                                                 "configs", "digits.py") + ":test")
  config.learner = "my_mlp,cnn_small"
  run = train.prepare(config, learners=[spec])
  assert run.setup.learners[0] is spec and run.learner_spec("my_mlp") is spec
  assert run.setup.learners[1].name == "cnn_small"
  # The learned-schedule baseline is prepared with them too, and meta-trains
  # in a folder of their own definitions (the built-in ones change nothing).
  baseline_run = train.prepare(baselines.learned_schedule_config(config),
                               learners=run.custom_learners)
  assert baseline_run.learner_spec("my_mlp") is spec
  wider = flax_learners.from_flax(Mlp(width=32), (8, 8, 1), 10, name="my_mlp",
                                  train_kwarg="is_training")
  workdir = baselines.learned_schedule_workdir
  assert workdir(config, [spec]) != workdir(config, [wider])
  assert workdir(config, run.setup.learners[1:]) == workdir(config)
  with pytest.raises(gconfig.ConfigError, match="unknown learner 'my_mlp'"):
    train.prepare(config)  # the config names it, but it was not given
  config.learner = "cnn_small"
  with pytest.raises(gconfig.ConfigError, match="set config.learner = 'my_mlp'"):
    train.prepare(config, learners=[spec])
  config.learner = "my_mlp"
  other_shape = flax_learners.from_flax(Mlp(), (4, 4, 1), 10, name="my_mlp",
                                        train_kwarg="is_training")
  with pytest.raises(gconfig.ConfigError, match=r"takes \(4, 4, 1\) images"):
    train.prepare(config, learners=[other_shape])
  builtin_name = flax_learners.from_flax(Mlp(), (8, 8, 1), 10, name="cnn",
                                         train_kwarg="is_training")
  with pytest.raises(gconfig.ConfigError, match="built-in learner name"):
    train.prepare(config, learners=[builtin_name])


def test_builtin_learners_keep_zero_initial_means():
  """What `inner_loop.init_state` built before `initial_batch_stats` existed."""
  for name in ("cnn_small", "cell:conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"):
    spec = registry.make_learner(name, SHAPE, CLASSES)
    chex.assert_trees_all_equal(spec.initial_batch_stats(),
                                tuple(jnp.zeros((w,)) for w in spec.hidden_layer_widths))


def test_a_changed_flax_learner_does_not_resume_another_definitions_run(tmp_path):
  """config.json names the learner; learners.json records what the name meant."""
  config = tiny_config(tmp_path, learner="my_mlp", teacher="distillation")
  config.num_meta_steps = 1
  def flax_run(width):
    spec = flax_learners.from_flax(Mlp(width=width), (8, 8, 1), 10, name="my_mlp",
                                   train_kwarg="is_training")
    return train.prepare(config, learners=[spec])
  workdir = str(tmp_path / "run")
  train.meta_train(flax_run(16), workdir, progress=False)
  recorded = json.load(open(os.path.join(workdir, rundir.LEARNERS_FILE)))
  assert list(recorded) == ["my_mlp"]
  with pytest.raises(gconfig.ConfigError, match="learner definition differs.*my_mlp"):
    train.meta_train(flax_run(32), workdir, progress=False)
  assert json.load(open(os.path.join(workdir, rundir.LEARNERS_FILE))) == recorded
  assert train.meta_train(flax_run(16), workdir, progress=False).step == 1  # the same: resumes
