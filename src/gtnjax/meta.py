"""The meta-step: meta-loss, its gradient through the unroll, the teacher update.

One meta-step samples a population of P freshly initialised learners per
architecture, trains each on the same teacher curriculum with `unroll`, scores
them on real probe batches, and takes one optax step on the teacher's
parameters with the gradient of the mean meta-loss. The population is a
leading axis handled by `jax.vmap` (one vmap per architecture), so it can be
sharded over devices by `gtnjax.parallel` without changing this code.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gtnjax import inner_loop
from gtnjax.learners import LearnerSpec
from gtnjax.generator import SATURATION_THRESHOLD
from gtnjax.teacher import TeacherSpec, draw_rows

Params = dict[str, Any]
# Optional hook for `gtnjax.parallel`: called inside `meta_loss` as
# constrain("population_keys", keys [A, P]) and constrain("probes", Probes), it
# returns its input with a sharding constraint; None means no constraint.
Constrain = Callable[[str, Any], Any]


@dataclasses.dataclass(frozen=True)
class MetaSetup:
  """Everything static about meta-training (hashable: a jit static argument).

  Attributes:
    teacher: the teacher's spec.
    learners: one spec per architecture trained in each meta-step.
    population: P learners per architecture per meta-step.
    meta_batch_size: real images in each probe batch.
    probe_every: k; a probe follows every k inner steps (k must divide T).
    remat: inner-step rematerialisation, one of inner_loop.REMAT_POLICIES.
  """
  teacher: TeacherSpec
  learners: tuple[LearnerSpec, ...]
  population: int
  meta_batch_size: int
  probe_every: int
  remat: str = "block"

  @property
  def num_probes(self) -> int:
    return self.teacher.inner_steps // self.probe_every


class MetaState(NamedTuple):
  step: jax.Array             # shape=(), int32: meta-steps taken (skipped ones included)
  teacher_params: Params
  opt_state: optax.OptState
  skipped_updates: jax.Array  # shape=(), int32: updates dropped for a non-finite gradient


def make_optimizer(meta_lr: float, num_meta_steps: int, final_relative_lr: float,
                   grad_clip: float, b1: float = 0.9, b2: float = 0.999
                   ) -> optax.GradientTransformation:
  """Adam with cosine decay to final_relative_lr * meta_lr, after global-norm clipping."""
  schedule = optax.cosine_decay_schedule(meta_lr, num_meta_steps, alpha=final_relative_lr)
  clip = optax.clip_by_global_norm(grad_clip) if grad_clip > 0 else optax.identity()
  return optax.chain(clip, optax.adam(schedule, b1=b1, b2=b2))


def init_state(setup: MetaSetup, optimizer: optax.GradientTransformation,
               key: jax.Array) -> MetaState:
  params = setup.teacher.init(key)
  return MetaState(step=jnp.zeros((), jnp.int32), teacher_params=params,
                   opt_state=optimizer.init(params),
                   skipped_updates=jnp.zeros((), jnp.int32))


def sample_probes(key: jax.Array, images: jax.Array, labels: jax.Array,
                  num_probes: int, batch_size: int) -> inner_loop.Probes:
  """`num_probes` real batches drawn with replacement from (images, labels)."""
  return inner_loop.Probes(*draw_rows(key, images, labels, (num_probes, batch_size)))


def population_keys(key: jax.Array, setup: MetaSetup) -> jax.Array:
  """[A, P] learner-init keys: architecture a, member p."""
  return jax.vmap(lambda a: jax.random.split(jax.random.fold_in(key, a), setup.population))(
      jnp.arange(len(setup.learners)))


def meta_loss(teacher_params: Params, setup: MetaSetup, key: jax.Array,
              train_images: jax.Array, train_labels: jax.Array,
              constrain: Constrain | None = None
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean over the population of the summed probe losses.

  Args:
    teacher_params: differentiated.
    setup: static.
    key: this meta-step's randomness.
    train_images: [N, H, W, C] real images the probes are drawn from.
    train_labels: [N] int32.
    constrain: optional sharding hook (see `Constrain`); it changes where the
      work runs, never the random numbers drawn.

  Returns:
    (meta-loss, aux metrics: final probe loss and accuracy, means over learners).
  """
  teacher_key, learner_key, probe_key = jax.random.split(key, 3)
  # One curriculum per meta-step, shared by the whole population, so the
  # generator runs once rather than once per learner.
  batches = setup.teacher.batches(teacher_params, teacher_key, train_images, train_labels)
  probes = sample_probes(probe_key, train_images, train_labels,
                         setup.num_probes, setup.meta_batch_size)
  keys = population_keys(learner_key, setup)
  if constrain is not None:
    keys = constrain("population_keys", keys)
    probes = constrain("probes", probes)

  losses, final_losses, final_accuracies = [], [], []
  for spec, spec_keys in zip(setup.learners, keys):
    def one_learner(learner_key, spec=spec):
      state = inner_loop.init_state(spec, learner_key)
      out = inner_loop.unroll(spec, state, batches, probes, setup.remat)
      return jnp.sum(out.probe_losses), out.probe_losses[-1], out.probe_accuracy[-1]

    loss, final_loss, final_accuracy = jax.vmap(one_learner, in_axes=(0,))(spec_keys)
    losses.append(loss)
    final_losses.append(final_loss)
    final_accuracies.append(final_accuracy)

  aux = {"final_loss": jnp.mean(jnp.stack(final_losses)),
         "meta_accuracy": jnp.mean(jnp.stack(final_accuracies))}
  if setup.teacher.kind == "generator":
    # Pixels on tanh's flat tails pass almost no gradient back to the generator.
    aux["saturated_fraction"] = jnp.mean(jnp.abs(jax.lax.stop_gradient(batches.x))
                                         > SATURATION_THRESHOLD)
  return jnp.mean(jnp.stack(losses)), aux


def meta_step(state: MetaState, key: jax.Array, train_images: jax.Array,
              train_labels: jax.Array, *, setup: MetaSetup,
              optimizer: optax.GradientTransformation,
              constrain: Constrain | None = None) -> tuple[MetaState, dict[str, jax.Array]]:
  """One teacher update. A non-finite gradient leaves params and optimizer untouched.

  Args:
    state: before the step.
    key: the run's base key; this step uses fold_in(key, state.step), so a
      resumed run draws exactly what an uninterrupted one would.
    train_images, train_labels: real data the probes are drawn from.
    setup, optimizer: static.
    constrain: optional sharding hook passed to `meta_loss`.

  Returns:
    (state after the step, scalar metrics).
  """
  step_key = jax.random.fold_in(key, state.step)
  (loss, aux), grads = jax.value_and_grad(meta_loss, has_aux=True)(
      state.teacher_params, setup, step_key, train_images, train_labels, constrain)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(grad_norm) & jnp.isfinite(loss)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.teacher_params)
  params = optax.apply_updates(state.teacher_params, updates)
  keep_new = lambda new, old: jnp.where(finite, new, old)
  new_state = MetaState(
      step=state.step + 1,
      teacher_params=jax.tree.map(keep_new, params, state.teacher_params),
      opt_state=jax.tree.map(keep_new, opt_state, state.opt_state),
      skipped_updates=state.skipped_updates + (~finite).astype(jnp.int32))
  lr, momentum = setup.teacher.schedule(state.teacher_params)
  metrics = {
      "meta_loss": loss,
      **aux,
      "grad_norm": grad_norm,
      "skipped": (~finite).astype(jnp.int32),
      "inner_lr_mean": jnp.mean(lr),
      "inner_lr_max": jnp.max(lr),
      "inner_momentum_mean": jnp.mean(momentum),
      "inner_momentum_max": jnp.max(momentum),
  }
  return new_state, metrics


def make_meta_step(setup: MetaSetup, optimizer: optax.GradientTransformation, **jit_kwargs):
  """`meta_step` jitted once for this setup, with the state donated."""
  def step_fn(state, key, train_images, train_labels):
    return meta_step(state, key, train_images, train_labels, setup=setup, optimizer=optimizer)
  return jax.jit(step_fn, donate_argnums=(0,), **jit_kwargs)
