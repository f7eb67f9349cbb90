"""The teacher: what produces the learner's T training batches.

`TeacherSpec.init(key)` makes the meta-learned parameters;
`TeacherSpec.batches(params, key, train_images, train_labels)` returns the
whole inner-loop curriculum as `InnerBatches` (x [T, B, H, W, C],
y [T, B, K], lr [T], momentum [T]). The same interface serves the GTN
generator with each curriculum and the two baselines, so the inner loop,
evaluation and export never need to know which teacher made the data.

`TeacherSpec` is the static description a config names (hashable, a jit static
argument). What differs between kinds is one small object per kind, which
`make_teacher_kind` picks from the config's strings (the one place they are
read); callers ask the spec (`has_generator`, `learns_inputs`,
`has_fixed_label_slots`), never compare the strings:
  GeneratorTeacher     "generator": the paper's conditional generator
                       (gtnjax.generator) fed by a `Curriculum`
                       (gtnjax.curriculum), one small strategy per config value:
                       full, none, shuffled_batch, shuffled_all, gaussian.
  RealDataTeacher      "real_data": batches of real training data (only lr and
                       momentum are learned).
  DistillationTeacher  "distillation": learned pixels, one [B, H, W, C] batch per
                       step (Dataset Distillation, Wang et al. 2018).

What every kind shares is the spec's own: a learned per-step learning rate
(log-parameterised) and momentum, log-parameterised as in the paper's code
(`momentum_parameterisation="log"`, nothing stops it passing 1, where SGD
diverges) or through a sigmoid (`"sigmoid"`, always in (0, 1)); and optional
learned soft labels, a softmax of learned [T, B, K] logits replacing the fixed
one-hot targets (for the kinds whose label slots are fixed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gtnjax import curriculum as curricula, layers
from gtnjax.curriculum import CURRICULA, Curriculum
from gtnjax.generator import generator_apply, init_generator
from gtnjax.layers import Params

TEACHER_KINDS = ("generator", "real_data", "distillation")
MOMENTUM_PARAMETERISATIONS = ("log", "sigmoid")
# The teacher parameters that hold the learned schedule (`TeacherSpec.init`).
SCHEDULE_PARAMETERS = ("log_lr", "log_momentum", "momentum_logit")
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


# What a kind's `inputs` returns: images, their int labels and the learned
# slot each (step, image) reads its soft label from, all over [T, B, ...].
KindInputs = tuple[jax.Array, jax.Array, jax.Array]


class TeacherKind:
  """What one kind of teacher learns besides the schedule, and the inputs it makes.

  Methods take the `TeacherSpec` for its sizes and settings; the kind holds
  only what the spec's strings chose.
  """
  has_generator = False  # its images come out of the generator network
  learns_inputs = True   # False: only the schedule is learned
  # Whether slot (t, b) always holds the same class, so a label can be learned for it.
  has_fixed_label_slots = True

  def image_shape_error(self, image_shape: tuple[int, ...]) -> str | None:
    """Why this kind cannot make images of `image_shape`, or None."""
    del image_shape
    return None

  def init(self, spec: TeacherSpec, network_key: jax.Array, inputs_key: jax.Array) -> Params:
    """This kind's own learned leaves (network weights, learned inputs)."""
    raise NotImplementedError

  def inputs(self, spec: TeacherSpec, params: Params, row_key: jax.Array, noise_key: jax.Array,
             train_images: jax.Array | None, train_labels: jax.Array | None) -> KindInputs:
    """(x [T, B, H, W, C], int labels [T, B], soft-label slots [T, B])."""
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class GeneratorTeacher(TeacherKind):
  """The paper's generator; its `curriculum` chooses the noise and labels of each step."""
  curriculum: Curriculum
  has_generator = True

  @property
  def has_fixed_label_slots(self) -> bool:
    return self.curriculum.has_fixed_label_slots

  def image_shape_error(self, image_shape):
    h, w = image_shape[:2]
    if h % 4 or w % 4:
      return (f"the generator upsamples twice by 2, so image height and width must be "
              f"multiples of 4 (got {h}x{w}): use teacher='distillation' or another data set")
    return None

  def init(self, spec, network_key, inputs_key):
    params: Params = {}
    learned = self.curriculum.init(spec, inputs_key)
    if learned is not None:
      params["curriculum"] = learned
    first_inputs = jnp.concatenate(
        [self.curriculum.first_noise(spec, learned, inputs_key),
         jax.nn.one_hot(spec.balanced_labels()[0], spec.num_classes)], axis=-1)
    params["generator"] = init_generator(
        network_key, spec.noise_size + spec.num_classes, spec.image_shape,
        first_inputs if spec.output_init == "data" else None, spec.generator_padding,
        spec.weight_norm, conv_impl=spec.conv_impl)
    return params

  def inputs(self, spec, params, row_key, noise_key, train_images, train_labels):
    del train_images, train_labels
    noise, labels, slots = self.curriculum.inputs(spec, params.get("curriculum"), row_key,
                                                  noise_key)
    one_hot = jax.nn.one_hot(labels, spec.num_classes)
    return self.generate(spec, params["generator"], noise, one_hot), labels, slots

  def generate(self, spec: TeacherSpec, generator_params: Params, noise: jax.Array,
               one_hot: jax.Array) -> jax.Array:
    """Images for every step: [T, B, Z] noise, [T, B, K] labels -> [T, B, H, W, C].

    Batch norm statistics are per step (over its B images). Steps are
    generated `spec.generator_chunk` at a time under `jax.checkpoint`, so the
    backward pass keeps one chunk of generator activations alive, not T.
    """
    inputs = jnp.concatenate([noise, one_hot], axis=-1)
    one_step = jax.checkpoint(lambda z: generator_apply(
        generator_params, z, spec.image_shape, spec.generator_padding,
        conv_impl=spec.conv_impl))
    return jax.lax.map(one_step, inputs, batch_size=min(spec.generator_chunk, inputs.shape[0]))


@dataclasses.dataclass(frozen=True)
class RealDataTeacher(TeacherKind):
  """Real training batches drawn with replacement: the learned-schedule baseline."""
  learns_inputs = False
  has_fixed_label_slots = False

  def init(self, spec, network_key, inputs_key):
    del spec, network_key, inputs_key
    return {}

  def inputs(self, spec, params, row_key, noise_key, train_images, train_labels):
    del params, noise_key
    if train_images is None or train_labels is None:
      raise ValueError("the real_data teacher needs train_images and train_labels")
    x, labels = draw_rows(row_key, train_images, train_labels,
                          (spec.inner_steps, spec.batch_size))
    return x, labels, spec.ordered_slots()


@dataclasses.dataclass(frozen=True)
class DistillationTeacher(TeacherKind):
  """Learned pixels, one batch per step, with the balanced labels."""

  def init(self, spec, network_key, inputs_key):
    del network_key
    return {"pixels": jax.random.normal(
        inputs_key, (spec.inner_steps, spec.batch_size, *spec.image_shape))}

  def inputs(self, spec, params, row_key, noise_key, train_images, train_labels):
    del row_key, noise_key, train_images, train_labels
    return params["pixels"], spec.balanced_labels(), spec.ordered_slots()


def make_teacher_kind(kind: str, curriculum: str) -> TeacherKind:
  """The kind object that a config's `teacher` and `curriculum` strings name.

  `curriculum` matters to the generator kind only (the others ignore it, as
  they always have, so their configs keep the default "full").
  """
  if kind == "generator":
    return GeneratorTeacher(curricula.curriculum_named(curriculum))
  if kind == "real_data":
    return RealDataTeacher()
  if kind == "distillation":
    return DistillationTeacher()
  raise ValueError(f"unknown teacher {kind!r}: choose one of {TEACHER_KINDS}")


# The rules of the teacher kinds, shared by `TeacherSpec` (which raises
# ValueError) and `gtnjax.config.validate` (which raises ConfigError before any
# data is loaded): each returns why a choice cannot work, or None.
def soft_labels_error(kind: str, curriculum: str, soft_labels: bool) -> str | None:
  if soft_labels and not make_teacher_kind(kind, curriculum).has_fixed_label_slots:
    return ("soft_labels needs fixed label slots: use curriculum 'full', 'shuffled_batch', "
            "'shuffled_all' or 'gaussian', or teacher 'distillation'")
  return None


def image_shape_error(kind: str, image_shape: tuple[int, ...]) -> str | None:
  # The image shape rule never depends on the curriculum.
  return make_teacher_kind(kind, CURRICULA[0]).image_shape_error(image_shape)


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
    schedules: learned schedules: 1, shared by every learner, or one per
      meta-training architecture (schedule parameters [schedules, T], in the
      order of `MetaSetup.learners`); `for_schedule` picks one, `schedule`
      and `batches` use their mean in parameter space (for learners
      meta-training never saw).
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
  schedules: int = 1

  def __post_init__(self):
    if not (isinstance(self.schedules, int) and self.schedules >= 1):
      raise ValueError(f"schedules must be a positive integer, got {self.schedules!r}")
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
    kind = self.teacher_kind  # raises for an unknown kind or curriculum
    for error in (kind.image_shape_error(self.image_shape),
                  soft_labels_error(self.kind, self.curriculum, self.soft_labels)):
      if error:
        raise ValueError(error)

  @property
  def teacher_kind(self) -> TeacherKind:
    return make_teacher_kind(self.kind, self.curriculum)

  @property
  def has_generator(self) -> bool:
    """Whether the images come out of the generator network."""
    return self.teacher_kind.has_generator

  @property
  def learns_inputs(self) -> bool:
    """Whether the learner's inputs are learned (False: real data, only the schedule)."""
    return self.teacher_kind.learns_inputs

  @property
  def has_fixed_label_slots(self) -> bool:
    return self.teacher_kind.has_fixed_label_slots

  def balanced_labels(self) -> jax.Array:
    """[T, B] int32 labels cycling through the classes, so each step is balanced."""
    return curricula.balanced_labels(self)

  def ordered_slots(self) -> jax.Array:
    """[T, B] int32 index of each (step, image) into the T*B learned slots, in order."""
    return curricula.ordered_slots(self)

  def init(self, key: jax.Array) -> Params:
    """Meta-learned parameters: the schedule, the kind's own, the soft labels."""
    t = self.inner_steps
    network_key, inputs_key = jax.random.split(key)
    # An explicit dtype: a weak-typed leaf would change type after the first
    # update and make the jitted meta-step compile twice.
    dtype = jnp.zeros(()).dtype
    shape = (t,) if self.schedules == 1 else (self.schedules, t)
    params: Params = {"log_lr": jnp.full(shape, math.log(self.init_lr), dtype=dtype)}
    if self.momentum_parameterisation == "log":
      params["log_momentum"] = jnp.full(shape, math.log(self.init_momentum), dtype=dtype)
    else:
      logit = math.log(self.init_momentum / (1.0 - self.init_momentum))
      params["momentum_logit"] = jnp.full(shape, logit, dtype=dtype)
    params.update(self.teacher_kind.init(self, network_key, inputs_key))
    if self.soft_labels:
      one_hot = jax.nn.one_hot(self.balanced_labels(), self.num_classes)
      # log of a lightly smoothed one-hot: starts near the hard labels, yet
      # every class has a gradient from the first meta-step.
      params["label_logits"] = jnp.log(0.9 * one_hot + 0.1 / self.num_classes)
    return params

  def schedule(self, params: Params) -> tuple[jax.Array, jax.Array]:
    """The learned per-step (learning rate [T], momentum [T]); with several
    schedules, their mean in parameter space (`for_schedule(params, None)`)."""
    return self.all_schedules(self.for_schedule(params, None)[1])

  def all_schedules(self, params: Params) -> tuple[jax.Array, jax.Array]:
    """(learning rate, momentum), [T] each, or [schedules, T] with several."""
    lr = jnp.exp(params["log_lr"])
    if self.momentum_parameterisation == "log":
      return lr, jnp.exp(params["log_momentum"])
    return lr, jax.nn.sigmoid(params["momentum_logit"])

  def for_schedule(self, params: Params, index: int | None) -> tuple[TeacherSpec, Params]:
    """(a one-schedule spec, params with schedule `index`, or the mean of all
    in parameter space for None): what a learner of meta-training
    architecture `index` (None: an architecture meta-training never saw) is
    trained with. Unchanged with one schedule."""
    if self.schedules == 1:
      return self, params
    pick = (lambda leaf: jnp.mean(leaf, axis=0)) if index is None else (lambda leaf: leaf[index])
    return (dataclasses.replace(self, schedules=1),
            {name: pick(leaf) if name in SCHEDULE_PARAMETERS else leaf
             for name, leaf in params.items()})

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
    x, labels, slots = self.teacher_kind.inputs(self, params, row_key, noise_key,
                                                train_images, train_labels)
    if self.soft_labels:
      logits = params["label_logits"].reshape(t * b, k)[slots]
      y = jax.nn.softmax(logits, axis=-1)
    else:
      y = jax.nn.one_hot(labels, k)
    return InnerBatches(x, y, lr, momentum)
