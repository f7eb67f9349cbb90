"""Layer primitives shared by the learners and the generator.

Every network in gtnjax is written against these functions only, so their
implementation can be swapped (for one whose first and second derivatives are
fast on a given backend) without touching the networks.

Conventions: images are NHWC, convolution kernels HWIO, dense kernels
[in, out]. All functions are pure and differentiable to any order.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os

import jax
import jax.numpy as jnp

LEAKY_RELU_SLOPE = 0.1


def kaiming_normal(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
  """He/Kaiming normal init for a LeakyReLU network (std = sqrt(2 / fan_in))."""
  return jax.random.normal(key, shape) * math.sqrt(2.0 / fan_in)


def weight_norm(direction: jax.Array, scale: jax.Array) -> jax.Array:
  """Weight normalisation (Salimans & Kingma, 2016).

  Args:
    direction: kernel of any rank whose last axis is the output axis
      (HWIO conv or [in, out] dense).
    scale: [out] per-output-unit length.

  Returns:
    The kernel `scale * direction / ||direction||`, the norm taken per output
    unit over all other axes.
  """
  reduce_axes = tuple(range(direction.ndim - 1))
  norm = jnp.sqrt(jnp.sum(jnp.square(direction), axis=reduce_axes))
  return direction * (scale / norm)


def init_weight_norm(key: jax.Array, shape: tuple[int, ...], normalised: bool = True
                     ) -> dict[str, jax.Array]:
  """Kaiming-initialised direction with its norm as the initial scale; with
  `normalised=False` the same Kaiming kernel as a plain `kernel` (the
  weight-norm ablation). `kernel_of` reads either form."""
  fan_in = math.prod(shape[:-1])
  direction = kaiming_normal(key, shape, fan_in)
  if not normalised:
    return {"kernel": direction}
  scale = jnp.sqrt(jnp.sum(jnp.square(direction), axis=tuple(range(len(shape) - 1))))
  return {"direction": direction, "scale": scale}


def kernel_of(params: dict[str, jax.Array]) -> jax.Array:
  """The kernel of a layer made by `init_weight_norm`, normalised or plain."""
  if "kernel" in params:
    return params["kernel"]
  return weight_norm(params["direction"], params["scale"])


# ------------------------------------------------------------ implementations
# conv2d and max_pool have several implementations with the same values and
# derivatives (to float rounding; see tests/test_layers.py). The choice matters
# for speed only: the meta-gradient differentiates every layer to second order,
# and on XLA:CPU the library convolution's and reduce_window's derivatives fall
# off the fast paths (a 3x3 conv's second derivative ran ~60x its forward, the
# max-pool's gradient lowers to a slow select-and-scatter). The matmul convs
# (gemm = im2col or shifted_outputs by shape, routed) and the slice/phase
# pools are written so that forward, first and second derivatives are all
# dense matmuls (or forward convolutions), pads, slices, compares and selects.
# CPU defaults measured on the whole meta-iteration (BENCHMARKS.md): gemm
# beat routed, phases beat slices.
#
# Choice, first match wins (read when a function is traced, so set it before
# the first jit call of a function; already-compiled functions keep theirs):
#   1. `set_impl(conv2d=..., max_pool=...)` or the `use_impl(...)` context;
#   2. the environment variables GTNJAX_CONV_IMPL and GTNJAX_POOL_IMPL;
#   3. the default backend: CPU gets gemm / phases, GPU and TPU the library
#      ops (lax), whose cuDNN kernels are the fast path there.
CONV_IMPLS = ("lax", "routed", "gemm", "im2col", "shifted_outputs")
POOL_IMPLS = ("lax", "slices", "phases")
_BACKEND_DEFAULTS = {"cpu": {"conv2d": "gemm", "max_pool": "phases"}}
_LIBRARY_DEFAULTS = {"conv2d": "lax", "max_pool": "lax"}
_ENV_VARS = {"conv2d": "GTNJAX_CONV_IMPL", "max_pool": "GTNJAX_POOL_IMPL"}
_CHOICES = {"conv2d": CONV_IMPLS, "max_pool": POOL_IMPLS}
_overrides: dict[str, str] = {}


def _check_impl(op: str, name: str) -> str:
  if name not in _CHOICES[op]:
    raise ValueError(f"unknown {op} implementation {name!r}: choose one of {_CHOICES[op]}")
  return name


def set_impl(conv2d: str | None = None, max_pool: str | None = None) -> None:
  """Pins the implementation of conv2d and/or max_pool (None: leave as is).

  Takes effect for functions traced afterwards. `reset_impl()` undoes it.
  """
  for op, name in (("conv2d", conv2d), ("max_pool", max_pool)):
    if name is not None:
      _overrides[op] = _check_impl(op, name)


def reset_impl() -> None:
  """Back to the environment variables and the per-backend defaults."""
  _overrides.clear()


@contextlib.contextmanager
def use_impl(conv2d: str | None = None, max_pool: str | None = None):
  """Context manager form of `set_impl`, restoring the previous choice on exit."""
  saved = dict(_overrides)
  try:
    set_impl(conv2d=conv2d, max_pool=max_pool)
    yield
  finally:
    _overrides.clear()
    _overrides.update(saved)


def current_impl(op: str) -> str:
  """The implementation `op` ("conv2d" or "max_pool") would be traced with now."""
  if op in _overrides:
    return _overrides[op]
  env = os.environ.get(_ENV_VARS[op])
  if env:
    return _check_impl(op, env)
  return _BACKEND_DEFAULTS.get(jax.default_backend(), _LIBRARY_DEFAULTS)[op]


# ---------------------------------------------------------------- convolution
def conv2d(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """Stride-1 2-D convolution with zero padding.

  Args:
    x: [N, H, W, C_in].
    kernel: [KH, KW, C_in, C_out].
    padding: zeros added on every side of H and W.

  Returns:
    [N, H + 2p - KH + 1, W + 2p - KW + 1, C_out].
  """
  impl = current_impl("conv2d")
  if impl == "gemm":
    # Shift whichever side of the matmul is narrower: the KH*KW copies are
    # the memory traffic, the matmul's FLOPs are the same either way.
    impl = "im2col" if kernel.shape[2] <= kernel.shape[3] else "shifted_outputs"
  return _CONV_FNS[impl](x, kernel, padding)


def conv2d_lax(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """`conv2d` as the library convolution (the reference implementation)."""
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1),
      padding=((padding, padding), (padding, padding)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


# The im2col/shifted-output convolutions are a matmul over M = N*H*W rows.
# Their weight gradients contract over M. XLA:CPU's GEMM wants that
# contraction dim innermost on the left, so it transposes the left operand of
# such a dot (and fuses the transpose into whatever produced it, which made
# strided, cache-hostile copies of 25-100 MB cotangents). JAX's own transpose
# rule always puts the cotangent on the left; `_mm` / `_mm_tn` instead put the
# narrower of the two operands there, at every order of differentiation,
# because each one's VJP is written with the two of them. Being custom_vjp,
# they support reverse mode to any order but not forward mode (jax.jvp,
# jacfwd): use conv2d impl "lax" for forward-mode derivatives.


@jax.custom_vjp
def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
  """[M, K] @ [K, N]."""
  return a @ b


def _mm_fwd(a, b):
  return a @ b, (a, b)


def _mm_bwd(res, g):
  a, b = res
  return _mm(g, b.T), _mm_tn(a, g)


_mm.defvjp(_mm_fwd, _mm_bwd)


@jax.custom_vjp
def _mm_tn(a: jax.Array, b: jax.Array) -> jax.Array:
  """a^T @ b for a [M, P], b [M, Q] (contracting the long M): [P, Q]."""
  if a.shape[1] <= b.shape[1]:
    return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())))
  return jax.lax.dot_general(b, a, (((0,), (0,)), ((), ()))).T


def _mm_tn_fwd(a, b):
  return _mm_tn(a, b), (a, b)


def _mm_tn_bwd(res, g):
  a, b = res  # g: [P, Q]
  return _mm(b, g.T), _mm(a, g)


_mm_tn.defvjp(_mm_tn_fwd, _mm_tn_bwd)


def conv2d_im2col(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """`conv2d` as one matmul over the KH*KW shifted copies of the input.

  The patches [N*H'*W', KH*KW*C_in] (tap-major, channel-minor: the row order
  of the HWIO kernel flattened) times the kernel [KH*KW*C_in, C_out]. Its
  derivatives are matmuls plus slices/pads of the patches, which XLA:CPU runs
  on its fast GEMM path at every order of differentiation.
  """
  kh, kw, _, c_out = kernel.shape
  n, h, w, _ = x.shape
  h_out, w_out = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  y = _mm(_im2col_patches(xp, kh, kw), kernel.reshape(-1, c_out))
  return y.reshape(n, h_out, w_out, c_out)


def _im2col_patches(xp: jax.Array, kh: int, kw: int) -> jax.Array:
  """[N, Hp, Wp, C] (already padded) -> [N H' W', KH KW C] for a KHxKW valid
  convolution: tap-major, channel-minor, the row order of a flattened HWIO kernel."""
  n, hp, wp, c = xp.shape
  h_out, w_out = hp - kh + 1, wp - kw + 1
  taps = [xp[:, i:i + h_out, j:j + w_out, :] for i in range(kh) for j in range(kw)]
  patches = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
  return patches.reshape(n * h_out * w_out, kh * kw * c)


def conv2d_shifted_outputs(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """`conv2d` as one matmul into KH*KW per-tap outputs, then a shifted sum.

  The padded input [N*Hp*Wp, C_in] times the kernel laid out as
  [C_in, KH*KW*C_out] gives every tap's contribution at every position; the
  output sums the KH*KW slices shifted by their tap offsets. The mirror image
  of im2col (whose input gradient has exactly this form), and cheaper when
  C_out < C_in because the copies are of the narrower side.
  """
  kh, kw, c_in, c_out = kernel.shape
  n, h, w, _ = x.shape
  h_out, w_out = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  hp, wp = h + 2 * padding, w + 2 * padding
  k = kernel.transpose(2, 0, 1, 3).reshape(c_in, kh * kw * c_out)
  z = _mm(xp.reshape(n * hp * wp, c_in), k).reshape(n, hp, wp, kh * kw, c_out)
  return sum(z[:, i:i + h_out, j:j + w_out, i * kw + j, :]
             for i in range(kh) for j in range(kw))


# The routed convolution. Every derivative of a convolution, at every order,
# is one of two linear maps: a forward convolution (the input gradient is the
# convolution of the cotangent with the flipped, transposed kernel) or a
# kernel gradient (sum over positions of input patches times cotangent), and
# the derivatives of a kernel gradient are forward convolutions again. JAX's
# own transpose rules instead emit convolutions with dilations and unusual
# dimension layouts, which XLA:CPU runs far off its fast path (second
# derivatives at 30x the forward, BENCHMARKS.md). `conv2d_routed` defines
# both maps as custom_vjp functions whose VJPs are each other, so the
# meta-gradient only ever runs these two kinds of kernel. Forward
# convolutions pick by channel counts: the library convolution when both sides
# are wide (XLA:CPU's convolution is a blocked GEMM that never writes the
# patches out), a matmul over the shifted narrow side when one side has few
# channels (the library convolution is slow at 1-channel in- or outputs).
# Kernel gradients are always the narrow-side matmul (_kernel_grad_value).
# Reverse mode to any order; no forward mode (use "lax" for jvp).
ROUTED_WIDE_CHANNELS = 16  # min(C_in, C_out) from which the library convolution is used


def _pad_hw(x: jax.Array, pads: tuple[int, int]) -> jax.Array:
  # Zero-pads (or, for negative pads, crops) H and W symmetrically.
  (ph, pw) = pads
  return jax.lax.pad(x, jnp.zeros((), x.dtype),
                     ((0, 0, 0), (ph, ph, 0), (pw, pw, 0), (0, 0, 0)))


def _conv_value(x: jax.Array, kernel: jax.Array, pads: tuple[int, int]) -> jax.Array:
  c_in, c_out = kernel.shape[2], kernel.shape[3]
  if min(c_in, c_out) >= ROUTED_WIDE_CHANNELS:
    if min(pads) >= 0:
      return jax.lax.conv_general_dilated(
          x, kernel, (1, 1), ((pads[0], pads[0]), (pads[1], pads[1])),
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return conv2d_lax(_pad_hw(x, pads), kernel, 0)
  narrow = conv2d_im2col if c_in <= c_out else conv2d_shifted_outputs
  return narrow(_pad_hw(x, pads), kernel, 0)


def _kernel_grad_value(x: jax.Array, g: jax.Array, pads: tuple[int, int],
                       kernel_hw: tuple[int, int]) -> jax.Array:
  """sum_{n,h,w} pad(x)[n, h + a, w + b, i] g[n, h, w, o] -> [KH, KW, C_in, C_out]."""
  kh, kw = kernel_hw
  n, c_in, c_out = x.shape[0], x.shape[-1], g.shape[-1]
  xp = _pad_hw(x, pads)
  # Always a matmul over the shifted copies of the narrower side, whatever
  # the channel counts: inside the meta-gradient XLA:CPU ran the library's
  # kernel-gradient convolution through a generic path taking seconds per
  # call, though it is fast when compiled alone (BENCHMARKS.md).
  ho, wo = g.shape[1:3]
  if c_in <= c_out:  # patches of the input: [N Ho Wo, KH KW C_in]^T @ [N Ho Wo, C_out]
    patches = _im2col_patches(xp, kh, kw)
    k = jax.lax.dot_general(patches, g.reshape(-1, c_out), (((0,), (0,)), ((), ())))
    return k.reshape(kh, kw, c_in, c_out)
  # Patches of the cotangent on the padded input's grid: pad(x)[u, v] meets
  # g[u - a, v - b] in tap (a, b). [N Hp Wp, C_in]^T @ [N Hp Wp, KH KW C_out].
  hp, wp = xp.shape[1:3]
  g_taps = [jnp.pad(g, ((0, 0), (a, hp - ho - a), (b, wp - wo - b), (0, 0)))
            for a in range(kh) for b in range(kw)]
  g_patches = jnp.concatenate(g_taps, axis=-1).reshape(n * hp * wp, kh * kw * c_out)
  k = jax.lax.dot_general(xp.reshape(-1, c_in), g_patches, (((0,), (0,)), ((), ())))
  return k.reshape(c_in, kh, kw, c_out).transpose(1, 2, 0, 3)


def _flip_transpose(kernel: jax.Array) -> jax.Array:
  # The kernel of the input gradient: spatially flipped, in/out swapped.
  return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def _transposed_pads(kernel_hw: tuple[int, int], pads: tuple[int, int]) -> tuple[int, int]:
  return (kernel_hw[0] - 1 - pads[0], kernel_hw[1] - 1 - pads[1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _routed_conv(x, kernel, pads):
  return _conv_value(x, kernel, pads)


def _routed_conv_fwd(x, kernel, pads):
  return _routed_conv(x, kernel, pads), (x, kernel)


def _routed_conv_bwd(pads, res, g):
  x, kernel = res
  kernel_hw = kernel.shape[:2]
  dx = _routed_conv(g, _flip_transpose(kernel), _transposed_pads(kernel_hw, pads))
  return dx, _routed_kernel_grad(x, g, pads, kernel_hw)


_routed_conv.defvjp(_routed_conv_fwd, _routed_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _routed_kernel_grad(x, g, pads, kernel_hw):
  return _kernel_grad_value(x, g, pads, kernel_hw)


def _routed_kernel_grad_fwd(x, g, pads, kernel_hw):
  return _routed_kernel_grad(x, g, pads, kernel_hw), (x, g)


def _routed_kernel_grad_bwd(pads, kernel_hw, res, k_bar):
  # Bilinear in (x, g): x's cotangent is the input gradient of a convolution
  # with kernel k_bar and cotangent g; g's is that convolution's forward.
  x, g = res
  x_bar = _routed_conv(g, _flip_transpose(k_bar), _transposed_pads(kernel_hw, pads))
  return x_bar, _routed_conv(x, k_bar, pads)


_routed_kernel_grad.defvjp(_routed_kernel_grad_fwd, _routed_kernel_grad_bwd)


def conv2d_routed(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """`conv2d` whose derivatives are forward convolutions and kernel gradients
  only, each run by the implementation fastest for its channel counts."""
  return _routed_conv(x, kernel, (padding, padding))


_CONV_FNS = {"lax": conv2d_lax, "routed": conv2d_routed, "im2col": conv2d_im2col,
             "shifted_outputs": conv2d_shifted_outputs}


# -------------------------------------------------------------------- pooling
def max_pool(x: jax.Array, window: int = 3, stride: int = 2, padding: int = 1) -> jax.Array:
  """Max pooling over H and W with -inf padding.

  Args:
    x: [N, H, W, C].

  Returns:
    [N, (H + 2p - window) // stride + 1, (W + 2p - window) // stride + 1, C].
  """
  impl = current_impl("max_pool")
  # "phases" covers the learners' 3/2/1 pool; other windows use "slices".
  if impl == "phases" and (window, stride, padding) == (3, 2, 1):
    return max_pool_phases(x)
  if impl in ("slices", "phases"):
    return max_pool_slices(x, window, stride, padding)
  return max_pool_lax(x, window, stride, padding)


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


def global_avg_pool(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, C]."""
  return jnp.mean(x, axis=(1, 2))


def dense(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
  """[N, in] @ [in, out] (+ [out]) -> [N, out]."""
  y = x @ kernel
  return y if bias is None else y + bias


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling: [N, H, W, C] -> [N, fH, fW, C]."""
  n, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, factor, w, factor, c))
  return x.reshape(n, h * factor, w * factor, c)


# _UPSAMPLE_TAPS[r, u, a] = 1 where kernel row a lands on low-resolution tap
# u of output row parity r once the input is nearest-upsampled by 2: output
# row 2i + r reads upsampled rows 2i + r - 1 .. 2i + r + 1, i.e.
# low-resolution rows i + r - 1 + u for u = 0, 1 (rows i + r + u of the input
# padded by 1). The same holds for columns.
_UPSAMPLE_TAPS = ((((1, 0, 0), (0, 1, 1)),   # r = 0: rows i - 1 <- a = 0; i <- a = 1, 2
                   ((1, 1, 0), (0, 0, 1))))  # r = 1: rows i <- a = 0, 1; i + 1 <- a = 2


UPSAMPLE_PADDING_MODES = ("zeros", "reflect")


def upsample_conv2d(x: jax.Array, kernel: jax.Array, padding_mode: str = "zeros") -> jax.Array:
  """`conv2d(upsample_nearest(x, 2), kernel, padding=1)` for a 3x3 kernel,
  computed at the input's resolution.

  Each of the four output phases (row parity r, column parity s) is a 2x2
  convolution of the zero-padded input with the 3x3 kernel's taps summed
  into 2x2 (`_UPSAMPLE_TAPS`): 16 instead of 36 multiply-adds per input pixel
  and channel pair, and no upsampled copy. Same values and derivatives as the
  upsample-then-convolve form, to float rounding (tests/test_layers.py).

  Reflection padding of the upsampled image (PyTorch's
  `padding_mode="reflect"`, the paper's generator) pads it with its second row
  and column, which nearest upsampling made copies of the input's edge: so
  it is edge padding of the input here.

  Args:
    x: [N, H, W, C_in].
    kernel: [3, 3, C_in, C_out].
    padding_mode: "zeros" or "reflect" (of the upsampled image).

  Returns:
    [N, 2H, 2W, C_out].
  """
  if padding_mode not in UPSAMPLE_PADDING_MODES:
    raise ValueError(f"padding_mode {padding_mode!r}: choose one of {UPSAMPLE_PADDING_MODES}")
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f"upsample_conv2d needs a 3x3 kernel, got {kernel.shape[:2]}")
  n, h, w, _ = x.shape
  c_out = kernel.shape[3]
  taps = jnp.asarray(_UPSAMPLE_TAPS, kernel.dtype)
  # [r, s, 2, 2, C_in, C_out]: the 2x2 kernel of each output phase.
  phase_kernels = jnp.einsum("rua,svb,abio->rsuvio", taps, taps, kernel)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)),
               mode="constant" if padding_mode == "zeros" else "edge")
  phases = [conv2d(xp[:, r:r + h + 1, s:s + w + 1], phase_kernels[r, s], padding=0)
            for r in range(2) for s in range(2)]
  y = jnp.stack(phases).reshape(2, 2, n, h, w, c_out)
  return y.transpose(2, 3, 0, 4, 1, 5).reshape(n, 2 * h, 2 * w, c_out)


def leaky_relu(x: jax.Array) -> jax.Array:
  return jnp.where(x >= 0, x, LEAKY_RELU_SLOPE * x)


def _stat_axes(h: jax.Array) -> tuple[int, ...]:
  # Statistics are per channel: over the batch, and over H and W for images.
  return tuple(range(h.ndim - 1))


def mean_only_batch_norm(
    h: jax.Array, bias: jax.Array, mean: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
  """Mean-only batch norm (Salimans & Kingma, 2016), used with weight norm.

  Args:
    h: [N, C] or [N, H, W, C].
    bias: [C] learned shift.
    mean: [C] statistics to use; None uses the current batch's mean.

  Returns:
    (h - mean + bias, the mean used).
  """
  if mean is None:
    mean = jnp.mean(h, axis=_stat_axes(h))
  return h - mean + bias, mean


def batch_norm(h: jax.Array, scale: jax.Array, bias: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Batch norm with the current batch's mean and variance (training mode)."""
  axes = _stat_axes(h)
  mean = jnp.mean(h, axis=axes)
  var = jnp.mean(jnp.square(h - mean), axis=axes)
  return (h - mean) * jax.lax.rsqrt(var + eps) * scale + bias


def softmax_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean cross-entropy of [N, K] logits against [N, K] (soft) targets."""
  return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))
