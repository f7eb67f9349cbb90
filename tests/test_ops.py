"""Each kernel of gtnjax.ops against its library reference (lax.conv,
reduce_window): values, first and second derivatives, on tiny shapes in
float64, and the max-pools' tie rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from _derivative_checks import RTOL, assert_same_derivatives, random_arrays
from gtnjax import ops
from gtnjax.ops import pool

# Every test here runs in float64 (the `float64` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("float64")


_WIDE = ops.ROUTED_WIDE_CHANNELS


_NARROW_CASES = [
    ((2, 6, 5, 3), (3, 3, 3, 4), 1),   # C_in < C_out
    ((2, 5, 5, 4), (3, 3, 4, 2), 1),   # C_in > C_out
    ((1, 6, 6, 2), (3, 3, 2, 1), 0),   # single output channel, no padding
    ((2, 4, 4, 1), (3, 2, 1, 3), 2),   # non-square kernel, wide padding
    ((2, 4, 4, 3), (1, 1, 3, 2), 0),   # 1x1
]
# Wide enough on both sides that "routed" runs the library convolution for
# values and input gradients, with narrow-side kernel gradients. Only "routed"
# branches on channel counts: im2col and shifted_outputs compute wide and
# narrow channels alike, so for them these (the costliest) cases catch nothing
# the narrow ones do not.
_WIDE_CASES = [
    ((2, 5, 4, _WIDE), (3, 3, _WIDE, _WIDE + 2), 1),
    ((2, 4, 5, _WIDE + 2), (3, 3, _WIDE + 2, _WIDE), 1),
    ((2, 5, 5, _WIDE + 1), (3, 3, _WIDE + 1, 3), 1),   # wide in, narrow out
]


@pytest.mark.parametrize("impl,x_shape,k_shape,padding", [
    (impl, *case) for impl in ("im2col", "shifted_outputs", "routed")
    # im2col skips the first narrow case: one reshape of every tap whatever the
    # padding, so C_in < C_out is the non-square case's and 3x3 with padding 1
    # the second's.
    for case in ((_NARROW_CASES[1:] if impl == "im2col" else _NARROW_CASES)
                 + (_WIDE_CASES if impl == "routed" else []))])
def test_conv2d_matches_lax(impl, x_shape, k_shape, padding):
  fn = {"im2col": ops.conv2d_im2col, "shifted_outputs": ops.conv2d_shifted_outputs,
        "routed": ops.conv2d_routed}[impl]
  x, k = random_arrays(0, x_shape, k_shape)
  assert_same_derivatives(lambda x, k: fn(x, k, padding),
                           lambda x, k: ops.conv2d_lax(x, k, padding), (x, k))


@pytest.mark.parametrize("window,stride,padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 2, 0)])
def test_max_pool_matches_reduce_window(window, stride, padding):
  (x,) = random_arrays(3, (2, 7, 6, 3))
  assert_same_derivatives(lambda x: ops.max_pool_slices(x, window, stride, padding),
                           lambda x: ops.max_pool_lax(x, window, stride, padding), (x,))


@pytest.mark.parametrize("shape", [(2, 7, 6, 3), (2, 8, 8, 2), (1, 5, 4, 1), (1, 2, 3, 2)])
def test_max_pool_phases_matches_reduce_window(shape):
  # Odd and even H and W: the phase split pads odd sizes to even.
  (x,) = random_arrays(9, shape)
  assert_same_derivatives(ops.max_pool_phases,
                           lambda x: ops.max_pool_lax(x, 3, 2, 1), (x,))


@pytest.mark.parametrize("pool", [ops.max_pool_slices, ops.max_pool_phases])
def test_max_pool_ties_route_to_one_input_like_reduce_window(pool):
  # Constant input: every window is a tie. reduce_window's gradient sends each
  # output's cotangent to one input; so must ours (jnp.maximum would split it).
  x = jnp.ones((1, 5, 5, 1))
  g_ref = jax.grad(lambda x: jnp.sum(ops.max_pool_lax(x)))(x)
  g = jax.grad(lambda x: jnp.sum(pool(x)))(x)
  assert float(jnp.sum(g)) == float(jnp.sum(g_ref)) == 9.0
  np.testing.assert_array_equal(g, g_ref)


@pytest.mark.parametrize("pool", [ops.max_pool_slices, ops.max_pool_phases])
def test_max_pool_ties_second_order_like_reduce_window(pool):
  # Values on a coarse grid: most windows have tied maxima, so a tie rule
  # that differs at any order (e.g. jnp.maximum's halving) shows up.
  (x,) = random_arrays(12, (2, 6, 7, 2))
  x = jnp.round(x)
  assert_same_derivatives(pool, lambda x: ops.max_pool_lax(x, 3, 2, 1), (x,))


def test_max_pool_phases_gather_is_the_transpose_of_scatter():
  # The gradient's two linear maps, <scatter(g), u> == <g, gather(u)>, on a
  # winner pattern from real data (not a jax.vjp identity: both are custom).
  x, u = random_arrays(10, (2, 7, 6, 3), (2, 7, 6, 3))
  _, winner = pool._pool_forward(x)
  (g,) = random_arrays(11, winner.shape)
  lhs = jnp.vdot(pool._pool_scatter(g, winner, (7, 6)), u)
  rhs = jnp.vdot(g, pool._pool_gather(u, winner))
  np.testing.assert_allclose(lhs, rhs, rtol=RTOL)
  assert int(jnp.min(winner)) >= 0 and int(jnp.max(winner)) <= 8


def test_max_pool_forward_mode():
  (x,) = random_arrays(4, (1, 6, 6, 2))
  check_grads(ops.max_pool_slices, (x,), order=2, modes=("fwd", "rev"))
