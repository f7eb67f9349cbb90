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

import functools
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gtnjax import layers
from gtnjax.learners import BatchMeans, Learner
from gtnjax.teacher import InnerBatches

# name -> how the inner loop is rematerialised in the backward pass. The unit
# of the scan is "probe the learner entering a block, then train it for the
# block's k steps", so the probe and the block's first step share one saved
# state (with k = 1, the paper's setting, a unit is one step).
#   none       keep every intermediate of every step (fastest, most memory:
#              hundreds of MB per step at the paper's scale);
#   step       keep only the learner state entering each step (and probe) and
#              recompute the step in the backward pass (memory: one learner
#              state per step);
#   step_dots  like step, but also keep matmul/conv outputs without batch dims;
#   block      keep only the state entering each block of k steps; the block
#              is recomputed, itself with per-step remat (T/k + k states).
#              The default: with k = 1 it keeps one learner state per step,
#              where "step" keeps the parameters twice (once for the probe,
#              once for the step: measured 23 vs 15 MiB per step at the
#              paper's scale, BENCHMARKS.md) for the same time;
#   nested     keep only the state entering each chunk of c ~ sqrt(T/k)
#              blocks; a chunk is recomputed with per-step remat inside
#              (memory ~ 2 sqrt(T) states, one more forward pass per step).
REMAT_POLICIES = ("none", "step", "step_dots", "block", "nested")


def nested_chunk(num_blocks: int) -> int:
  """Blocks per checkpointed chunk for remat="nested": the largest divisor of
  num_blocks not above ceil(sqrt(num_blocks))."""
  limit = math.ceil(math.sqrt(num_blocks))
  return max(d for d in range(1, limit + 1) if num_blocks % d == 0)


class LearnerState(NamedTuple):
  params: Any              # pytree of the learner's weights
  momentum: Any            # same structure as params
  # Batch statistics of the latest training batch, as the spec's `apply`
  # returns them: for the built-in learners one [C] mean per hidden layer
  # (`BatchMeans`), for a Flax learner its "batch_stats" collection.
  batch_means: BatchMeans | Any


class Probes(NamedTuple):
  """Real batches on which the learner is scored during and after training."""
  images: jax.Array  # shape=(T // k, M, H, W, C)
  labels: jax.Array  # shape=(T // k, M), int32


class UnrollOutput(NamedTuple):
  state: LearnerState
  train_losses: jax.Array  # shape=(T,): loss on each teacher batch
  probe_losses: jax.Array  # shape=(T // k,): cross-entropy on each probe batch
  probe_accuracy: jax.Array  # shape=(T // k,)


def init_state(spec: Learner, key: jax.Array) -> LearnerState:
  """A fresh learner: new weights, zero momentum, the spec's initial batch
  statistics (zero means for the built-in learners)."""
  params = spec.init(key)
  return LearnerState(params=params,
                      momentum=jax.tree.map(jnp.zeros_like, params),
                      batch_means=spec.initial_batch_stats())


def sgd_step(spec: Learner, state: LearnerState, x: jax.Array, y: jax.Array,
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


def evaluate(spec: Learner, state: LearnerState, images: jax.Array,
             labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(cross-entropy, accuracy) of a learner on a labelled batch, test mode."""
  logits, _ = spec.apply(state.params, images, state.batch_means)
  one_hot = jax.nn.one_hot(labels, spec.num_classes)
  loss = layers.softmax_cross_entropy(logits, one_hot)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return loss, accuracy


def unroll(spec: Learner, state: LearnerState, batches: InnerBatches,
           probes: Probes, remat: str = "step") -> UnrollOutput:
  # Long because the scan body, its remat policy and the probe blocks share
  # one closure: split apart, the policies' differences would be harder to see.
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
  # Shapes checked at trace time, so a mismatch names the array, not an XLA op.
  chex.assert_shape((batches.lr, batches.momentum), (num_steps,))
  chex.assert_shape(batches.x, (num_steps, None, *spec.input_shape))
  chex.assert_shape(batches.y, (num_steps, batches.x.shape[1], spec.num_classes))
  chex.assert_shape(probes.images, (num_probes, None, *spec.input_shape))
  chex.assert_shape(probes.labels, (num_probes, probes.images.shape[1]))
  if num_probes < 1 or num_steps % num_probes:
    raise ValueError(f"{num_probes} probe batches cannot split {num_steps} inner steps "
                     "evenly: the probe interval must divide inner_steps")
  block = num_steps // num_probes

  def step(state, batch):
    x, y, lr, momentum = batch
    return sgd_step(spec, state, x, y, lr, momentum)

  def probe(state, images, labels):
    return evaluate(spec, state, images, labels)

  if remat in ("step", "block", "nested"):
    step = jax.checkpoint(step, policy=jax.checkpoint_policies.nothing_saveable)
    probe = jax.checkpoint(probe, policy=jax.checkpoint_policies.nothing_saveable)
  elif remat == "step_dots":
    policy = jax.checkpoint_policies.dots_with_no_batch_dims_saveable
    step = jax.checkpoint(step, policy=policy)
    probe = jax.checkpoint(probe, policy=policy)

  def probe_then_block(state, xs):
    # Unit j probes the state entering block j (that is probe j - 1, after
    # block j - 1), then trains block j; unit 0 has nothing to probe. The probe
    # and the first step take the same state, so a checkpoint keeps it once.
    index, probe_images, probe_labels, block_batches = xs
    def skip(*args):
      return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(probe, *args))

    probe_loss, probe_accuracy = jax.lax.cond(
        index > 0, probe, skip, state, probe_images, probe_labels)
    state, train_losses = jax.lax.scan(step, state, block_batches)
    return state, (train_losses, probe_loss, probe_accuracy)

  blocked = InnerBatches(*jax.tree.map(
      lambda a: a.reshape(num_probes, block, *a.shape[1:]), batches))
  # Probe j - 1 goes with unit j; unit 0's slot gets probe 0, never evaluated.
  shifted = jax.tree.map(lambda a: jnp.concatenate([a[:1], a[:-1]]),
                         (probes.images, probes.labels))
  xs = (jnp.arange(num_probes), *shifted, blocked)

  if remat == "block":
    unit = jax.checkpoint(probe_then_block, policy=jax.checkpoint_policies.nothing_saveable)
    state, ys = jax.lax.scan(unit, state, xs)
  elif remat == "nested":
    chunk = nested_chunk(num_probes)

    @functools.partial(jax.checkpoint, policy=jax.checkpoint_policies.nothing_saveable)
    def run_chunk(state, chunk_xs):
      return jax.lax.scan(probe_then_block, state, chunk_xs)

    chunked = jax.tree.map(lambda a: a.reshape(num_probes // chunk, chunk, *a.shape[1:]), xs)
    state, ys = jax.lax.scan(run_chunk, state, chunked)
    ys = jax.tree.map(lambda a: a.reshape(num_probes, *a.shape[2:]), ys)
  else:
    state, ys = jax.lax.scan(probe_then_block, state, xs)
  train_losses, probe_losses, probe_accuracy = ys
  last_loss, last_accuracy = evaluate(spec, state, probes.images[-1], probes.labels[-1])
  probe_losses = jnp.concatenate([probe_losses[1:], last_loss[None]])
  probe_accuracy = jnp.concatenate([probe_accuracy[1:], last_accuracy[None]])
  return UnrollOutput(state, train_losses.reshape(num_steps), probe_losses, probe_accuracy)
