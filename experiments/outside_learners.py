"""Learners written outside gtnjax, as a user would write them: plain Flax modules.

They are named in configs and on the command line as
`flax:outside_learners:<factory>` with `experiments/` on PYTHONPATH, e.g.

    PYTHONPATH=experiments gtnjax evaluate --workdir DIR --learner flax:outside_learners:make_lenet5

`gtn_vs_real_data.py` evaluates its teachers on them as architectures that
meta-training never saw and that do not come from gtnjax's own learner code
(no weight norm, no batch norm, no gtnjax convolution). Three classic MNIST
networks: LeNet-5, LeNet-300-100 (an MLP), and the small two-convolution CNN
that Flax's MNIST example trains.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class LeNet5(nn.Module):
  """LeNet-5 in its common modern form (ReLU, average pooling, no normalisation):
  conv 6@5x5 (same) - pool - conv 16@5x5 (valid) - pool - fc 120 - fc 84 - fc classes."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = nn.relu(nn.Conv(6, (5, 5), padding="SAME")(x))
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x))
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(120)(x))
    x = nn.relu(nn.Dense(84)(x))
    return nn.Dense(self.num_classes)(x)


def make_lenet5() -> nn.Module:
  return LeNet5()


class LeNet300100(nn.Module):
  """LeNet-300-100: the fully connected MNIST network of LeCun et al. (1998),
  with ReLU: fc 300 - fc 100 - fc classes."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(300)(x))
    x = nn.relu(nn.Dense(100)(x))
    return nn.Dense(self.num_classes)(x)


class TwoConvCNN(nn.Module):
  """The small CNN of Flax's MNIST example: conv 32@3x3 - pool - conv 64@3x3 -
  pool - fc 256 - fc classes (ReLU, average pooling, no normalisation)."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = nn.relu(nn.Conv(32, (3, 3))(x))
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = nn.relu(nn.Conv(64, (3, 3))(x))
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(256)(x))
    return nn.Dense(self.num_classes)(x)


def make_lenet_300_100() -> nn.Module:
  return LeNet300100()


def make_two_conv_cnn() -> nn.Module:
  return TwoConvCNN()
