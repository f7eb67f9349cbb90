"""Max-pool kernels for `layers.max_pool`: reduce_window and two rewrites.

Same values and derivatives as the library's reduce_window, ties included
(tests/test_ops.py). On XLA:CPU reduce_window's gradient lowers to a slow
select-and-scatter; the slice and phase pools are written so that their
derivatives, to second order, are pads, slices, compares and selects.
Which one runs is chosen by `layers.max_pool`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def max_pool_lax(x: jax.Array, window: int = 3, stride: int = 2,
                 padding: int = 1) -> jax.Array:
  """`max_pool` as the library reduce_window (the reference implementation)."""
  return jax.lax.reduce_window(
      x, -jnp.inf, jax.lax.max,
      window_dimensions=(1, window, window, 1),
      window_strides=(1, stride, stride, 1),
      padding=((0, 0), (padding, padding), (padding, padding), (0, 0)))


def _pool_taps(x: jax.Array, window: int, stride: int, padding: int,
               pad_value: float = -jnp.inf) -> list[jax.Array]:
  # The window*window strided views of the padded input, one per tap, each
  # shaped like the output.
  n, h, w, c = x.shape
  h_out = (h + 2 * padding - window) // stride + 1
  w_out = (w + 2 * padding - window) // stride + 1
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
               constant_values=pad_value)
  return [jax.lax.slice(xp, (0, i, j, 0),
                        (n, i + stride * (h_out - 1) + 1, j + stride * (w_out - 1) + 1, c),
                        (1, stride, stride, 1))
          for i in range(window) for j in range(window)]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def max_pool_slices(x: jax.Array, window: int = 3, stride: int = 2,
                    padding: int = 1) -> jax.Array:
  """`max_pool` as an elementwise max over strided slices.

  Its derivative (a custom JVP) routes each output's tangent from the first
  tap, in row-major window order, that attains the max, as reduce_window's
  gradient does. The tangent map is slices and selects whose masks depend
  only on the primal input, so it is linear, transposes to pads and selects
  (not select-and-scatter), and differentiates again at the same cost.
  """
  taps = _pool_taps(x, window, stride, padding)
  return functools.reduce(jnp.maximum, taps)


@max_pool_slices.defjvp
def _max_pool_slices_jvp(window, stride, padding, primals, tangents):
  (x,), (t,) = primals, tangents
  # y through the custom function itself, so that differentiating this rule
  # again (second order) uses this rule again and never jnp.maximum's.
  y = max_pool_slices(x, window, stride, padding)
  taps = _pool_taps(x, window, stride, padding)
  # Padding the tangent with zeros keeps its taps aligned with x's.
  t_taps = _pool_taps(t, window, stride, padding, pad_value=0.0)
  y_dot = jnp.zeros_like(y)
  for tap, t_tap in zip(reversed(taps), reversed(t_taps)):  # first match wins
    y_dot = jnp.where(tap == y, t_tap, y_dot)
  return y, y_dot


# The learners' 3x3 / stride-2 / pad-1 pool, by parity phases. Input row
# 2i - 1 + a (a = 0, 1, 2) of output row i is row i - 1 of the odd rows, row i
# of the even rows, or row i of the odd rows; the same for columns. Splitting
# the input (padded to even H, W) into its four (row parity, column parity)
# phases is a free reshape, every tap is a phase shifted by at most one
# output row/column, and the gradient is the four phases' sums of shifted,
# masked cotangents interleaved back: quarter-size arrays and one write of
# the input-sized result, where the strided-slice pool's gradient padded
# nine input-sized arrays (BENCHMARKS.md). The winning tap of each window is
# kept as an int8 index, so the gradient and its own derivatives are fixed
# linear maps (`_pool_scatter` and its transpose `_pool_gather`), each
# custom_vjp'd to the other: reverse mode to any order, no forward mode
# (use "slices" or "lax" for jax.jvp).
_POOL_TAPS = tuple((a, b) for a in range(3) for b in range(3))  # row-major: tie order


def _shift_back(a: jax.Array, axis: int, fill: float) -> jax.Array:
  # out[i] = a[i - 1], out[0] = fill: tap 0 reads the previous odd row/column.
  pad = [(0, 0)] * a.ndim
  pad[axis] = (1, 0)
  return jnp.pad(jax.lax.slice_in_dim(a, 0, a.shape[axis] - 1, axis=axis), pad,
                 constant_values=fill)


def _shift_forward(a: jax.Array, axis: int) -> jax.Array:
  # out[i] = a[i + 1], out[-1] = 0: the transpose of _shift_back.
  pad = [(0, 0)] * a.ndim
  pad[axis] = (0, 1)
  return jnp.pad(jax.lax.slice_in_dim(a, 1, a.shape[axis], axis=axis), pad)


def _phase_taps(x: jax.Array, fill: float) -> list[jax.Array]:
  # The nine taps of every 3x3/2 window, each [N, Ho, Wo, C], row-major.
  n, h, w, c = x.shape
  ho, wo = (h + 1) // 2, (w + 1) // 2
  x = jnp.pad(x, ((0, 0), (0, 2 * ho - h), (0, 2 * wo - w), (0, 0)), constant_values=fill)
  x6 = x.reshape(n, ho, 2, wo, 2, c)
  rows = (_shift_back(x6[:, :, 1], 1, fill), x6[:, :, 0], x6[:, :, 1])  # [N, Ho, Wo, 2, C]
  def cols(r):
    return (_shift_back(r[:, :, :, 1], 2, fill), r[:, :, :, 0], r[:, :, :, 1])
  row_cols = [cols(r) for r in rows]
  return [row_cols[a][b] for a, b in _POOL_TAPS]


@jax.custom_vjp
def _pool_gather(u: jax.Array, winner: jax.Array) -> jax.Array:
  """Each window's winning tap of u: [N, H, W, C] -> [N, Ho, Wo, C] (linear in u)."""
  out = jnp.zeros(winner.shape, u.dtype)
  for k, tap in enumerate(_phase_taps(u, 0.0)):
    out = jnp.where(winner == k, tap, out)
  return out


def _pool_gather_fwd(u, winner):
  return _pool_gather(u, winner), (winner, u.shape[1:3])


def _pool_gather_bwd(res, g):
  winner, hw = res
  return _pool_scatter(g, winner, hw), None


_pool_gather.defvjp(_pool_gather_fwd, _pool_gather_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _pool_scatter(g: jax.Array, winner: jax.Array, hw: tuple[int, int]) -> jax.Array:
  """Each output's g sent to its window's winning input (the transpose of
  _pool_gather): [N, Ho, Wo, C] -> [N, H, W, C] with H, W = hw."""
  h, w = hw
  n, ho, wo, c = g.shape
  z = {(a, b): jnp.where(winner == 3 * a + b, g, 0.0) for a, b in _POOL_TAPS}
  # Phase (r, s) collects the taps landing on row parity r, column parity s;
  # tap 0 of a row (column) lands one odd row (column) earlier.
  even_even = z[1, 1]
  even_odd = z[1, 2] + _shift_forward(z[1, 0], 2)
  odd_even = z[2, 1] + _shift_forward(z[0, 1], 1)
  odd_odd = (z[2, 2] + _shift_forward(z[2, 0], 2) + _shift_forward(z[0, 2], 1)
             + _shift_forward(_shift_forward(z[0, 0], 1), 2))
  even = jnp.stack([even_even, even_odd], axis=3)  # [N, Ho, Wo, 2, C]
  odd = jnp.stack([odd_even, odd_odd], axis=3)
  dx = jnp.stack([even, odd], axis=2).reshape(n, 2 * ho, 2 * wo, c)
  return dx[:, :h, :w]


def _pool_scatter_fwd(g, winner, hw):
  return _pool_scatter(g, winner, hw), winner


def _pool_scatter_bwd(hw, winner, dx):
  return _pool_gather(dx, winner), None


_pool_scatter.defvjp(_pool_scatter_fwd, _pool_scatter_bwd)


def _pool_forward(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  taps = _phase_taps(x, -jnp.inf)
  y = functools.reduce(jnp.maximum, taps)
  winner = jnp.full(y.shape, len(taps) - 1, jnp.int8)
  for k in reversed(range(len(taps) - 1)):  # the first tap attaining the max wins
    winner = jnp.where(taps[k] == y, jnp.int8(k), winner)
  return y, winner


@jax.custom_vjp
def max_pool_phases(x: jax.Array) -> jax.Array:
  """`max_pool` with window 3, stride 2, padding 1, by parity phases.

  Same values and derivatives (to any order in reverse mode) as
  reduce_window's, ties included: each output's cotangent goes to the first
  tap, in row-major window order, attaining the max.
  """
  return _pool_forward(x)[0]


def _max_pool_phases_fwd(x):
  # y through the custom function itself, so that differentiating this rule
  # (the second-order terms) reaches this VJP again, never jnp.maximum's
  # (which splits ties and costs selects and divides). The winner is an
  # integer, not differentiated; XLA shares the max between the two.
  _, winner = _pool_forward(x)
  return max_pool_phases(x), (winner, x.shape[1:3])


def _max_pool_phases_bwd(res, g):
  winner, hw = res
  return (_pool_scatter(g, winner, hw),)


max_pool_phases.defvjp(_max_pool_phases_fwd, _max_pool_phases_bwd)
