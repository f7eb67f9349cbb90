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


def init_weight_norm(key: jax.Array, shape: tuple[int, ...]) -> dict[str, jax.Array]:
  """Kaiming-initialised direction with its norm as the initial scale."""
  fan_in = math.prod(shape[:-1])
  direction = kaiming_normal(key, shape, fan_in)
  scale = jnp.sqrt(jnp.sum(jnp.square(direction), axis=tuple(range(len(shape) - 1))))
  return {"direction": direction, "scale": scale}


# ------------------------------------------------------------ implementations
# conv2d and max_pool have several implementations with the same values and
# derivatives (to float rounding; see tests/test_layers.py). The choice matters
# for speed only: the meta-gradient differentiates every layer to second order,
# and on XLA:CPU the library convolution's and reduce_window's derivatives fall
# off the fast paths (a 3x3 conv's second derivative ran ~60x its forward, the
# max-pool's gradient lowers to a slow select-and-scatter). The im2col conv and
# the strided-slice pool are written so that forward, first and second
# derivatives are all dense matmuls, pads, slices, compares and selects.
#
# Choice, first match wins (read when a function is traced, so set it before
# the first jit call of a function; already-compiled functions keep theirs):
#   1. `set_impl(conv2d=..., max_pool=...)` or the `use_impl(...)` context;
#   2. the environment variables GTNJAX_CONV_IMPL and GTNJAX_POOL_IMPL;
#   3. the default backend: CPU gets im2col / slices, GPU and TPU the library
#      ops (lax), whose cuDNN kernels are the fast path there.
CONV_IMPLS = ("lax", "gemm", "im2col", "shifted_outputs")
POOL_IMPLS = ("lax", "slices")
_BACKEND_DEFAULTS = {"cpu": {"conv2d": "gemm", "max_pool": "slices"}}
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
  kh, kw, c_in, c_out = kernel.shape
  n, h, w, _ = x.shape
  h_out, w_out = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  taps = [xp[:, i:i + h_out, j:j + w_out, :] for i in range(kh) for j in range(kw)]
  patches = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
  y = _mm(patches.reshape(n * h_out * w_out, kh * kw * c_in), kernel.reshape(-1, c_out))
  return y.reshape(n, h_out, w_out, c_out)


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


_CONV_FNS = {"lax": conv2d_lax, "im2col": conv2d_im2col,
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
  if impl == "slices":
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
