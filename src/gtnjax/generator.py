"""The paper's conditional generator: noise and a one-hot label to an image.

`init_generator(key, ...)` makes its parameters and `generator_apply(params,
inputs, ...)` maps one batch [B, Z + K] to images [B, H, W, C]. The teacher
(`teacher.GeneratorTeacher`, through its `gtnjax.curriculum`) decides which
inputs it gets at each inner step; this module holds only the network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gtnjax import layers
from gtnjax.layers import Params

# |x| above this is tanh's flat tail of the generator's 2 tanh output (tanh > 0.95).
SATURATION_THRESHOLD = 1.9

GENERATOR_HIDDEN = 1024
GENERATOR_CHANNELS = (128, 64)


# Standard deviation of the output layer's pre-tanh activations after the
# data-dependent initialisation: 2 tanh(0.5 N(0, 1)) has std ~0.9, close to
# the unit variance of normalised real images, and stays off tanh's flat tails.
OUTPUT_PRE_TANH_STD = 0.5


def init_generator(key: jax.Array, input_size: int, image_shape: tuple[int, int, int],
                   first_inputs: jax.Array | None = None,
                   padding_mode: str = "zeros", weight_norm: bool = True, *,
                   conv_impl: str = "auto") -> Params:
  """The paper's conditional generator (see `generator_apply`).

  The single-channel output conv sums hundreds of mostly positive LeakyReLU
  outputs, so with Kaiming init alone its pre-tanh mean is a random offset
  (on digits 2% of untrained pixels start at |x| > 1.9, on tanh's flat tails;
  `experiments/meta_lr_study.py`). As weight norm's authors prescribe
  (Salimans & Kingma, 2016, sec. 3), the output layer's scale and bias are
  set from one batch (`first_inputs`, [B, Z + K]) so its pre-tanh activations
  have zero mean and std OUTPUT_PRE_TANH_STD per channel. Without
  `first_inputs` (the paper's code) the output layer keeps its Kaiming init.
  `conv_impl` is the `layers.conv2d` implementation of that batch's pass.
  """
  h, w, c = image_shape
  c0, c1 = GENERATOR_CHANNELS
  keys = jax.random.split(key, 4)

  def bn(width):
    return {"scale": jnp.ones((width,)), "bias": jnp.zeros((width,))}

  params = {
      "fc1": layers.init_weight_norm(keys[0], (input_size, GENERATOR_HIDDEN), weight_norm),
      "bn1": bn(GENERATOR_HIDDEN),
      "fc2": layers.init_weight_norm(keys[1], (GENERATOR_HIDDEN, (h // 4) * (w // 4) * c0),
                                     weight_norm),
      "bn2": bn((h // 4) * (w // 4) * c0),
      "conv1": layers.init_weight_norm(keys[2], (3, 3, c0, c1), weight_norm),
      "bn3": bn(c1),
      "conv2": {**layers.init_weight_norm(keys[3], (3, 3, c1, c), weight_norm),
                "bias": jnp.zeros((c,))},
  }
  if first_inputs is not None:
    pre_tanh = _generator_pre_tanh(params, first_inputs, image_shape, padding_mode, conv_impl)
    mean = jnp.mean(pre_tanh, axis=(0, 1, 2))
    gain = OUTPUT_PRE_TANH_STD / (jnp.std(pre_tanh, axis=(0, 1, 2)) + 1e-6)
    gained = "scale" if weight_norm else "kernel"  # a per-output-channel factor either way
    params["conv2"][gained] = params["conv2"][gained] * gain
    params["conv2"]["bias"] = -mean * gain
  return params


def generator_apply(params: Params, inputs: jax.Array,
                    image_shape: tuple[int, int, int], padding_mode: str = "zeros", *,
                    conv_impl: str = "auto") -> jax.Array:
  """One batch of generated images.

  noise ++ one-hot -> WN-linear 1024 -> BN -> LeakyReLU -> WN-linear
  (H/4)(W/4)128 -> BN -> LeakyReLU -> [upsample x2, WN-conv3x3 128->64, BN,
  LeakyReLU] -> [upsample x2, WN-conv3x3 64->C] -> 2 tanh.

  Args:
    params: from `init_generator`.
    inputs: [B, Z + K] noise concatenated with the one-hot label.
    image_shape: (H, W, C).
    padding_mode: of the upsampling convolutions, "zeros" or "reflect".
    conv_impl: their `layers.conv2d` implementation ("auto": by backend).

  Returns:
    [B, H, W, C] images in [-2, 2] (the normalised input space).
  """
  return 2.0 * jnp.tanh(_generator_pre_tanh(params, inputs, image_shape, padding_mode,
                                            conv_impl))


def _generator_pre_tanh(params: Params, inputs: jax.Array,
                        image_shape: tuple[int, int, int], padding_mode: str,
                        conv_impl: str) -> jax.Array:
  h, w, _ = image_shape
  p = params

  def wn(name):
    return layers.kernel_of(p[name])

  def bn(x, name):
    return layers.batch_norm(x, p[name]["scale"], p[name]["bias"])

  x = layers.leaky_relu(bn(layers.dense(inputs, wn("fc1")), "bn1"))
  x = layers.leaky_relu(bn(layers.dense(x, wn("fc2")), "bn2"))
  x = x.reshape(x.shape[0], h // 4, w // 4, GENERATOR_CHANNELS[0])
  x = layers.upsample_conv2d(x, wn("conv1"), padding_mode, impl=conv_impl)
  x = layers.leaky_relu(bn(x, "bn3"))
  return (layers.upsample_conv2d(x, wn("conv2"), padding_mode, impl=conv_impl)
          + p["conv2"]["bias"])
