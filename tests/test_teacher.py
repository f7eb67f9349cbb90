"""Every teacher kind and curriculum produces well-formed batches (no meta-gradient
compile needed; the finite-difference tests cover the gradients)."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _derivative_checks import QUICK_COMPILE
from gtnjax import config as gconfig, curriculum, generator, learners, registry, teacher

SHAPE = (8, 8, 1)
K = 4
T, B = 3, 8


def spec(kind="generator", curriculum="full", soft_labels=False):
  return teacher.TeacherSpec(kind=kind, curriculum=curriculum, image_shape=SHAPE,
                             num_classes=K, inner_steps=T, batch_size=B, noise_size=5,
                             soft_labels=soft_labels)


TRAIN_X = jax.random.normal(jax.random.key(1), (50, *SHAPE))
TRAIN_Y = jnp.arange(50) % K

ALL = [("generator", c) for c in teacher.CURRICULA] + [("real_data", "full"),
                                                       ("distillation", "full")]


@pytest.mark.parametrize("kind,curriculum", ALL)
def test_batches_shapes_and_determinism(kind, curriculum):
  s = spec(kind, curriculum)
  params = s.init(jax.random.key(0))
  batches = jax.jit(s.batches)(params, jax.random.key(2), TRAIN_X, TRAIN_Y)
  assert batches.x.shape == (T, B, *SHAPE)
  assert batches.y.shape == (T, B, K)
  np.testing.assert_allclose(batches.y.sum(-1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(batches.lr, 0.02, rtol=1e-6)
  np.testing.assert_allclose(batches.momentum, 0.5, rtol=1e-6)
  assert np.all(np.isfinite(batches.x))
  again = jax.jit(s.batches)(params, jax.random.key(2), TRAIN_X, TRAIN_Y)
  np.testing.assert_array_equal(batches.x, again.x)
  if kind == "generator":
    assert np.all(np.abs(batches.x) <= 2.0)  # 2 tanh
  stochastic = curriculum in ("none", "shuffled_batch", "shuffled_all", "gaussian") or (
      kind == "real_data")
  other = jax.jit(s.batches)(params, jax.random.key(3), TRAIN_X, TRAIN_Y)
  assert stochastic == (not np.array_equal(batches.x, other.x))


def test_full_curriculum_labels_are_balanced():
  s = spec()
  batches = s.batches(s.init(jax.random.key(0)), jax.random.key(1))
  counts = batches.y.argmax(-1).reshape(T, B)
  for step in counts:
    assert np.bincount(step, minlength=K).tolist() == [B // K] * K


@pytest.mark.parametrize("curriculum", ["shuffled_batch", "shuffled_all"])
def test_shuffled_curricula_reach_the_learned_tensor(curriculum):
  s = spec(curriculum=curriculum, soft_labels=True)
  params = s.init(jax.random.key(0))
  grads = jax.grad(lambda p: jnp.sum(s.batches(p, jax.random.key(4)).x ** 2)
                   + jnp.sum(s.batches(p, jax.random.key(4)).y[..., 0]))(params)
  assert float(jnp.abs(grads["curriculum"]).sum()) > 0
  assert float(jnp.abs(grads["label_logits"]).sum()) > 0


def curriculum_inputs(name, key=jax.random.key(5)):
  """A curriculum strategy's (noise, labels, slots) for `spec(curriculum=name)`."""
  s = spec(curriculum=name)
  params = s.init(jax.random.key(0))
  noise, labels, slots = curriculum.curriculum_named(name).inputs(
      s, params.get("curriculum"), *jax.random.split(key))
  return s, params, noise, labels, slots


def test_full_curriculum_reads_the_learned_tensor_in_order():
  s, params, noise, labels, slots = curriculum_inputs("full")
  np.testing.assert_array_equal(noise, params["curriculum"])
  np.testing.assert_array_equal(labels, s.balanced_labels())
  np.testing.assert_array_equal(slots, s.ordered_slots())


def test_shuffled_batch_moves_whole_learned_steps_with_their_labels():
  s, params, noise, labels, slots = curriculum_inputs("shuffled_batch")
  rows = slots[:, 0] // B
  np.testing.assert_array_equal(slots, rows[:, None] * B + np.arange(B))
  np.testing.assert_array_equal(noise, params["curriculum"][rows])
  np.testing.assert_array_equal(labels, s.balanced_labels()[rows])


def test_shuffled_all_draws_single_slots_with_their_labels():
  s, params, noise, labels, slots = curriculum_inputs("shuffled_all")
  np.testing.assert_array_equal(noise, params["curriculum"].reshape(T * B, -1)[slots])
  np.testing.assert_array_equal(labels, s.balanced_labels().reshape(-1)[slots])
  assert any(len(set((step // B).tolist())) > 1 for step in np.asarray(slots))  # rows mix


def test_no_curriculum_learns_nothing_and_draws_fresh_labels():
  s, params, _, labels, _ = curriculum_inputs("none")
  assert "curriculum" not in params and not s.has_fixed_label_slots
  assert not np.array_equal(labels, curriculum_inputs("none", jax.random.key(6))[3])


def test_gaussian_curriculum_samples_around_its_learned_per_step_mean():
  s = spec(curriculum="gaussian")
  learned = {"mean": jnp.arange(T, dtype=jnp.float32)[:, None] * jnp.ones((T, 5)),
             "log_sigma": jnp.full((T, 5), math.log(1e-3))}
  noise, labels, _ = curriculum.curriculum_named("gaussian").inputs(
      s, learned, *jax.random.split(jax.random.key(0)))
  np.testing.assert_allclose(noise, jnp.broadcast_to(learned["mean"][:, None], noise.shape),
                             atol=1e-2)
  np.testing.assert_array_equal(labels, s.balanced_labels())


# Each kind's own top-level params besides the schedule. Checkpoints restore by
# these names, so a run saved before a refactor must find the same ones.
OWN_PARAMS = {("generator", "full"): {"curriculum", "generator"},
              ("generator", "none"): {"generator"},
              ("generator", "shuffled_batch"): {"curriculum", "generator"},
              ("generator", "shuffled_all"): {"curriculum", "generator"},
              ("generator", "gaussian"): {"curriculum", "generator"},
              ("real_data", "full"): set(),
              ("distillation", "full"): {"pixels"}}


@pytest.mark.parametrize("kind,curriculum_name", ALL)
def test_teacher_params_keep_their_checkpointed_names(kind, curriculum_name):
  for momentum_parameterisation, momentum in (("log", "log_momentum"),
                                              ("sigmoid", "momentum_logit")):
    s = dataclasses.replace(spec(kind, curriculum_name, soft_labels=False),
                            momentum_parameterisation=momentum_parameterisation)
    shapes = jax.eval_shape(s.init, jax.random.key(0))
    assert set(shapes) == {"log_lr", momentum} | OWN_PARAMS[kind, curriculum_name]
  if s.has_fixed_label_slots:
    soft = jax.eval_shape(spec(kind, curriculum_name, soft_labels=True).init, jax.random.key(0))
    assert set(soft) == set(shapes) - {"momentum_logit"} | {"log_momentum", "label_logits"}
  if curriculum_name == "gaussian":
    assert set(shapes["curriculum"]) == {"mean", "log_sigma"}


@pytest.mark.parametrize("kind,curriculum_name,has_generator,learns_inputs,fixed_slots", [
    ("generator", "full", True, True, True), ("generator", "none", True, True, False),
    ("real_data", "full", False, False, False), ("distillation", "full", False, True, True)])
def test_kinds_answer_what_their_callers_ask(kind, curriculum_name, has_generator,
                                              learns_inputs, fixed_slots):
  s = spec(kind, curriculum_name)
  assert (s.has_generator, s.learns_inputs, s.has_fixed_label_slots) == (
      has_generator, learns_inputs, fixed_slots)


def test_the_config_gives_every_teacher_spec_field_but_the_data_sets():
  config = gconfig.default_config()
  values = gconfig.teacher_spec_fields(config)
  # `schedules` counts the learners when `schedule_per_learner` (train.prepare).
  assert set(values) == ({f.name for f in dataclasses.fields(teacher.TeacherSpec)}
                         - {"image_shape", "num_classes", "schedules"})
  s = teacher.TeacherSpec(image_shape=SHAPE, num_classes=K, **values)
  assert (s.kind, s.batch_size, s.init_lr, s.init_momentum) == (
      config.teacher, config.inner_batch_size, config.init_inner_lr, config.init_inner_momentum)


def test_generator_rejects_sizes_not_divisible_by_4():
  with pytest.raises(ValueError, match="multiples of 4"):
    teacher.TeacherSpec(kind="generator", curriculum="full", image_shape=(10, 10, 1),
                        num_classes=K, inner_steps=T, batch_size=B)


def test_soft_labels_need_fixed_slots():
  with pytest.raises(ValueError, match="soft_labels"):
    spec(curriculum="none", soft_labels=True)


@pytest.mark.parametrize("name", sorted(learners.ARCHITECTURES))
def test_learners_forward(name):
  for shape in [(8, 8, 1), (28, 28, 1), (32, 32, 3)]:
    s = registry.make_learner(name, shape, 10, random_widths=True)

    # One program per shape (eager convolutions are slow to dispatch), compiled
    # fast rather than well: it runs once.
    @functools.partial(jax.jit, compiler_options=QUICK_COMPILE)
    def forward(key):
      params = s.init(key)
      logits, means = s.apply(params, jnp.ones((2, *shape)))
      # test mode with given means: per-example predictions independent of the batch
      single, _ = s.apply(params, jnp.ones((1, *shape)), means)
      pair, _ = s.apply(params, jnp.ones((2, *shape)), means)
      return logits, means, single, pair

    logits, means, single, pair = forward(jax.random.key(0))
    assert logits.shape == (2, 10)
    assert len(means) == len(s.hidden_layer_widths)
    np.testing.assert_allclose(single[0], pair[0], rtol=1e-5, atol=1e-5)


def test_random_widths_mask_channels():
  s = registry.make_learner("cnn", (8, 8, 1), 10, random_widths=True)
  widths = {int(m.sum()) for k in range(6)
            for m in s.init(jax.random.key(k))["width_masks"][:1]}
  assert len(widths) > 1 and all(16 <= w <= 64 for w in widths)


def test_sigmoid_momentum_starts_at_its_value_and_stays_below_one():
  spec = teacher.TeacherSpec(kind="distillation", curriculum="full", image_shape=(4, 4, 1),
                             num_classes=2, inner_steps=3, batch_size=2, init_momentum=0.9,
                             momentum_parameterisation="sigmoid")
  params = spec.init(jax.random.key(0))
  _, momentum = spec.schedule(params)
  np.testing.assert_allclose(momentum, 0.9, rtol=1e-6)
  params["momentum_logit"] = params["momentum_logit"] + 5.0  # log form: 0.9 e^5 = 134
  assert 0.99 < float(jnp.max(spec.schedule(params)[1])) < 1.0


def test_generator_kind_runs_the_generator_network_per_step():
  # The teacher only feeds the network (gtnjax.generator); step t's images are
  # generator_apply of step t's noise and labels.
  s = spec()
  params = s.init(jax.random.key(0))
  x = s.batches(params, jax.random.key(1)).x
  inputs = jnp.concatenate(
      [params["curriculum"][1], jax.nn.one_hot(s.balanced_labels()[1], K)], axis=-1)
  direct = generator.generator_apply(params["generator"], inputs, SHAPE, conv_impl=s.conv_impl)
  np.testing.assert_allclose(x[1], direct, rtol=1e-5, atol=1e-5)
  assert float(jnp.max(jnp.abs(direct))) <= 2.0
