"""The meta-step: meta-loss, its gradient through the unroll, the teacher update.

One meta-step samples a population of P freshly initialised learners per
architecture, trains each on the same teacher curriculum with `unroll`, scores
them on real probe batches, and takes one optax step on the teacher's
parameters with the gradient of the mean meta-loss (or, `balanced`, the mean
of the architectures' gradients each rescaled to their mean norm). A teacher
with one learned schedule per architecture (`TeacherSpec.schedules`) trains
each architecture's learners on the same data with its own schedule. The
population is a leading axis handled by `jax.vmap` (one vmap per
architecture), so it can be sharded over devices by `gtnjax.parallel` without
changing this code.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gtnjax import inner_loop, parallel
from gtnjax.layers import Params
from gtnjax.learners import Learner
from gtnjax.generator import SATURATION_THRESHOLD
from gtnjax.teacher import SCHEDULE_PARAMETERS, InnerBatches, TeacherSpec, draw_rows


POPULATION_GRADIENTS = ("mean", "balanced")


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
    ranking_weight: weight of `ranking_loss` over the population of each
      learner that labels its cells (`cell_label`, the "cell:pool" cell
      networks); 0 is the paper's meta-loss.
    population_gradient: how the architectures' meta-gradients combine:
      "mean" (the gradient of the mean meta-loss, the paper's) or "balanced"
      (each architecture's gradient rescaled to the mean of their norms, then
      averaged: an architecture whose gradient is small, e.g. a
      global-pooling network beside plain CNNs, still steers the teacher as
      much as the others). The same with one architecture.
  """
  teacher: TeacherSpec
  learners: tuple[Learner, ...]
  population: int
  meta_batch_size: int
  probe_every: int
  remat: str = "block"
  ranking_weight: float = 0.0
  population_gradient: str = "mean"

  def __post_init__(self):
    if self.population_gradient not in POPULATION_GRADIENTS:
      raise ValueError(f"population_gradient must be one of {POPULATION_GRADIENTS}, "
                       f"got {self.population_gradient!r}")
    if self.teacher.schedules not in (1, len(self.learners)):
      raise ValueError(f"the teacher has {self.teacher.schedules} learned schedules for "
                       f"{len(self.learners)} architectures: give it 1 (shared) or one each")

  @property
  def num_probes(self) -> int:
    return self.teacher.inner_steps // self.probe_every


class MetaState(NamedTuple):
  step: jax.Array             # shape=(), int32: meta-steps taken (skipped ones included)
  teacher_params: Params
  opt_state: optax.OptState
  skipped_updates: jax.Array  # shape=(), int32: updates dropped for a non-finite gradient


def make_optimizer(meta_lr: float, num_meta_steps: int, final_relative_lr: float,
                   grad_clip: float, b1: float = 0.9, b2: float = 0.999,
                   schedule_meta_lr: float = 0.0) -> optax.GradientTransformation:
  """Adam with cosine decay to final_relative_lr * meta_lr, after global-norm clipping.

  schedule_meta_lr: if > 0 and not meta_lr, the learned schedule's parameters
  (`teacher.SCHEDULE_PARAMETERS`) get their own Adam with this learning rate
  (the same decay): Adam moves each parameter about its learning rate per
  step, so a meta_lr small enough for the generator keeps the schedule near
  its initial value.
  """
  def adam(lr: float) -> optax.GradientTransformation:
    decay = optax.cosine_decay_schedule(lr, num_meta_steps, alpha=final_relative_lr)
    return optax.adam(decay, b1=b1, b2=b2)

  clip = optax.clip_by_global_norm(grad_clip) if grad_clip > 0 else optax.identity()
  if not schedule_meta_lr or schedule_meta_lr == meta_lr:
    return optax.chain(clip, adam(meta_lr))

  def labels(params: Params) -> Params:
    return {name: jax.tree.map(lambda _, name=name: (
                "schedule" if name in SCHEDULE_PARAMETERS else "teacher"), subtree)
            for name, subtree in params.items()}
  return optax.chain(clip, optax.multi_transform(
      {"teacher": adam(meta_lr), "schedule": adam(schedule_meta_lr)}, labels))


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


def ranking_loss(final_losses: jax.Array, labels: jax.Array) -> jax.Array:
  """Pairwise logistic ranking loss: for every pair of learners whose cells'
  labels differ, softplus(-(s_better - s_worse)) with s = -final loss, the
  mean over such pairs (0 if there is none). Its gradient asks the teacher for
  data on which better-labelled architectures reach lower real-data losses,
  i.e. scores that rank like the labels (a differentiable Spearman surrogate).

  Args:
    final_losses: [P] each learner's final real-data probe loss.
    labels: [P] its cell's label (ground-truth accuracy; higher is better).
  """
  chex.assert_equal_shape((final_losses, labels))
  better = (labels[:, None] > labels[None, :]).astype(final_losses.dtype)
  margin = final_losses[None, :] - final_losses[:, None]  # s_i - s_j
  pairs = jnp.sum(better)
  return jnp.sum(better * jax.nn.softplus(-margin)) / jnp.maximum(pairs, 1.0)


def meta_loss(teacher_params: Params, setup: MetaSetup, key: jax.Array,
              train_images: jax.Array, train_labels: jax.Array,
              placement: parallel.Placement | None = None,
              architectures: tuple[int, ...] | None = None
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean over the population of the summed probe losses (plus
  `setup.ranking_weight` times `ranking_loss` for labelled cells).

  Args:
    teacher_params: differentiated.
    setup: static.
    key: this meta-step's randomness.
    train_images: [N, H, W, C] real images the probes are drawn from.
    train_labels: [N] int32.
    placement: optional sharding constraints (see `parallel.Placement`).
    architectures: the indices into `setup.learners` trained (default all),
      with the whole setup's curriculum, probes and learner keys.

  Returns:
    (meta-loss, aux metrics: final probe loss and accuracy, means over learners).
  """
  chex.assert_shape(train_images, (None, *setup.teacher.image_shape))
  chex.assert_shape(train_labels, (train_images.shape[0],))
  teacher_key, learner_key, probe_key = jax.random.split(key, 3)
  # One curriculum per meta-step, shared by the whole population, so the
  # generator runs once rather than once per learner.
  batches = setup.teacher.batches(teacher_params, teacher_key, train_images, train_labels)
  probes = sample_probes(probe_key, train_images, train_labels,
                         setup.num_probes, setup.meta_batch_size)
  keys = population_keys(learner_key, setup)
  if placement is not None:
    keys = jax.lax.with_sharding_constraint(keys, placement.population_keys)
    for sharding in placement.probes:
      probes = jax.lax.with_sharding_constraint(probes, sharding)

  per_architecture, ranking = [], []  # (summed, final probe loss, final accuracy) [P] each
  for index in range(len(setup.learners)) if architectures is None else architectures:
    spec, spec_keys = setup.learners[index], keys[index]
    own_batches = _with_own_schedule(setup.teacher, teacher_params, batches, index)
    def one_learner(learner_key, spec=spec, own_batches=own_batches):
      state = inner_loop.init_state(spec, learner_key)
      out = inner_loop.unroll(spec, state, own_batches, probes, setup.remat)
      return jnp.sum(out.probe_losses), out.probe_losses[-1], out.probe_accuracy[-1]

    per_architecture.append(_over_population(spec, one_learner, spec_keys))
    label_of = getattr(spec, "cell_label", None)
    if setup.ranking_weight and label_of is not None and label_of(spec_keys[0]) is not None:
      ranking.append(ranking_loss(per_architecture[-1][1], jax.vmap(label_of)(spec_keys)))

  losses, final_losses, final_accuracies = map(jnp.stack, zip(*per_architecture))
  aux = {"final_loss": jnp.mean(final_losses), "meta_accuracy": jnp.mean(final_accuracies)}
  total = jnp.mean(losses)
  if ranking:
    aux["ranking_loss"] = jnp.mean(jnp.stack(ranking))
    total = total + setup.ranking_weight * aux["ranking_loss"]
  if setup.teacher.has_generator:
    # Pixels on tanh's flat tails pass almost no gradient back to the generator.
    aux["saturated_fraction"] = jnp.mean(jnp.abs(jax.lax.stop_gradient(batches.x))
                                         > SATURATION_THRESHOLD)
  return total, aux


def _with_own_schedule(teacher: TeacherSpec, teacher_params: Params,
                       batches: InnerBatches, index: int) -> InnerBatches:
  """`batches` (the same data) with architecture `index`'s schedule, for a
  teacher with one schedule per architecture; unchanged otherwise."""
  if teacher.schedules == 1:
    return batches
  own_spec, own_params = teacher.for_schedule(teacher_params, index)
  lr, momentum = own_spec.schedule(own_params)
  return batches._replace(lr=lr, momentum=momentum)


def _over_population(spec: Learner, one_learner, keys: jax.Array):
  """`one_learner` over the population's keys: side by side (`vmap`), or one
  after another (`lax.map`) for a learner that says it runs faster alone,
  e.g. a masked cell network on CPU, which computes only its own cell's
  operations unbatched but every operation of every edge under `vmap`."""
  if getattr(spec, "vmap_population", True):
    return jax.vmap(one_learner)(keys)
  return jax.lax.map(one_learner, keys)


def meta_step(state: MetaState, key: jax.Array, train_images: jax.Array,
              train_labels: jax.Array, *, setup: MetaSetup,
              optimizer: optax.GradientTransformation,
              placement: parallel.Placement | None = None) -> tuple[MetaState, dict[str, jax.Array]]:
  """One teacher update. A non-finite gradient leaves params and optimizer untouched.

  Args:
    state: before the step.
    key: the run's base key; this step uses fold_in(key, state.step), so a
      resumed run draws exactly what an uninterrupted one would.
    train_images, train_labels: real data the probes are drawn from.
    setup, optimizer: static.
    placement: optional sharding constraints passed to `meta_loss`.

  Returns:
    (state after the step, scalar metrics).
  """
  step_key = jax.random.fold_in(key, state.step)
  if setup.population_gradient == "balanced" and len(setup.learners) > 1:
    loss, aux, grads = _balanced_value_and_grad(state.teacher_params, setup, step_key,
                                                train_images, train_labels, placement)
  else:
    (loss, aux), grads = jax.value_and_grad(meta_loss, has_aux=True)(
        state.teacher_params, setup, step_key, train_images, train_labels, placement)
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
  lr, momentum = setup.teacher.all_schedules(state.teacher_params)  # every schedule's steps
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


def _balanced_value_and_grad(teacher_params: Params, setup: MetaSetup, key: jax.Array,
                             train_images: jax.Array, train_labels: jax.Array,
                             placement: parallel.Placement | None):
  """(mean meta-loss, aux, balanced gradient): each architecture's meta-gradient
  on its own (the same curriculum, probes and learners as the whole population)
  rescaled to the mean of their norms, then averaged. Costs one generator
  backward pass per architecture more than the mean's gradient; the unrolls
  cost the same. A non-finite gradient of any architecture makes the result
  non-finite, so the step is skipped as usual."""
  per_architecture = [
      jax.value_and_grad(meta_loss, has_aux=True)(
          teacher_params, setup, key, train_images, train_labels, placement, (index,))
      for index in range(len(setup.learners))]
  norms = jnp.stack([optax.tree.norm(grads) for _, grads in per_architecture])
  # A zero gradient stays zero; the floor only keeps 0/0 out.
  weights = jnp.mean(norms) / jnp.maximum(norms, jnp.finfo(norms.dtype).tiny) / len(norms)
  grads = jax.tree.map(lambda *leaves: sum(w * leaf for w, leaf in zip(weights, leaves)),
                       *[grads for _, grads in per_architecture])
  losses = [loss for (loss, _), _ in per_architecture]
  auxes = [aux for (_, aux), _ in per_architecture]
  # Means over the architectures that report each metric (only labelled
  # cells report a ranking loss).
  aux = {name: jnp.mean(jnp.stack([a[name] for a in auxes if name in a]))
         for name in dict.fromkeys(n for a in auxes for n in a)}
  aux["architecture_grad_norm_ratio"] = jnp.min(norms) / jnp.max(norms)
  return jnp.mean(jnp.stack(losses)), aux, grads


def make_meta_step(setup: MetaSetup, optimizer: optax.GradientTransformation,
                   mesh: jax.sharding.Mesh | None = None,
                   data: Literal["replicated", "sharded"] = "replicated"):
  """`meta_step` jitted once for this setup on `mesh`, with the state donated.

  The one meta-step factory, for one device and many: the population is split
  over the mesh's devices (`gtnjax.parallel` describes the layout); a 1-device
  mesh is the single-device case, where the constraints cost nothing.

  Args:
    setup: static; population and meta_batch_size must be multiples of the
      number of devices D.
    optimizer: static.
    mesh: from `parallel.make_mesh`; default this process's first device.
    data: "replicated": train_images/labels on every device (place them once
      with `parallel.replicate`; numpy arrays also work, but are copied to the
      devices on every call); "sharded": split along N (build them with
      `parallel.global_data`; N a multiple of D).

  Returns:
    `(state, key, train_images, train_labels) -> (state, metrics)`; state and
    metrics come back replicated on the mesh. Place the first state there too
    (`parallel.replicate(state, mesh)`): the step is traced for its inputs'
    placement, so an unplaced state costs a second compile on the next call.
  """
  if mesh is None:  # this process's first device, also in a multi-process job
    mesh = parallel.make_mesh(devices=jax.local_devices()[:1])
  parallel.check_population(setup.population, setup.meta_batch_size, mesh)
  if data not in ("replicated", "sharded"):
    raise ValueError(f"data must be 'replicated' or 'sharded', got {data!r}")
  everywhere = parallel.replicated(mesh)
  data_in = everywhere if data == "replicated" else parallel.data_sharding(mesh)
  placement = parallel.placement(mesh)

  def step_fn(state, key, train_images, train_labels):
    return meta_step(state, key, train_images, train_labels, setup=setup,
                     optimizer=optimizer, placement=placement)

  return jax.jit(step_fn, in_shardings=(everywhere, everywhere, data_in, data_in),
                 out_shardings=(everywhere, everywhere), donate_argnums=(0,))
