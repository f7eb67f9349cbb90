"""The generator teacher's curricula: which noise and labels it gets at each step.

A curriculum is one small strategy of `teacher.GeneratorTeacher`, named by the
config's `curriculum` (Such et al. 2020, sec. 3.1 and its ablations):
  full            a learned [T, B, Z] tensor of inputs, one row per step,
                  labels fixed and balanced;
  none            fresh N(0, 1) noise and random labels each step;
  shuffled_batch  a random learned row each step;
  shuffled_all    B random slots of the whole learned tensor;
  gaussian        learned per-step mean and log-sigma of the noise.

The T*B (step, image) pairs are "slots"; a curriculum also says which slot
each image of the inner loop comes from, so that learned soft labels follow
their inputs when a curriculum shuffles them.
"""

from __future__ import annotations

from typing import Protocol

import jax
import jax.numpy as jnp

from gtnjax.layers import Params


class Sizes(Protocol):
  """What a curriculum reads of its `teacher.TeacherSpec`."""
  inner_steps: int  # T
  batch_size: int   # B
  noise_size: int   # Z
  num_classes: int  # K


def ordered_slots(sizes: Sizes) -> jax.Array:
  """[T, B] int32: slot t * B + b at step t, image b (no shuffling)."""
  return jnp.arange(sizes.inner_steps * sizes.batch_size).reshape(
      sizes.inner_steps, sizes.batch_size)


def balanced_labels(sizes: Sizes) -> jax.Array:
  """[T, B] int32 labels cycling through the classes, so each step is balanced."""
  return ordered_slots(sizes) % sizes.num_classes


class Curriculum:
  """Where the generator's inputs come from. Defaults: nothing learned, fresh
  N(0, 1) noise at init, the balanced labels in their own slots."""
  # Whether slot (t, b) always holds the same class, so a label can be learned for it.
  has_fixed_label_slots = True

  def init(self, sizes: Sizes, key: jax.Array) -> Params | jax.Array | None:
    """The learned inputs (the teacher's params["curriculum"]), or None."""
    del sizes, key
    return None

  def first_noise(self, sizes: Sizes, learned, key: jax.Array) -> jax.Array:
    """[B, Z] noise of step 0, for the generator's data-dependent init."""
    del learned
    return jax.random.normal(key, (sizes.batch_size, sizes.noise_size))

  def inputs(self, sizes: Sizes, learned, row_key: jax.Array, noise_key: jax.Array
             ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(noise [T, B, Z], int labels [T, B], slots [T, B]) of one inner loop.

    row_key picks rows and labels, noise_key draws fresh noise.
    """
    raise NotImplementedError


class Full(Curriculum):
  """A learned [T, B, Z] tensor, read in order; labels fixed and balanced."""

  def init(self, sizes, key):
    return jax.random.normal(key, (sizes.inner_steps, sizes.batch_size, sizes.noise_size))

  def first_noise(self, sizes, learned, key):
    del sizes, key
    return learned[0]

  def slots(self, sizes: Sizes, row_key: jax.Array) -> jax.Array:
    """[T, B] which learned slots each step reads."""
    del row_key
    return ordered_slots(sizes)

  def inputs(self, sizes, learned, row_key, noise_key):
    del noise_key
    slots = self.slots(sizes, row_key)
    # Each slot brings its own fixed label, so shuffled steps stay labelled.
    noise = learned.reshape(sizes.inner_steps * sizes.batch_size, -1)[slots]
    return noise, balanced_labels(sizes).reshape(-1)[slots], slots


class ShuffledBatch(Full):
  """The learned tensor's rows (whole steps) in a random order, drawn with replacement."""

  def slots(self, sizes, row_key):
    t = sizes.inner_steps
    return ordered_slots(sizes)[jax.random.randint(row_key, (t,), 0, t)]


class ShuffledAll(Full):
  """B random slots of the whole learned tensor each step, drawn with replacement."""

  def slots(self, sizes, row_key):
    t, b = sizes.inner_steps, sizes.batch_size
    return jax.random.randint(row_key, (t, b), 0, t * b)


class NoCurriculum(Curriculum):
  """Fresh N(0, 1) noise and random labels each step: nothing is learned."""
  has_fixed_label_slots = False

  def inputs(self, sizes, learned, row_key, noise_key):
    del learned
    t, b = sizes.inner_steps, sizes.batch_size
    noise = jax.random.normal(noise_key, (t, b, sizes.noise_size))
    labels = jax.random.randint(row_key, (t, b), 0, sizes.num_classes)
    return noise, labels, ordered_slots(sizes)


class Gaussian(Curriculum):
  """Noise from a learned per-step N(mean, sigma^2); labels fixed and balanced."""

  def init(self, sizes, key):
    del key
    t, z = sizes.inner_steps, sizes.noise_size
    return {"mean": jnp.zeros((t, z)), "log_sigma": jnp.zeros((t, z))}

  def inputs(self, sizes, learned, row_key, noise_key):
    del row_key
    eps = jax.random.normal(noise_key, (sizes.inner_steps, sizes.batch_size, sizes.noise_size))
    noise = learned["mean"][:, None, :] + jnp.exp(learned["log_sigma"])[:, None, :] * eps
    return noise, balanced_labels(sizes), ordered_slots(sizes)


_CURRICULA = {"full": Full(), "none": NoCurriculum(), "shuffled_batch": ShuffledBatch(),
              "shuffled_all": ShuffledAll(), "gaussian": Gaussian()}
CURRICULA = tuple(_CURRICULA)


def curriculum_named(name: str) -> Curriculum:
  """The strategy a config's `curriculum` names."""
  if name not in _CURRICULA:
    raise ValueError(f"unknown curriculum {name!r}: choose one of {CURRICULA}")
  return _CURRICULA[name]
