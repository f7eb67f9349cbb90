"""Shared by test_layers.py and test_ops.py: compare a function with its
reference in value, first and second derivatives, in float64 (so agreement is
to ~1e-12, not to float32 rounding); and by test_meta_gradient.py and
test_flax_learners.py: the meta-gradient against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import meta

RTOL = 1e-9
# XLA options that compile tiny programs several times faster (less optimised
# code, same arithmetic): for checks whose compile time dwarfs their run time.
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def random_arrays(key, *shapes):
  keys = jax.random.split(jax.random.key(key), len(shapes))
  return [jax.random.normal(k, s, jnp.float64) for k, s in zip(keys, shapes)]


def assert_same_derivatives(f, ref, args, key=0):
  """Values, gradients and reverse-over-reverse (Hessian-vector) products of
  f and ref agree; the cotangent enters as an argument, so the second-order
  check also covers derivatives w.r.t. it, as in the meta-gradient."""
  np.testing.assert_allclose(f(*args), ref(*args), rtol=RTOL, atol=RTOL)
  y = ref(*args)
  (c,) = random_arrays(key + 1, y.shape)
  us = random_arrays(key + 2, *[a.shape for a in args])

  def first(fn):
    return jax.grad(lambda *a: jnp.sum(jnp.sin(fn(*a)) * c), argnums=tuple(range(len(args))))

  for got, want in zip(first(f)(*args), first(ref)(*args)):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)

  def second(fn):
    def inner(args, cot):
      _, pullback = jax.vjp(lambda *a: jnp.tanh(fn(*a)), *args)
      return sum(jnp.vdot(g, u) for g, u in zip(pullback(cot), us))
    return jax.grad(inner, argnums=(0, 1))(tuple(args), c)

  for got, want in zip(jax.tree.leaves(second(f)), jax.tree.leaves(second(ref))):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)


def to_float64(tree):
  return jax.tree.map(lambda a: a.astype(jnp.float64), tree)


def check_directional_derivatives(setup, seed=0, eps=1e-5, min_abs=0.0,
                                  compiler_options=None):
  """The meta-loss's gradient (`meta.meta_loss`, float64) against central
  finite differences along a random unit direction of each teacher leaf.
  min_abs: a floor on every directional derivative, so that a meta-loss that
  ignores the teacher (zero both ways) cannot pass. compiler_options: XLA's,
  e.g. QUICK_COMPILE. Returns (leaves checked, their paths)."""
  key = jax.random.key(seed)
  data_key, init_key, step_key = jax.random.split(key, 3)
  images = jax.random.normal(data_key, (40, *setup.teacher.image_shape), jnp.float64)
  labels = jnp.arange(40) % setup.teacher.num_classes
  params = to_float64(setup.teacher.init(init_key))

  def loss_fn(p):
    return meta.meta_loss(p, setup, step_key, images, labels)[0]

  loss = jax.jit(loss_fn, compiler_options=compiler_options)
  grads = jax.jit(jax.grad(loss_fn), compiler_options=compiler_options)(params)
  leaves, treedef = jax.tree.flatten(params)
  grad_leaves = jax.tree.leaves(grads)
  rng = np.random.default_rng(seed)
  checked = 0
  for i, (leaf, grad_leaf) in enumerate(zip(leaves, grad_leaves)):
    direction = rng.standard_normal(leaf.shape)
    direction /= np.linalg.norm(direction) + 1e-30

    def shifted(sign):
      moved = list(leaves)
      moved[i] = leaf + sign * eps * direction
      return float(loss(jax.tree.unflatten(treedef, moved)))

    numeric = (shifted(+1) - shifted(-1)) / (2 * eps)
    analytic = float(jnp.sum(grad_leaf * direction))
    path = jax.tree_util.keystr(jax.tree_util.tree_flatten_with_path(params)[0][i][0])
    assert abs(analytic) > 1e-10 or abs(numeric) < 1e-8, f"{path}: zero gradient"
    assert abs(numeric) >= min_abs, f"{path}: derivative {numeric:.3g} below {min_abs}"
    np.testing.assert_allclose(analytic, numeric, rtol=2e-4, atol=1e-7, err_msg=path)
    checked += 1
  return checked, {jax.tree_util.keystr(p) for p, _ in
                   jax.tree_util.tree_flatten_with_path(params)[0]}
