"""Evaluation: how well do fresh learners trained on the teacher's data do?

Fresh learners (seeds never used in meta-training) are trained for T steps on
the teacher's curriculum with its learned learning rates and momenta, then
scored on the real test set. The baseline trains the same learners for the
same T steps on real batches of the same size with a constant learning rate
and momentum, the best pair of a small sweep chosen on the validation split.

Test mode: learners normalise with the batch means of their last training
step (see `gtnjax.learners`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import inner_loop
from gtnjax.learners import LearnerSpec
from gtnjax.teacher import InnerBatches, TeacherSpec

# Evaluation keys are folded with this so they never coincide with the keys
# meta-training drew learner initialisations from.
EVAL_KEY_SALT = 0x5EED


def _accuracy(spec: LearnerSpec, state: inner_loop.LearnerState, images: jax.Array,
              labels: jax.Array, chunk: int = 1000) -> jax.Array:
  """Test-mode accuracy over a whole split, in chunks to bound activation memory."""
  n = images.shape[0]
  chunk = min(chunk, n)
  pad = (-n) % chunk
  padded = jnp.concatenate([images, jnp.zeros((pad, *images.shape[1:]), images.dtype)])
  padded_labels = jnp.concatenate([labels, jnp.full((pad,), -1, labels.dtype)])

  def chunk_correct(xs):
    x, y = xs
    logits, _ = spec.apply(state.params, x, state.batch_means)
    return jnp.sum(jnp.argmax(logits, -1) == y)

  correct = jax.lax.map(chunk_correct, (padded.reshape(-1, chunk, *images.shape[1:]),
                                        padded_labels.reshape(-1, chunk)))
  return jnp.sum(correct) / n


def train_learner(spec: LearnerSpec, key: jax.Array, batches: InnerBatches
                  ) -> inner_loop.LearnerState:
  """A fresh learner trained on `batches` (no gradient through it: no remat)."""
  def step(state, batch):
    state, _ = inner_loop.sgd_step(spec, state, *batch)
    return state, None
  state, _ = jax.lax.scan(step, inner_loop.init_state(spec, key), batches)
  return state


@functools.partial(jax.jit, static_argnames=("spec", "teacher_spec"))
def _teacher_accuracies(teacher_params, keys, train_images, train_labels, test_images,
                        test_labels, *, spec: LearnerSpec, teacher_spec: TeacherSpec):
  def one_seed(key):
    teacher_key, learner_key = jax.random.split(key)
    batches = teacher_spec.batches(teacher_params, teacher_key, train_images, train_labels)
    state = train_learner(spec, learner_key, batches)
    return _accuracy(spec, state, test_images, test_labels)
  return jax.lax.map(one_seed, keys)


@functools.partial(jax.jit, static_argnames=("spec", "inner_steps", "batch_size"))
def _real_data_accuracies(lr, momentum, keys, train_images, train_labels, eval_images,
                          eval_labels, *, spec: LearnerSpec, inner_steps: int, batch_size: int):
  def one_seed(key):
    data_key, learner_key = jax.random.split(key)
    index = jax.random.randint(data_key, (inner_steps, batch_size), 0, train_images.shape[0])
    batches = InnerBatches(train_images[index],
                           jax.nn.one_hot(train_labels[index], spec.num_classes),
                           jnp.full((inner_steps,), lr), jnp.full((inner_steps,), momentum))
    state = train_learner(spec, learner_key, batches)
    return _accuracy(spec, state, eval_images, eval_labels)
  return jax.lax.map(one_seed, keys)


def _summary(values) -> dict[str, Any]:
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1
          else 0.0, "n": int(values.size), "values": [float(v) for v in values]}


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
  return jax.random.split(jax.random.fold_in(jax.random.key(seed), EVAL_KEY_SALT), num_seeds)


def evaluate_teacher(teacher_spec: TeacherSpec, teacher_params, spec: LearnerSpec,
                     dataset, *, seed: int, num_seeds: int) -> dict[str, Any]:
  """Test accuracy of fresh `spec` learners trained on the teacher's curriculum."""
  accuracies = _teacher_accuracies(
      teacher_params, seed_keys(seed, num_seeds), dataset.train_images, dataset.train_labels,
      dataset.test_images, dataset.test_labels, spec=spec, teacher_spec=teacher_spec)
  return _summary(jax.device_get(accuracies))


def evaluate_real_data(spec: LearnerSpec, dataset, *, inner_steps: int, batch_size: int,
                       lrs, momenta, seed: int, num_seeds: int) -> dict[str, Any]:
  """The real-data baseline: best (lr, momentum) on validation, reported on test."""
  keys = seed_keys(seed, num_seeds)
  common = dict(spec=spec, inner_steps=inner_steps, batch_size=batch_size)
  sweep = []
  for lr in lrs:
    for momentum in momenta:
      val = _real_data_accuracies(lr, momentum, keys, dataset.train_images, dataset.train_labels,
                                  dataset.validation_images, dataset.validation_labels, **common)
      sweep.append({"lr": float(lr), "momentum": float(momentum),
                    "validation_accuracy": float(jnp.mean(val))})
  best = max(sweep, key=lambda s: s["validation_accuracy"])
  test = _real_data_accuracies(best["lr"], best["momentum"], keys, dataset.train_images,
                               dataset.train_labels, dataset.test_images, dataset.test_labels,
                               **common)
  return {**_summary(jax.device_get(test)), "lr": best["lr"], "momentum": best["momentum"],
          "sweep": sweep}
