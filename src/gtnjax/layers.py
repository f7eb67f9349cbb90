"""Layer primitives shared by the learners and the generator.

Every network in gtnjax is written against these functions only, so their
implementation can be swapped (for one whose first and second derivatives are
fast on a given backend) without touching the networks.

Conventions: images are NHWC, convolution kernels HWIO, dense kernels
[in, out]. All functions are pure and differentiable to any order.
"""

from __future__ import annotations

import math

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


def conv2d(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """Stride-1 2-D convolution with zero padding.

  Args:
    x: [N, H, W, C_in].
    kernel: [KH, KW, C_in, C_out].
    padding: zeros added on every side of H and W.

  Returns:
    [N, H + 2p - KH + 1, W + 2p - KW + 1, C_out].
  """
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1),
      padding=((padding, padding), (padding, padding)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def max_pool(x: jax.Array, window: int = 3, stride: int = 2, padding: int = 1) -> jax.Array:
  """Max pooling over H and W with -inf padding.

  Args:
    x: [N, H, W, C].

  Returns:
    [N, (H + 2p - window) // stride + 1, (W + 2p - window) // stride + 1, C].
  """
  return jax.lax.reduce_window(
      x, -jnp.inf, jax.lax.max,
      window_dimensions=(1, window, window, 1),
      window_strides=(1, stride, stride, 1),
      padding=((0, 0), (padding, padding), (padding, padding), (0, 0)))


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
