"""Convolution kernels for `layers.conv2d`: the library one and the matmul ones.

All take (x [N, H, W, C_in], kernel [KH, KW, C_in, C_out], padding) and give
the stride-1, zero-padded convolution [N, H + 2p - KH + 1, W + 2p - KW + 1,
C_out], NHWC / HWIO. They agree in value and in derivatives of every order
(to float rounding; tests/test_ops.py) and differ in speed only: on XLA:CPU
the library convolution's derivatives fall off the fast path (a 3x3 conv's
second derivative ran ~60x its forward), which the meta-gradient, second
order through every layer, pays in full. The matmul forms (gemm = im2col or
shifted_outputs by shape, routed) are written so that forward, first and
second derivatives are all dense matmuls (or forward convolutions), pads and
slices. Which one runs is chosen by `layers.conv2d`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


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



def conv2d_gemm(x: jax.Array, kernel: jax.Array, padding: int = 1) -> jax.Array:
  """`conv2d` as `conv2d_im2col` when C_in <= C_out, else `conv2d_shifted_outputs`."""
  # Shift whichever side of the matmul is narrower: the KH*KW copies are
  # the memory traffic, the matmul's FLOPs are the same either way.
  narrow = conv2d_im2col if kernel.shape[2] <= kernel.shape[3] else conv2d_shifted_outputs
  return narrow(x, kernel, padding)
