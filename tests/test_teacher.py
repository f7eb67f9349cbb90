"""Every teacher kind and curriculum produces well-formed batches (no meta-gradient
compile needed; the finite-difference tests cover the gradients)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtnjax import generator, learners, registry, teacher

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
    params = s.init(jax.random.key(0))
    logits, means = jax.jit(s.apply)(params, jnp.ones((2, *shape)))
    assert logits.shape == (2, 10)
    assert len(means) == len(s.hidden_layer_widths)
    # test mode with given means gives per-example predictions independent of the batch
    single, _ = s.apply(params, jnp.ones((1, *shape)), means)
    np.testing.assert_allclose(single[0], s.apply(params, jnp.ones((2, *shape)), means)[0][0],
                               rtol=1e-5, atol=1e-5)


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
