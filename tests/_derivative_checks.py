"""Shared by test_layers.py and test_ops.py: compare a function with its
reference in value, first and second derivatives, in float64 (so agreement is
to ~1e-12, not to float32 rounding)."""

import jax
import jax.numpy as jnp
import numpy as np

RTOL = 1e-9


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
