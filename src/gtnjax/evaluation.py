"""Evaluation: how well do fresh learners trained on the teacher's data do?

Fresh learners (seeds never used in meta-training) are trained for T steps on
the teacher's curriculum with its learned learning rates and momenta, then
scored on the real test set. The baseline trains the same learners for the
same T steps on real batches of the same size with a constant learning rate
and momentum, the best pair of a small sweep chosen on the validation split
(`gtnjax.baselines` caches it and adds the learned-schedule baseline).

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
from gtnjax.learners import Learner
from gtnjax.teacher import InnerBatches, TeacherSpec, draw_rows

# Evaluation keys are folded with this so they never coincide with the keys
# meta-training drew learner initialisations from.
EVAL_KEY_SALT = 0x5EED


def split_accuracy(spec: Learner, state: inner_loop.LearnerState, images: jax.Array,
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


def continue_training(spec: Learner, state: inner_loop.LearnerState,
                      batches: InnerBatches) -> inner_loop.LearnerState:
  """`state` trained further on `batches` (no gradient through it: no remat)."""
  def step(state, batch):
    state, _ = inner_loop.sgd_step(spec, state, *batch)
    return state, None
  state, _ = jax.lax.scan(step, state, batches)
  return state


def train_learner(spec: Learner, key: jax.Array, batches: InnerBatches
                  ) -> inner_loop.LearnerState:
  """A fresh learner trained on `batches`."""
  return continue_training(spec, inner_loop.init_state(spec, key), batches)


def real_batches(key: jax.Array, train_images: jax.Array, train_labels: jax.Array, *,
                 num_classes: int, inner_steps: int, batch_size: int, lr, momentum
                 ) -> InnerBatches:
  """`inner_steps` random real batches with a constant learning rate and momentum."""
  x, labels = draw_rows(key, train_images, train_labels, (inner_steps, batch_size))
  return InnerBatches(x, jax.nn.one_hot(labels, num_classes),
                      jnp.full((inner_steps,), lr), jnp.full((inner_steps,), momentum))


@functools.partial(jax.jit, static_argnames=("spec", "teacher_spec"))
def _teacher_accuracies(teacher_params, keys, train_images, train_labels, test_images,
                        test_labels, lr_scale=1.0, momentum=jnp.nan, *, spec: Learner,
                        teacher_spec: TeacherSpec):
  """Accuracies of fresh learners on the teacher's curriculum; its learned
  learning rates times `lr_scale`, its learned momenta unless `momentum` is
  given (NaN: learned). The defaults leave the schedule exactly as learned."""
  def one_seed(key):
    teacher_key, learner_key = jax.random.split(key)
    batches = teacher_spec.batches(teacher_params, teacher_key, train_images, train_labels)
    batches = batches._replace(
        lr=batches.lr * lr_scale,
        momentum=jnp.where(jnp.isnan(momentum), batches.momentum, momentum))
    state = train_learner(spec, learner_key, batches)
    return split_accuracy(spec, state, test_images, test_labels)
  return jax.lax.map(one_seed, keys)


@functools.partial(jax.jit, static_argnames=("spec", "step_counts", "batch_size"))
def _real_data_accuracies(lr, momentum, keys, train_images, train_labels, eval_images,
                          eval_labels, *, spec: Learner, step_counts: tuple[int, ...],
                          batch_size: int):
  """[seeds, len(step_counts)] accuracy after each of `step_counts` (increasing)
  real-data steps of one training run per seed. The first segment's batches
  do not depend on the later counts, so the first column is the same whatever
  follows it."""
  def one_seed(key):
    data_key, learner_key = jax.random.split(key)
    state = inner_loop.init_state(spec, learner_key)
    accuracies, done = [], 0
    for segment, count in enumerate(step_counts):
      segment_key = data_key if segment == 0 else jax.random.fold_in(data_key, segment)
      batches = real_batches(segment_key, train_images, train_labels,
                             num_classes=spec.num_classes, inner_steps=count - done,
                             batch_size=batch_size, lr=lr, momentum=momentum)
      state = continue_training(spec, state, batches)
      accuracies.append(split_accuracy(spec, state, eval_images, eval_labels))
      done = count
    return jnp.stack(accuracies)
  return jax.lax.map(one_seed, keys)


@functools.partial(jax.jit, static_argnames=("spec",))
def _accuracy_after_each_step(keys, batches_per_seed, test_images, test_labels, *,
                              spec: Learner):
  """[seeds, T + 1] test accuracy of fresh learners before and after each step."""
  def one_seed(xs):
    key, batches = xs
    def step(state, batch):
      state, _ = inner_loop.sgd_step(spec, state, *batch)
      return state, split_accuracy(spec, state, test_images, test_labels)
    state = inner_loop.init_state(spec, key)
    initial = split_accuracy(spec, state, test_images, test_labels)  # batch means still zero
    _, accuracies = jax.lax.scan(step, state, batches)
    return jnp.concatenate([initial[None], accuracies])
  return jax.lax.map(one_seed, (keys, batches_per_seed))


@jax.jit
def _curriculum_batches(batches_fn: jax.tree_util.Partial, keys, train_images, train_labels
                        ) -> InnerBatches:
  """[seeds, ...] batches, one curriculum per key. `batches_fn` is a jit input:
  the leaves it binds (a teacher's parameters) are traced, never folded into
  the program as constants; seeds run one after another (`lax.map`), as in
  `_teacher_accuracies`, so each seed's batches are computed as there."""
  return jax.lax.map(lambda key: batches_fn(key, train_images, train_labels), keys)


def learning_curve(spec: Learner, dataset, batches_fn, *, seed: int, num_seeds: int
                   ) -> dict[str, Any]:
  """Test accuracy of fresh learners after each of their T inner steps.

  Args:
    batches_fn: (key, train_images, train_labels) -> InnerBatches, the
      curriculum of one learner: `jax.tree_util.Partial(teacher_spec.batches,
      params)` for a teacher (its parameters are then traced inputs, as in
      `evaluate_teacher`), or a `functools.partial` of `real_batches` with
      Python settings. Called with the same keys as `evaluate_teacher` and
      `evaluate_real_data`, so the last point equals theirs.

  Returns:
    {"steps": [0..T], "mean": [...], "std": [...], "n": seeds}.

  Raises:
    TypeError: `batches_fn` is a `functools.partial` binding arrays. Closed-over
      arrays are compile-time constants: XLA folds a generator with constant
      parameters, and its pixels (and so the curve) drift from
      `evaluate_teacher`'s by float rounding.
  """
  if not isinstance(batches_fn, jax.tree_util.Partial):
    if isinstance(batches_fn, functools.partial) and any(
        isinstance(leaf, (jax.Array, np.ndarray))
        for leaf in jax.tree.leaves((batches_fn.args, batches_fn.keywords))):
      raise TypeError("learning_curve: batches_fn binds arrays through functools.partial, "
                      "which makes them compile-time constants; bind them with "
                      "jax.tree_util.Partial(fn, params) instead")
    batches_fn = jax.tree_util.Partial(batches_fn)  # nothing bound: nothing to trace
  data_keys, learner_keys = seed_data_and_learner_keys(seed, num_seeds)
  batches = _curriculum_batches(batches_fn, data_keys, dataset.train_images,
                                dataset.train_labels)
  curve = np.asarray(jax.device_get(_accuracy_after_each_step(
      learner_keys, batches, dataset.test_images, dataset.test_labels, spec=spec)), np.float64)
  return {"steps": list(range(curve.shape[1])), "mean": curve.mean(0).tolist(),
          "std": (curve.std(0, ddof=1) if num_seeds > 1 else 0 * curve[0]).tolist(),
          "n": num_seeds}


def _summary(values) -> dict[str, Any]:
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1
          else 0.0, "n": int(values.size), "values": [float(v) for v in values]}


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
  return jax.random.split(jax.random.fold_in(jax.random.key(seed), EVAL_KEY_SALT), num_seeds)


def seed_data_and_learner_keys(seed: int, num_seeds: int) -> tuple[jax.Array, jax.Array]:
  """([num_seeds] data keys, [num_seeds] learner-init keys) of the evaluation
  seeds: fresh learner i draws its batches from the first and its initial
  weights from the second (as `evaluate_teacher` and `evaluate_real_data` do)."""
  return jax.vmap(jax.random.split, out_axes=1)(seed_keys(seed, num_seeds))


def evaluate_teacher(teacher_spec: TeacherSpec, teacher_params, spec: Learner,
                     dataset, *, seed: int, num_seeds: int, split: str = "test"
                     ) -> dict[str, Any]:
  """Accuracy on `split` ("test" or "validation") of fresh `spec` learners
  trained on the teacher's curriculum; the same learners for either split."""
  if split not in ("test", "validation"):
    raise ValueError(f"split must be 'test' or 'validation', got {split!r}")
  accuracies = _teacher_accuracies(
      teacher_params, seed_keys(seed, num_seeds), dataset.train_images, dataset.train_labels,
      getattr(dataset, f"{split}_images"), getattr(dataset, f"{split}_labels"), spec=spec,
      teacher_spec=teacher_spec)
  return _summary(jax.device_get(accuracies))


# The schedule sweep of `evaluate_teacher_tuned`: the teacher's learned
# learning rates scaled, with its learned momenta (None) or 0.9. Eight
# settings, fewer than the real-data baseline's ten, and the learned schedule
# (1.0, None) among them.
SCHEDULE_LR_SCALES = (0.1, 0.3, 1.0, 3.0)
SCHEDULE_MOMENTA = (None, 0.9)


def evaluate_teacher_tuned(teacher_spec: TeacherSpec, teacher_params, spec: Learner,
                           dataset, *, seed: int, num_seeds: int,
                           lr_scales=SCHEDULE_LR_SCALES, momenta=SCHEDULE_MOMENTA,
                           progress=None) -> dict[str, Any]:
  """The teacher's curriculum with its schedule tuned for this learner, as the
  real-data baseline's is: the best (lr scale, momentum) of the sweep on the
  validation split, reported on test (same learners as `evaluate_teacher`).

  A learner meta-training never saw may need another step size than the one
  the teacher learned for its own learners; this separates what the data
  teaches from how well the learned schedule fits.
  """
  keys = seed_keys(seed, num_seeds)
  sweep = []
  for lr_scale in lr_scales:
    for momentum in momenta:
      val = _teacher_accuracies(
          teacher_params, keys, dataset.train_images, dataset.train_labels,
          dataset.validation_images, dataset.validation_labels, lr_scale,
          jnp.nan if momentum is None else momentum, spec=spec, teacher_spec=teacher_spec)
      sweep.append({"lr_scale": float(lr_scale), "momentum": momentum,
                    "validation_accuracy": float(jnp.mean(val))})
      if progress is not None:
        progress()
  best = max(sweep, key=lambda s: s["validation_accuracy"])
  test = _teacher_accuracies(
      teacher_params, keys, dataset.train_images, dataset.train_labels, dataset.test_images,
      dataset.test_labels, best["lr_scale"],
      jnp.nan if best["momentum"] is None else best["momentum"], spec=spec,
      teacher_spec=teacher_spec)
  return {**_summary(jax.device_get(test)), "lr_scale": best["lr_scale"],
          "momentum": best["momentum"], "sweep": sweep}


def evaluate_real_data(spec: Learner, dataset, *, inner_steps: int, batch_size: int,
                       lrs, momenta, seed: int, num_seeds: int,
                       step_multiples: tuple[int, ...] = (1,), progress=None
                       ) -> dict[str, Any]:
  """The real-data baseline: best constant (lr, momentum) on validation, reported on test.

  With `step_multiples` (increasing, starting at 1) the chosen pair also trains
  for each multiple of `inner_steps` and `steps_curve` reports the test
  accuracy after each: how many real-data steps match what a teacher gives in
  `inner_steps` (see `steps_to_match`).

  Args:
    progress: optional callable, called once after each trained configuration.
  """
  if step_multiples[0] != 1 or list(step_multiples) != sorted(set(step_multiples)):
    raise ValueError(f"step_multiples must increase from 1, got {step_multiples}")
  keys = seed_keys(seed, num_seeds)
  sweep = []
  for lr in lrs:
    for momentum in momenta:
      val = _real_data_accuracies(lr, momentum, keys, dataset.train_images, dataset.train_labels,
                                  dataset.validation_images, dataset.validation_labels,
                                  spec=spec, step_counts=(inner_steps,), batch_size=batch_size)
      sweep.append({"lr": float(lr), "momentum": float(momentum),
                    "validation_accuracy": float(jnp.mean(val))})
      if progress is not None:
        progress()
  best = max(sweep, key=lambda s: s["validation_accuracy"])
  step_counts = tuple(m * inner_steps for m in step_multiples)
  test = np.asarray(jax.device_get(_real_data_accuracies(
      best["lr"], best["momentum"], keys, dataset.train_images, dataset.train_labels,
      dataset.test_images, dataset.test_labels, spec=spec, step_counts=step_counts,
      batch_size=batch_size)))
  if progress is not None:
    progress()
  result = {**_summary(test[:, 0]), "lr": best["lr"], "momentum": best["momentum"],
            "sweep": sweep}
  if len(step_counts) > 1:
    result["steps_curve"] = [{"steps": c, **_summary(test[:, i])}
                             for i, c in enumerate(step_counts)]
  return result


def steps_to_match(accuracy: float, steps_curve: list[dict[str, Any]]) -> int | None:
  """Fewest real-data steps in `steps_curve` whose mean test accuracy reaches
  `accuracy`; None if even the longest run falls short."""
  for point in steps_curve:
    if point["mean"] >= accuracy:
      return int(point["steps"])
  return None
