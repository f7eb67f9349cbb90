"""The teacher: what produces the learner's T training batches.

`TeacherSpec.init(key)` makes the meta-learned parameters; 
`TeacherSpec.batches(params, key, train_images, train_labels)` returns the
whole inner-loop curriculum as `InnerBatches` (x [T, B, H, W, C],
y [T, B, K], lr [T], momentum [T]). The same interface serves the GTN
generator with each curriculum and the two baselines, so the inner loop,
evaluation and export never need to know which teacher made the data.

Kinds:
  generator     the paper's conditional generator (gtnjax.generator) fed by a curriculum:
                  full            a learned [T, B, Z] tensor of inputs, one row per
                                  step, labels fixed and balanced;
                  none            fresh N(0, 1) noise and random labels each step;
                  shuffled_batch  a random learned row each step;
                  shuffled_all    B random rows of the whole learned tensor;
                  gaussian        learned per-step mean and log-sigma of the noise.
  real_data     batches of real training data (only lr and momentum are learned);
  distillation  learned pixels, one [B, H, W, C] batch per step (Dataset
                Distillation, Wang et al. 2018).

Every kind learns a per-step learning rate (log-parameterised) and momentum:
log-parameterised as in the paper's code (`momentum_parameterisation="log"`,
nothing stops it passing 1, where SGD diverges) or through a sigmoid
(`"sigmoid"`, always in (0, 1)).
Optional learned soft labels replace the fixed one-hot targets with a softmax
of learned [T, B, K] logits (for the kinds whose label slots are fixed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gtnjax import layers
from gtnjax.generator import generator_apply, init_generator

Params = dict[str, Any]

TEACHER_KINDS = ("generator", "real_data", "distillation")
CURRICULA = ("full", "none", "shuffled_batch", "shuffled_all", "gaussian")
MOMENTUM_PARAMETERISATIONS = ("log", "sigmoid")
OUTPUT_INITS = ("data", "none")


def draw_rows(key: jax.Array, images: jax.Array, labels: jax.Array,
              shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """Real (images, int labels) drawn uniformly with replacement, [*shape, ...]."""
  index = jax.random.randint(key, shape, 0, images.shape[0])
  return jnp.asarray(images)[index], jnp.asarray(labels)[index]


class InnerBatches(NamedTuple):
  """Everything the inner loop consumes, stacked over its T steps."""
  x: jax.Array         # shape=(T, B, H, W, C), float32, normalised input space
  y: jax.Array         # shape=(T, B, K), float32, one-hot or soft targets
  lr: jax.Array        # shape=(T,), float32
  momentum: jax.Array  # shape=(T,), float32


# The rules of the teacher kinds, shared by `TeacherSpec` (which raises
# ValueError) and `gtnjax.config.validate` (which raises ConfigError before any
# data is loaded): each returns why a choice cannot work, or None.
def has_fixed_label_slots(kind: str, curriculum: str) -> bool:
  """Whether slot (t, b) always holds the same class, so a label can be learned for it."""
  return kind == "distillation" or (kind == "generator" and curriculum != "none")


def soft_labels_error(kind: str, curriculum: str, soft_labels: bool) -> str | None:
  if soft_labels and not has_fixed_label_slots(kind, curriculum):
    return ("soft_labels needs fixed label slots: use curriculum 'full', 'shuffled_batch', "
            "'shuffled_all' or 'gaussian', or teacher 'distillation'")
  return None


def image_shape_error(kind: str, image_shape: tuple[int, ...]) -> str | None:
  h, w = image_shape[:2]
  if kind == "generator" and (h % 4 or w % 4):
    return (f"the generator upsamples twice by 2, so image height and width must be "
            f"multiples of 4 (got {h}x{w}): use teacher='distillation' or another data set")
  return None


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
  """Static description of a teacher; hashable for use as a jit static arg.

  Attributes:
    kind: one of TEACHER_KINDS.
    curriculum: one of CURRICULA (generator kind only).
    image_shape: (H, W, C) of the data set.
    num_classes: K.
    inner_steps: T.
    batch_size: B, images per inner step.
    noise_size: Z, generator noise inputs.
    soft_labels: learn [T, B, K] label logits.
    init_lr: initial inner learning rate.
    init_momentum: initial inner momentum.
    generator_chunk: inner steps whose generator pass is recomputed together in
      the backward pass (bounds memory to one chunk of generator activations).
      At the paper's MNIST scale 1 instead of 4 cut peak RSS from 4.9 to 2.1 GiB
      for 4% more time (BENCHMARKS.md).
    momentum_parameterisation: one of MOMENTUM_PARAMETERISATIONS.
    generator_padding: "zeros" or "reflect" (the paper's code) for the
      generator's upsampling convolutions.
    output_init: "data" (weight norm's data-dependent init of the generator's
      output layer, a gtnjax choice) or "none" (Kaiming only, the paper's code).
    weight_norm: weight-normalised generator kernels (the paper's); False for
      plain kernels (the ablation).
    conv_impl: the generator's `layers.conv2d` implementation, "auto" (by
      backend) or one of `layers.CONV_IMPLS`; a field so that it is part of
      the jit cache key.
    pool_impl: `layers.max_pool` implementation ("auto" or one of
      `layers.POOL_IMPLS`). The generator does not pool; the field is here so
      that a run's teacher and learner specs carry the same choice.
  """
  kind: str
  curriculum: str
  image_shape: tuple[int, int, int]
  num_classes: int
  inner_steps: int
  batch_size: int
  noise_size: int = 128
  soft_labels: bool = False
  init_lr: float = 0.02
  init_momentum: float = 0.5
  generator_chunk: int = 1
  momentum_parameterisation: str = "log"
  generator_padding: str = "zeros"
  output_init: str = "data"
  weight_norm: bool = True
  conv_impl: str = "auto"
  pool_impl: str = "auto"

  def __post_init__(self):
    layers.check_impl("conv2d", self.conv_impl)
    layers.check_impl("max_pool", self.pool_impl)
    if self.momentum_parameterisation not in MOMENTUM_PARAMETERISATIONS:
      raise ValueError(f"unknown momentum_parameterisation {self.momentum_parameterisation!r}: "
                       f"choose one of {MOMENTUM_PARAMETERISATIONS}")
    if self.generator_padding not in layers.UPSAMPLE_PADDING_MODES:
      raise ValueError(f"unknown generator_padding {self.generator_padding!r}: "
                       f"choose one of {layers.UPSAMPLE_PADDING_MODES}")
    if self.output_init not in OUTPUT_INITS:
      raise ValueError(f"unknown output_init {self.output_init!r}: choose one of {OUTPUT_INITS}")
    if self.kind not in TEACHER_KINDS:
      raise ValueError(f"unknown teacher {self.kind!r}: choose one of {TEACHER_KINDS}")
    if self.kind == "generator" and self.curriculum not in CURRICULA:
      raise ValueError(f"unknown curriculum {self.curriculum!r}: choose one of {CURRICULA}")
    for error in (image_shape_error(self.kind, self.image_shape),
                  soft_labels_error(self.kind, self.curriculum, self.soft_labels)):
      if error:
        raise ValueError(error)

  @property
  def has_fixed_label_slots(self) -> bool:
    return has_fixed_label_slots(self.kind, self.curriculum)

  def balanced_labels(self) -> jax.Array:
    """[T, B] int32 labels cycling through the classes, so each step is balanced."""
    slots = jnp.arange(self.inner_steps * self.batch_size).reshape(
        self.inner_steps, self.batch_size)
    return slots % self.num_classes

  # ---------------------------------------------------------------- init
  def init(self, key: jax.Array) -> Params:
    """Meta-learned parameters of this teacher."""
    t, b, z = self.inner_steps, self.batch_size, self.noise_size
    gen_key, curriculum_key = jax.random.split(key)
    # An explicit dtype: a weak-typed leaf would change type after the first
    # update and make the jitted meta-step compile twice.
    dtype = jnp.zeros(()).dtype
    params: Params = {"log_lr": jnp.full((t,), math.log(self.init_lr), dtype=dtype)}
    if self.momentum_parameterisation == "log":
      params["log_momentum"] = jnp.full((t,), math.log(self.init_momentum), dtype=dtype)
    else:
      logit = math.log(self.init_momentum / (1.0 - self.init_momentum))
      params["momentum_logit"] = jnp.full((t,), logit, dtype=dtype)
    if self.kind == "generator":
      if self.curriculum in ("full", "shuffled_batch", "shuffled_all"):
        params["curriculum"] = jax.random.normal(curriculum_key, (t, b, z))
      elif self.curriculum == "gaussian":
        params["curriculum"] = {"mean": jnp.zeros((t, z)),
                                "log_sigma": jnp.zeros((t, z))}
      first_noise = (params["curriculum"][0] if "curriculum" in params and
                     self.curriculum != "gaussian" else jax.random.normal(curriculum_key, (b, z)))
      first_inputs = jnp.concatenate(
          [first_noise, jax.nn.one_hot(self.balanced_labels()[0], self.num_classes)], axis=-1)
      params["generator"] = init_generator(
          gen_key, z + self.num_classes, self.image_shape,
          first_inputs if self.output_init == "data" else None, self.generator_padding,
          self.weight_norm, conv_impl=self.conv_impl)
    elif self.kind == "distillation":
      params["pixels"] = jax.random.normal(curriculum_key, (t, b, *self.image_shape))
    if self.soft_labels:
      one_hot = jax.nn.one_hot(self.balanced_labels(), self.num_classes)
      # log of a lightly smoothed one-hot: starts near the hard labels, yet
      # every class has a gradient from the first meta-step.
      params["label_logits"] = jnp.log(0.9 * one_hot + 0.1 / self.num_classes)
    return params

  def schedule(self, params: Params) -> tuple[jax.Array, jax.Array]:
    """The learned per-step (learning rate [T], momentum [T])."""
    lr = jnp.exp(params["log_lr"])
    if self.momentum_parameterisation == "log":
      return lr, jnp.exp(params["log_momentum"])
    return lr, jax.nn.sigmoid(params["momentum_logit"])

  # ------------------------------------------------------------- batches
  def batches(self, params: Params, key: jax.Array,
              train_images: jax.Array | None = None,
              train_labels: jax.Array | None = None) -> InnerBatches:
    """The T training batches of one inner loop.

    Args:
      params: from `init`.
      key: randomness of the stochastic curricula and of real-data sampling.
      train_images: [N, H, W, C] real training images (real_data kind only).
      train_labels: [N] int labels (real_data kind only).

    Returns:
      InnerBatches with x [T, B, H, W, C] and y [T, B, K].
    """
    t, b, k = self.inner_steps, self.batch_size, self.num_classes
    lr, momentum = self.schedule(params)
    row_key, noise_key = jax.random.split(key)
    labels = self.balanced_labels()
    # Which learned slots each step uses: [T, B] indices into the T*B slots.
    slots = jnp.arange(t * b).reshape(t, b)
    if self.kind == "generator" and self.curriculum == "shuffled_batch":
      slots = slots[jax.random.randint(row_key, (t,), 0, t)]
    elif self.kind == "generator" and self.curriculum == "shuffled_all":
      slots = jax.random.randint(row_key, (t, b), 0, t * b)

    if self.kind == "real_data":
      if train_images is None or train_labels is None:
        raise ValueError("the real_data teacher needs train_images and train_labels")
      x, labels = draw_rows(row_key, train_images, train_labels, (t, b))
      return InnerBatches(x, jax.nn.one_hot(labels, k), lr, momentum)

    if self.kind == "distillation":
      x = params["pixels"]
    else:
      if self.curriculum == "none":
        noise = jax.random.normal(noise_key, (t, b, self.noise_size))
        labels = jax.random.randint(row_key, (t, b), 0, k)
      elif self.curriculum == "gaussian":
        eps = jax.random.normal(noise_key, (t, b, self.noise_size))
        c = params["curriculum"]
        noise = c["mean"][:, None, :] + jnp.exp(c["log_sigma"])[:, None, :] * eps
      else:
        noise = params["curriculum"].reshape(t * b, -1)[slots]
        labels = labels.reshape(-1)[slots]
      x = self.generate(params["generator"], noise, jax.nn.one_hot(labels, k))

    if self.soft_labels:
      logits = params["label_logits"].reshape(t * b, k)[slots]
      y = jax.nn.softmax(logits, axis=-1)
    else:
      y = jax.nn.one_hot(labels, k)
    return InnerBatches(x, y, lr, momentum)

  def generate(self, generator_params: Params, noise: jax.Array,
               one_hot: jax.Array) -> jax.Array:
    """Images for every step: [T, B, Z] noise, [T, B, K] labels -> [T, B, H, W, C].

    Batch norm statistics are per step (over its B images). Steps are
    generated `generator_chunk` at a time under `jax.checkpoint`, so the
    backward pass keeps one chunk of generator activations alive, not T.
    """
    inputs = jnp.concatenate([noise, one_hot], axis=-1)
    one_step = jax.checkpoint(lambda z: generator_apply(
        generator_params, z, self.image_shape, self.generator_padding,
        conv_impl=self.conv_impl))
    return jax.lax.map(one_step, inputs, batch_size=min(self.generator_chunk, inputs.shape[0]))

