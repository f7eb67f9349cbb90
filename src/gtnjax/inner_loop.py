"""The inner loop: a learner trained for T steps of SGD with momentum.

`unroll` is a fixed-length `jax.lax.scan` (jit-safe and reverse-mode-safe; no
Python loop over steps), so it compiles once whatever T is and can be
differentiated end to end: the meta-gradient flows through every update into
the teacher's images, labels, learning rates and momenta.

Structure: T steps are split into T / k blocks of k steps (k =
`probe_every`); after each block the learner is evaluated on a real "probe"
batch. With k = T there is only the final probe (the meta-loss proper); with
k = 1 there is one after every step, as in the paper's MNIST code. The last
probe always follows the last step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gtnjax import layers
from gtnjax.learners import BatchMeans, LearnerSpec
from gtnjax.teacher import InnerBatches

# name -> how the inner step is rematerialised in the backward pass.
#   none       keep every intermediate of every step (fastest, most memory);
#   step       keep only the learner state entering each step and recompute
#              the step (memory: one learner state per step);
#   step_dots  like step, but also keep matmul/conv outputs without batch dims;
#   block      keep only the state entering each block of k steps; the block
#              is recomputed, itself with per-step remat (nested: memory of
#              T/k + k learner states).
REMAT_POLICIES = ("none", "step", "step_dots", "block")


class LearnerState(NamedTuple):
  params: Any              # pytree of the learner's weights
  momentum: Any            # same structure as params
  batch_means: BatchMeans  # per hidden layer [C]: means of the latest training batch


class Probes(NamedTuple):
  """Real batches on which the learner is scored during and after training."""
  images: jax.Array  # shape=(T // k, M, H, W, C)
  labels: jax.Array  # shape=(T // k, M), int32


class UnrollOutput(NamedTuple):
  state: LearnerState
  train_losses: jax.Array  # shape=(T,): loss on each teacher batch
  probe_losses: jax.Array  # shape=(T // k,): cross-entropy on each probe batch
  probe_accuracy: jax.Array  # shape=(T // k,)


def init_state(spec: LearnerSpec, key: jax.Array) -> LearnerState:
  """A fresh learner: new weights, zero momentum, zero batch means."""
  params = spec.init(key)
  widths = spec.hidden_layer_widths
  return LearnerState(params=params,
                      momentum=jax.tree.map(jnp.zeros_like, params),
                      batch_means=tuple(jnp.zeros((w,)) for w in widths))


def sgd_step(spec: LearnerSpec, state: LearnerState, x: jax.Array, y: jax.Array,
             lr: jax.Array, momentum: jax.Array) -> tuple[LearnerState, jax.Array]:
  """One SGD-with-momentum step (PyTorch form: m <- mu m + g; w <- w - lr m).

  Args:
    spec: the learner.
    state: entering the step.
    x: [B, H, W, C] batch.
    y: [B, K] targets (one-hot or soft).
    lr, momentum: scalars for this step.

  Returns:
    (state after the step, training loss on the batch).
  """
  def loss_fn(params):
    logits, means = spec.apply(params, x)
    return layers.softmax_cross_entropy(logits, y), means

  (loss, means), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  new_momentum = jax.tree.map(lambda m, g: momentum * m + g, state.momentum, grads)
  new_params = jax.tree.map(lambda p, m: p - lr * m, state.params, new_momentum)
  return LearnerState(new_params, new_momentum, means), loss


def evaluate(spec: LearnerSpec, state: LearnerState, images: jax.Array,
             labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(cross-entropy, accuracy) of a learner on a labelled batch, test mode."""
  logits, _ = spec.apply(state.params, images, state.batch_means)
  one_hot = jax.nn.one_hot(labels, spec.num_classes)
  loss = layers.softmax_cross_entropy(logits, one_hot)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return loss, accuracy


def unroll(spec: LearnerSpec, state: LearnerState, batches: InnerBatches,
           probes: Probes, remat: str = "step") -> UnrollOutput:
  """Train a learner on `batches`, scoring it on each probe batch.

  Args:
    spec: the learner (static).
    state: the learner before training.
    batches: T steps of teacher data and step sizes.
    probes: T // k real batches; probe j follows step (j + 1) k - 1.
    remat: one of REMAT_POLICIES (static).

  Returns:
    UnrollOutput with the trained state and per-step / per-probe metrics.
  """
  if remat not in REMAT_POLICIES:
    raise ValueError(f"unknown remat policy {remat!r}: choose one of {REMAT_POLICIES}")
  num_steps = batches.lr.shape[0]
  num_probes = probes.labels.shape[0]
  if num_probes < 1 or num_steps % num_probes:
    raise ValueError(f"{num_probes} probe batches cannot split {num_steps} inner steps "
                     "evenly: the probe interval must divide inner_steps")
  block = num_steps // num_probes

  def step(state, batch):
    x, y, lr, momentum = batch
    return sgd_step(spec, state, x, y, lr, momentum)

  if remat in ("step", "block"):
    step = jax.checkpoint(step, policy=jax.checkpoint_policies.nothing_saveable)
  elif remat == "step_dots":
    step = jax.checkpoint(
        step, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)

  def train_block(state, block_batches):
    return jax.lax.scan(step, state, block_batches)

  if remat == "block":
    train_block = jax.checkpoint(train_block,
                                 policy=jax.checkpoint_policies.nothing_saveable)

  def block_then_probe(state, xs):
    block_batches, probe_images, probe_labels = xs
    state, train_losses = train_block(state, block_batches)
    probe_loss, probe_accuracy = evaluate(spec, state, probe_images, probe_labels)
    return state, (train_losses, probe_loss, probe_accuracy)

  blocked = jax.tree.map(lambda a: a.reshape(num_probes, block, *a.shape[1:]), batches)
  state, (train_losses, probe_losses, probe_accuracy) = jax.lax.scan(
      block_then_probe, state, (InnerBatches(*blocked), probes.images, probes.labels))
  return UnrollOutput(state, train_losses.reshape(num_steps), probe_losses, probe_accuracy)
