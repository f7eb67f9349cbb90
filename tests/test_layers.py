"""The layers against reference formulas (upsampling, weight norm, batch
norm): values, first and second derivatives, on tiny shapes in float64. Also
the choice of conv2d / max_pool implementation. The kernels themselves are
tested in test_ops.py."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _derivative_checks import RTOL, assert_same_derivatives, random_arrays
from gtnjax import layers, ops, registry

# Every test here runs in float64 (the `float64` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("float64")


@pytest.mark.parametrize("impl", ["gemm", "lax"])
@pytest.mark.parametrize("x_shape,k_shape", [
    ((2, 3, 4, 5), (3, 3, 5, 2)),     # C_in > C_out, H != W
    ((1, 4, 4, 2), (3, 3, 2, 1)),     # one output channel (the generator's last conv)
    ((2, 3, 3, 2), (3, 3, 2, 6)),     # C_in < C_out
])
def test_upsample_conv2d_matches_upsample_then_conv(impl, x_shape, k_shape):
  x, k = random_arrays(13, x_shape, k_shape)
  assert_same_derivatives(
      lambda x, k: layers.upsample_conv2d(x, k, impl=impl),
      lambda x, k: ops.conv2d_lax(layers.upsample_nearest(x), k, 1), (x, k))


def test_upsample_conv2d_reflect_matches_reflect_padded_upsample():
  """The paper's generator pads its upsampled maps by reflection (PyTorch
  padding_mode="reflect"); the input-resolution form must equal it."""
  x, k = random_arrays(14, (2, 3, 4, 3), (3, 3, 3, 2))

  def reference(x, k):
    up = jnp.pad(layers.upsample_nearest(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    return ops.conv2d_lax(up, k, 0)

  assert_same_derivatives(
      lambda x, k: layers.upsample_conv2d(x, k, padding_mode="reflect"), reference, (x, k))
  zeros = layers.upsample_conv2d(x, k)
  assert not np.allclose(zeros, reference(x, k)), "the two padding modes must differ at the edge"


def _weight_norm_ref(v, g):
  return g * v / jnp.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0)


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 2, 4)])
def test_weight_norm_matches_reference(shape):
  v, g = random_arrays(5, shape, shape[-1:])
  assert_same_derivatives(layers.weight_norm, _weight_norm_ref, (v, g))


def test_mean_only_batch_norm_matches_reference():
  h, b = random_arrays(6, (4, 3, 3, 5), (5,))
  ref = lambda h, b: h - jnp.mean(h, axis=(0, 1, 2)) + b
  assert_same_derivatives(lambda h, b: layers.mean_only_batch_norm(h, b)[0], ref, (h, b))


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 3, 2)])
def test_batch_norm_matches_reference(shape):
  h, s, b = random_arrays(7, shape, shape[-1:], shape[-1:])

  def ref(h, s, b):
    axes = tuple(range(h.ndim - 1))
    return (h - h.mean(axes)) / jnp.sqrt(h.var(axes) + 1e-5) * s + b

  assert_same_derivatives(layers.batch_norm, ref, (h, s, b))


def test_resolve_impl_auto_by_backend_and_names_the_choices():
  assert layers.resolve_impl("conv2d") == "gemm"   # these tests run on CPU
  assert layers.resolve_impl("max_pool", "auto") == "phases"
  assert layers.resolve_impl("conv2d", "im2col") == "im2col"
  assert layers.resolve_impl("max_pool", "lax") == "lax"
  with pytest.raises(ValueError, match="choose 'auto' or one of"):
    layers.resolve_impl("conv2d", "nonsense")
  with pytest.raises(ValueError, match="choose 'auto' or one of"):
    layers.max_pool(jnp.zeros((1, 4, 4, 1)), impl="avg")
  with pytest.raises(ValueError, match="choose 'auto' or one of"):
    registry.make_learner("cnn_small", (8, 8, 1), 10, conv_impl="cudnn")


@pytest.mark.parametrize("impl", ("auto",) + layers.CONV_IMPLS)
def test_conv2d_dispatch_gives_the_same_values(impl):
  x, k = random_arrays(8, (2, 5, 5, 3), (3, 3, 3, 2))
  got = layers.conv2d(x, k, impl=impl)
  np.testing.assert_allclose(got, ops.conv2d_lax(x, k), rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("impl", ("auto",) + layers.POOL_IMPLS)
@pytest.mark.parametrize("window,stride,padding", [(3, 2, 1), (2, 2, 0)])
def test_max_pool_dispatch_gives_the_same_values(impl, window, stride, padding):
  (x,) = random_arrays(16, (2, 7, 6, 3))
  got = layers.max_pool(x, window, stride, padding, impl=impl)
  np.testing.assert_array_equal(got, ops.max_pool_lax(x, window, stride, padding))


def test_specs_differing_only_in_conv_impl_compile_separately_and_agree():
  # The implementation is a spec field, so a jitted function taking the spec
  # as a static argument traces once per implementation (not once for
  # whichever was active first), and both give the same logits.
  traces = []

  @functools.partial(jax.jit, static_argnums=0)
  def logits(spec, params, x):
    traces.append(spec.conv_impl)
    return spec.apply(params, x)[0]

  gemm = registry.make_learner("cnn_small", (8, 8, 1), 10, conv_impl="gemm")
  lax_conv = dataclasses.replace(gemm, conv_impl="lax")
  assert gemm != lax_conv
  params = gemm.init(jax.random.key(0))
  (x,) = random_arrays(17, (4, 8, 8, 1))
  got_gemm = logits(gemm, params, x)
  got_lax = logits(lax_conv, params, x)
  logits(gemm, params, x)  # cached: no third trace
  assert traces == ["gemm", "lax"]
  np.testing.assert_allclose(got_gemm, got_lax, rtol=RTOL, atol=RTOL)
