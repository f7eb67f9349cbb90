"""Each fast primitive against its reference JAX op: values, first and second
derivatives, on tiny shapes in float64 (so agreement is to ~1e-12, not to
float32 rounding). Also the implementation-selection mechanism."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gtnjax import layers

# Every test here runs in float64 (the `float64` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("float64")

RTOL = 1e-9


def _random(key, *shapes):
  keys = jax.random.split(jax.random.key(key), len(shapes))
  return [jax.random.normal(k, s, jnp.float64) for k, s in zip(keys, shapes)]


def _assert_same_derivatives(f, ref, args, key=0):
  """Values, gradients and reverse-over-reverse (Hessian-vector) products of
  f and ref agree; the cotangent enters as an argument, so the second-order
  check also covers derivatives w.r.t. it, as in the meta-gradient."""
  np.testing.assert_allclose(f(*args), ref(*args), rtol=RTOL, atol=RTOL)
  y = ref(*args)
  (c,) = _random(key + 1, y.shape)
  us = _random(key + 2, *[a.shape for a in args])

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


_WIDE = layers.ROUTED_WIDE_CHANNELS


@pytest.mark.parametrize("impl", ["im2col", "shifted_outputs", "routed"])
@pytest.mark.parametrize("x_shape,k_shape,padding", [
    ((2, 6, 5, 3), (3, 3, 3, 4), 1),   # C_in < C_out
    ((2, 5, 5, 4), (3, 3, 4, 2), 1),   # C_in > C_out
    ((1, 6, 6, 2), (3, 3, 2, 1), 0),   # single output channel, no padding
    ((2, 4, 4, 1), (3, 2, 1, 3), 2),   # non-square kernel, wide padding
    ((2, 4, 4, 3), (1, 1, 3, 2), 0),   # 1x1
    # Wide enough on both sides that "routed" runs the library convolution
    # for values and input gradients, with narrow-side kernel gradients.
    ((2, 5, 4, _WIDE), (3, 3, _WIDE, _WIDE + 2), 1),
    ((2, 4, 5, _WIDE + 2), (3, 3, _WIDE + 2, _WIDE), 1),
    ((2, 5, 5, _WIDE + 1), (3, 3, _WIDE + 1, 3), 1),   # wide in, narrow out
])
def test_conv2d_matches_lax(impl, x_shape, k_shape, padding):
  fn = {"im2col": layers.conv2d_im2col, "shifted_outputs": layers.conv2d_shifted_outputs,
        "routed": layers.conv2d_routed}[impl]
  x, k = _random(0, x_shape, k_shape)
  _assert_same_derivatives(lambda x, k: fn(x, k, padding),
                           lambda x, k: layers.conv2d_lax(x, k, padding), (x, k))


@pytest.mark.parametrize("window,stride,padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 2, 0)])
def test_max_pool_matches_reduce_window(window, stride, padding):
  (x,) = _random(3, (2, 7, 6, 3))
  _assert_same_derivatives(lambda x: layers.max_pool_slices(x, window, stride, padding),
                           lambda x: layers.max_pool_lax(x, window, stride, padding), (x,))


@pytest.mark.parametrize("shape", [(2, 7, 6, 3), (2, 8, 8, 2), (1, 5, 4, 1), (1, 2, 3, 2)])
def test_max_pool_phases_matches_reduce_window(shape):
  # Odd and even H and W: the phase split pads odd sizes to even.
  (x,) = _random(9, shape)
  _assert_same_derivatives(layers.max_pool_phases,
                           lambda x: layers.max_pool_lax(x, 3, 2, 1), (x,))


@pytest.mark.parametrize("pool", [layers.max_pool_slices, layers.max_pool_phases])
def test_max_pool_ties_route_to_one_input_like_reduce_window(pool):
  # Constant input: every window is a tie. reduce_window's gradient sends each
  # output's cotangent to one input; so must ours (jnp.maximum would split it).
  x = jnp.ones((1, 5, 5, 1))
  g_ref = jax.grad(lambda x: jnp.sum(layers.max_pool_lax(x)))(x)
  g = jax.grad(lambda x: jnp.sum(pool(x)))(x)
  assert float(jnp.sum(g)) == float(jnp.sum(g_ref)) == 9.0
  np.testing.assert_array_equal(g, g_ref)


@pytest.mark.parametrize("pool", [layers.max_pool_slices, layers.max_pool_phases])
def test_max_pool_ties_second_order_like_reduce_window(pool):
  # Values on a coarse grid: most windows have tied maxima, so a tie rule
  # that differs at any order (e.g. jnp.maximum's halving) shows up.
  (x,) = _random(12, (2, 6, 7, 2))
  x = jnp.round(x)
  _assert_same_derivatives(pool, lambda x: layers.max_pool_lax(x, 3, 2, 1), (x,))


def test_max_pool_phases_gather_is_the_transpose_of_scatter():
  # The gradient's two linear maps, <scatter(g), u> == <g, gather(u)>, on a
  # winner pattern from real data (not a jax.vjp identity: both are custom).
  x, u = _random(10, (2, 7, 6, 3), (2, 7, 6, 3))
  _, winner = layers._pool_forward(x)
  (g,) = _random(11, winner.shape)
  lhs = jnp.vdot(layers._pool_scatter(g, winner, (7, 6)), u)
  rhs = jnp.vdot(g, layers._pool_gather(u, winner))
  np.testing.assert_allclose(lhs, rhs, rtol=RTOL)
  assert int(jnp.min(winner)) >= 0 and int(jnp.max(winner)) <= 8


def test_max_pool_forward_mode():
  (x,) = _random(4, (1, 6, 6, 2))
  check_grads(layers.max_pool_slices, (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("impl", ["gemm", "lax"])
@pytest.mark.parametrize("x_shape,k_shape", [
    ((2, 3, 4, 5), (3, 3, 5, 2)),     # C_in > C_out, H != W
    ((1, 4, 4, 2), (3, 3, 2, 1)),     # one output channel (the generator's last conv)
    ((2, 3, 3, 2), (3, 3, 2, 6)),     # C_in < C_out
])
def test_upsample_conv2d_matches_upsample_then_conv(impl, x_shape, k_shape):
  x, k = _random(13, x_shape, k_shape)
  with layers.use_impl(conv2d=impl):
    _assert_same_derivatives(
        layers.upsample_conv2d,
        lambda x, k: layers.conv2d_lax(layers.upsample_nearest(x), k, 1), (x, k))


def test_upsample_conv2d_reflect_matches_reflect_padded_upsample():
  """The paper's generator pads its upsampled maps by reflection (PyTorch
  padding_mode="reflect"); the input-resolution form must equal it."""
  x, k = _random(14, (2, 3, 4, 3), (3, 3, 3, 2))

  def reference(x, k):
    up = jnp.pad(layers.upsample_nearest(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    return layers.conv2d_lax(up, k, 0)

  _assert_same_derivatives(
      lambda x, k: layers.upsample_conv2d(x, k, padding_mode="reflect"), reference, (x, k))
  zeros = layers.upsample_conv2d(x, k)
  assert not np.allclose(zeros, reference(x, k)), "the two padding modes must differ at the edge"


def _weight_norm_ref(v, g):
  return g * v / jnp.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0)


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 2, 4)])
def test_weight_norm_matches_reference(shape):
  v, g = _random(5, shape, shape[-1:])
  _assert_same_derivatives(layers.weight_norm, _weight_norm_ref, (v, g))


def test_mean_only_batch_norm_matches_reference():
  h, b = _random(6, (4, 3, 3, 5), (5,))
  ref = lambda h, b: h - jnp.mean(h, axis=(0, 1, 2)) + b
  _assert_same_derivatives(lambda h, b: layers.mean_only_batch_norm(h, b)[0], ref, (h, b))


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 3, 2)])
def test_batch_norm_matches_reference(shape):
  h, s, b = _random(7, shape, shape[-1:], shape[-1:])

  def ref(h, s, b):
    axes = tuple(range(h.ndim - 1))
    return (h - h.mean(axes)) / jnp.sqrt(h.var(axes) + 1e-5) * s + b

  _assert_same_derivatives(layers.batch_norm, ref, (h, s, b))


def test_selection_defaults_env_and_override(monkeypatch):
  monkeypatch.delenv("GTNJAX_CONV_IMPL", raising=False)
  monkeypatch.delenv("GTNJAX_POOL_IMPL", raising=False)
  layers.reset_impl()
  assert layers.current_impl("conv2d") == "gemm"   # these tests run on CPU
  assert layers.current_impl("max_pool") == "phases"
  monkeypatch.setenv("GTNJAX_CONV_IMPL", "lax")
  assert layers.current_impl("conv2d") == "lax"
  with layers.use_impl(conv2d="im2col", max_pool="lax"):
    assert layers.current_impl("conv2d") == "im2col"
    assert layers.current_impl("max_pool") == "lax"
  assert layers.current_impl("conv2d") == "lax"
  monkeypatch.setenv("GTNJAX_CONV_IMPL", "nonsense")
  with pytest.raises(ValueError, match="choose one of"):
    layers.current_impl("conv2d")
  with pytest.raises(ValueError, match="choose one of"):
    layers.set_impl(max_pool="avg")


@pytest.mark.parametrize("impl", layers.CONV_IMPLS)
def test_conv2d_dispatch_gives_the_same_values(impl):
  x, k = _random(8, (2, 5, 5, 3), (3, 3, 3, 2))
  with layers.use_impl(conv2d=impl):
    got = layers.conv2d(x, k)
  np.testing.assert_allclose(got, layers.conv2d_lax(x, k), rtol=RTOL, atol=RTOL)
