"""Learner networks: the classifiers a GTN teaches.

A learner is anything that satisfies `Learner`: a hashable spec (usable as a
static jit argument) with two pure functions, `spec.init(key) -> params` and
`spec.apply(params, x, batch_means=None) -> (logits, batch_means)`, and
`spec.initial_batch_stats()`, the batch statistics before any training step.
`LearnerSpec` (here), `gtnjax.nas.network.CellNetworkSpec` and
`gtnjax.flax_learners.FlaxLearnerSpec` (a user's Flax module) are learners;
`gtnjax.registry` turns a config's learner name into one.

Every conv/dense kernel is weight-normed with Kaiming init; every hidden layer
uses mean-only batch norm then LeakyReLU(0.1), as in the paper's learners.

Batch statistics: in training, a learner normalises with the current batch's
means and returns them. At test time (probe losses during meta-training and
the final evaluation) it is given the means of its *latest training batch*,
like PyTorch eval mode with batch-norm momentum 0 in the paper's code. Test
predictions therefore do not depend on how the test set is batched.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp

from gtnjax import layers

from gtnjax.layers import Params

# Batch statistics are a pytree: one [C] mean per hidden layer for the
# built-in learners, a Flax module's "batch_stats" collection for Flax ones.
BatchMeans = Any


@runtime_checkable
class Learner(Protocol):
  """What the inner loop, meta-training and evaluation need of a learner.

  Implementations are frozen dataclasses: hashable and equal when they
  compute the same function, so that they are static jit arguments and equal
  specs share one compilation.
  """
  name: str                          # the name in configs, metrics and summaries
  input_shape: tuple[int, int, int]  # (H, W, C)
  num_classes: int                   # K

  def init(self, key: jax.Array) -> Params:
    """Fresh parameters for one learner."""

  def apply(self, params: Params, x: jax.Array, batch_means: BatchMeans | None = None
            ) -> tuple[jax.Array, BatchMeans]:
    """([N, K] logits, the batch statistics used) of [N, H, W, C] images:
    `batch_means=None` is training mode (the batch's own statistics)."""

  def initial_batch_stats(self) -> BatchMeans:
    """The test-mode batch statistics of a learner that has not trained yet."""

  @property
  def fingerprint(self) -> str | None:
    """Text that changes when the definition behind an unchanged name does
    (a user's module), for cache keys; None where the name defines it."""


@dataclasses.dataclass(frozen=True)
class LearnerSpec:
  """Architecture of a learner; frozen so it can be a static jit argument.

  Attributes:
    name: registry name (a key of `ARCHITECTURES`).
    input_shape: (H, W, C) of the images.
    num_classes: K, the number of logits.
    conv_widths: output channels of each 3x3 conv, each followed by a 3x3
      stride-2 max-pool; empty for an MLP.
    hidden_widths: widths of the dense hidden layers.
    global_pool: average over H and W after the convs instead of flattening.
    random_widths: if True, `init` samples each hidden layer's active width
      uniformly in [min_width_fraction * width, width] and masks the rest, so
      that learners of different widths share one shape (and one vmap).
    min_width_fraction: lower bound of the sampled width fraction.
    weight_norm: weight-normalised kernels (the paper's learners); False gives
      plain Kaiming-initialised kernels (the ablation).
    conv_impl: `layers.conv2d` implementation, "auto" (by backend) or one of
      `layers.CONV_IMPLS`. Same values to float rounding; a field so that it
      is part of the jit cache key.
    pool_impl: `layers.max_pool` implementation, "auto" or one of
      `layers.POOL_IMPLS`.
  """
  name: str
  input_shape: tuple[int, int, int]
  num_classes: int
  conv_widths: tuple[int, ...]
  hidden_widths: tuple[int, ...]
  global_pool: bool = False
  random_widths: bool = False
  min_width_fraction: float = 0.25
  weight_norm: bool = True
  conv_impl: str = "auto"
  pool_impl: str = "auto"

  def __post_init__(self):
    layers.check_impl("conv2d", self.conv_impl)
    layers.check_impl("max_pool", self.pool_impl)

  @property
  def hidden_layer_widths(self) -> tuple[int, ...]:
    return self.conv_widths + self.hidden_widths

  @property
  def fingerprint(self) -> None:
    return None  # the name and fields define a built-in learner

  def initial_batch_stats(self) -> BatchMeans:
    """The batch means of a learner that has not trained yet: zeros. Every
    learner spec has this (`inner_loop.init_state` calls it)."""
    return tuple(jnp.zeros((w,)) for w in self.hidden_layer_widths)

  def _flat_features(self) -> int:
    h, w, _ = self.input_shape
    for _ in self.conv_widths:
      h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # 3x3 / stride 2 / pad 1 pool
    if not self.conv_widths:
      return h * w * self.input_shape[2]
    return self.conv_widths[-1] * (1 if self.global_pool else h * w)

  def init(self, key: jax.Array) -> Params:
    """Fresh parameters for one learner."""
    num_layers = len(self.conv_widths) + len(self.hidden_widths) + 1
    key, mask_key = jax.random.split(key)
    keys = jax.random.split(key, num_layers)
    params: Params = {"conv": [], "hidden": []}
    channels = self.input_shape[2]
    i = 0
    for width in self.conv_widths:
      params["conv"].append({
          **layers.init_weight_norm(keys[i], (3, 3, channels, width), self.weight_norm),
          "bn_bias": jnp.zeros((width,))})
      channels, i = width, i + 1
    features = self._flat_features()
    for width in self.hidden_widths:
      params["hidden"].append({
          **layers.init_weight_norm(keys[i], (features, width), self.weight_norm),
          "bn_bias": jnp.zeros((width,))})
      features, i = width, i + 1
    params["out"] = {**layers.init_weight_norm(keys[i], (features, self.num_classes),
                                               self.weight_norm),
                     "bias": jnp.zeros((self.num_classes,))}
    if self.random_widths:
      params["width_masks"] = _sample_width_masks(
          mask_key, self.hidden_layer_widths, self.min_width_fraction)
    return params

  def apply(self, params: Params, x: jax.Array,
            batch_means: BatchMeans | None = None) -> tuple[jax.Array, BatchMeans]:
    """Logits of a batch.

    Args:
      params: from `init` (or trained).
      x: [N, H, W, C] images in the normalised input space.
      batch_means: the per-layer means to normalise with; None uses the
        batch's own (training mode).

    Returns:
      ([N, K] logits, the per-layer batch means used).
    """
    masks = params.get("width_masks")
    if masks is not None:
      masks = jax.lax.stop_gradient(masks)  # architecture, not weights
    used_means = []
    layer = 0

    def normalise_and_activate(h, bias):
      nonlocal layer
      given = None if batch_means is None else batch_means[layer]
      h, mean = layers.mean_only_batch_norm(h, bias, given)
      used_means.append(mean)
      h = layers.leaky_relu(h)
      if masks is not None:
        h = h * masks[layer]
      layer += 1
      return h

    h = x
    for p in params["conv"]:
      h = layers.conv2d(h, layers.kernel_of(p), impl=self.conv_impl)
      h = layers.max_pool(h, impl=self.pool_impl)
      h = normalise_and_activate(h, p["bn_bias"])
    h = layers.global_avg_pool(h) if self.global_pool else h.reshape(h.shape[0], -1)
    for p in params["hidden"]:
      h = layers.dense(h, layers.kernel_of(p))
      h = normalise_and_activate(h, p["bn_bias"])
    p = params["out"]
    logits = layers.dense(h, layers.kernel_of(p), p["bias"])
    return logits, tuple(used_means)


def _sample_width_masks(key: jax.Array, widths: tuple[int, ...],
                        min_fraction: float) -> list[jax.Array]:
  masks = []
  for key_i, width in zip(jax.random.split(key, len(widths)), widths):
    low = max(1, int(round(min_fraction * width)))
    active = jax.random.randint(key_i, (), low, width + 1)
    # The default float type, like the weights (float64 under jax_enable_x64).
    masks.append((jnp.arange(width) < active).astype(jnp.zeros(()).dtype))
  return masks


# name -> (conv_widths, hidden_widths, global_pool); the paper's learners.
ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...], bool]] = {
    # conv64-pool-conv128-pool-fc256-fc10: the paper's MNIST learner.
    "cnn": ((64, 128), (256,), False),
    # The same with global average pooling instead of flattening.
    "cnn_gap": ((64, 128), (256,), True),
    # A two-hidden-layer MLP on the flattened image.
    "mlp": ((), (256, 128), False),
    # A deeper, wider CNN, the "larger learner" of the transfer experiments.
    "cnn_large": ((64, 128, 256), (512,), False),
    # A small CNN used by CPU-scale configs and tests.
    "cnn_small": ((16, 32), (64,), False),
    # The same with global average pooling: a cheap pooling-headed learner for
    # CPU-scale populations (a teacher fitted to flattening heads alone does
    # not teach pooling-headed networks, RESULTS.md).
    "cnn_small_gap": ((16, 32), (64,), True),
}


def definition_fingerprints(specs: Sequence[Learner]) -> dict[str, str]:
  """{name: fingerprint} of the learners that have one: a user's Flax learner,
  whose name alone does not say what it computes. Built-in learners have none
  (their names define them), so cache keys of runs without user learners are
  unchanged."""
  return {spec.name: spec.fingerprint for spec in specs
          if getattr(spec, "fingerprint", None) is not None}
