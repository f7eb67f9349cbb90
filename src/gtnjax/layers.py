"""Layer primitives shared by the learners and the generator.

Every network in gtnjax is written against these functions only, so the
implementation of conv2d and max_pool can be swapped (for one whose first and
second derivatives are fast on a given backend; the kernels live in
`gtnjax.ops`) without touching the networks.

Conventions: images are NHWC, convolution kernels HWIO, dense kernels
[in, out]. All functions are pure and differentiable to any order.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from gtnjax import ops

# The parameters of a network or a teacher: a pytree of arrays (nested dicts
# and lists). The one alias every module uses.
Params = dict[str, Any]

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
  return weight_norm_init_from(kaiming_normal(key, shape, math.prod(shape[:-1])), normalised)


def weight_norm_init_from(direction: jax.Array, normalised: bool = True
                          ) -> dict[str, jax.Array]:
  """`init_weight_norm` for a kernel drawn elsewhere: the direction with its
  per-output norm as the scale, or the plain `kernel` if not `normalised`."""
  if not normalised:
    return {"kernel": direction}
  reduce_axes = tuple(range(direction.ndim - 1))
  return {"direction": direction,
          "scale": jnp.sqrt(jnp.sum(jnp.square(direction), axis=reduce_axes))}


def kernel_of(params: dict[str, jax.Array]) -> jax.Array:
  """The kernel of a layer made by `init_weight_norm`, normalised or plain."""
  if "kernel" in params:
    return params["kernel"]
  return weight_norm(params["direction"], params["scale"])



# ------------------------------------------------------------ implementations
# conv2d and max_pool have several implementations (gtnjax.ops) with the same
# values and derivatives to float rounding (tests/test_ops.py); the choice
# matters for speed only. It is an argument, not global state: a network's
# spec carries it (LearnerSpec / TeacherSpec `conv_impl`, `pool_impl`), so it
# is part of every jit cache key and of the run's config.json. "auto" picks by
# the default backend: CPU gets gemm / phases, measured best on the whole
# meta-iteration (BENCHMARKS.md: gemm beat routed, phases beat slices); GPU
# and TPU get the library ops (lax), whose cuDNN kernels are the fast path there.
CONV_IMPLS = ("lax", "routed", "gemm", "im2col", "shifted_outputs")
POOL_IMPLS = ("lax", "slices", "phases")
_CHOICES = {"conv2d": CONV_IMPLS, "max_pool": POOL_IMPLS}
_BACKEND_DEFAULTS = {"cpu": {"conv2d": "gemm", "max_pool": "phases"}}
_LIBRARY_DEFAULTS = {"conv2d": "lax", "max_pool": "lax"}


def check_impl(op: str, name: str) -> str:
  """`name` if it names an implementation of `op` ("conv2d" or "max_pool") or
  is "auto"; raises ValueError naming the choices otherwise. Never touches the
  backend, so specs can check their fields before JAX is initialised."""
  if op not in _CHOICES:
    raise ValueError(f"unknown op {op!r}: choose one of {tuple(_CHOICES)}")
  if name != "auto" and name not in _CHOICES[op]:
    raise ValueError(f"unknown {op} implementation {name!r}: choose 'auto' or one of "
                     f"{_CHOICES[op]}")
  return name


def resolve_impl(op: str, name: str = "auto") -> str:
  """The implementation of `op` ("conv2d" or "max_pool") that `name` selects:
  `name` itself, or for "auto" the default of `jax.default_backend()` (cpu:
  gemm / phases; gpu, tpu: lax). Raises ValueError for an unknown name."""
  if check_impl(op, name) == "auto":
    return _BACKEND_DEFAULTS.get(jax.default_backend(), _LIBRARY_DEFAULTS)[op]
  return name


# ---------------------------------------------------------------- convolution
_CONV_FNS = {"lax": ops.conv2d_lax, "routed": ops.conv2d_routed, "gemm": ops.conv2d_gemm,
             "im2col": ops.conv2d_im2col, "shifted_outputs": ops.conv2d_shifted_outputs}


def conv2d(x: jax.Array, kernel: jax.Array, padding: int = 1, *, impl: str = "auto"
           ) -> jax.Array:
  """Stride-1 2-D convolution with zero padding.

  Args:
    x: [N, H, W, C_in].
    kernel: [KH, KW, C_in, C_out].
    padding: zeros added on every side of H and W.
    impl: "auto" or one of CONV_IMPLS (see `resolve_impl`).

  Returns:
    [N, H + 2p - KH + 1, W + 2p - KW + 1, C_out].
  """
  return _CONV_FNS[resolve_impl("conv2d", impl)](x, kernel, padding)


# -------------------------------------------------------------------- pooling
def max_pool(x: jax.Array, window: int = 3, stride: int = 2, padding: int = 1, *,
             impl: str = "auto") -> jax.Array:
  """Max pooling over H and W with -inf padding.

  Args:
    x: [N, H, W, C].
    impl: "auto" or one of POOL_IMPLS (see `resolve_impl`).

  Returns:
    [N, (H + 2p - window) // stride + 1, (W + 2p - window) // stride + 1, C].
  """
  impl = resolve_impl("max_pool", impl)
  # "phases" covers the learners' 3/2/1 pool; other windows use "slices".
  if impl == "phases" and (window, stride, padding) == (3, 2, 1):
    return ops.max_pool_phases(x)
  if impl in ("slices", "phases"):
    return ops.max_pool_slices(x, window, stride, padding)
  return ops.max_pool_lax(x, window, stride, padding)


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


def upsample_conv2d(x: jax.Array, kernel: jax.Array, padding_mode: str = "zeros", *,
                    impl: str = "auto") -> jax.Array:
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
    impl: the `conv2d` implementation of the four phase convolutions.

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
  phases = [conv2d(xp[:, r:r + h + 1, s:s + w + 1], phase_kernels[r, s], padding=0, impl=impl)
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
  return batch_norm_with_stats(h, scale, bias, None, eps)[0]


def batch_norm_with_stats(h: jax.Array, scale: jax.Array, bias: jax.Array,
                          stats: jax.Array | None = None, eps: float = 1e-5
                          ) -> tuple[jax.Array, jax.Array]:
  """Batch norm with mean and variance, given or the batch's.

  Args:
    h: [N, C] or [N, H, W, C].
    scale, bias: [C] learned affine transform.
    stats: [2, C] (mean, variance) to use (test mode); None uses the
      current batch's (training mode).
    eps: added to the variance.

  Returns:
    ((h - mean) / sqrt(variance + eps) * scale + bias, the [2, C] statistics used).
  """
  if stats is None:
    axes = _stat_axes(h)
    mean = jnp.mean(h, axis=axes)
    stats = jnp.stack([mean, jnp.mean(jnp.square(h - mean), axis=axes)])
  return (h - stats[0]) * jax.lax.rsqrt(stats[1] + eps) * scale + bias, stats


def softmax_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean cross-entropy of [N, K] logits against [N, K] (soft) targets."""
  return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))
