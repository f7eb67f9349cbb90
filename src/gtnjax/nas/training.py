"""Training and scoring cell networks on real data.

One recipe for the ground truth and for the real-data proxies, so that the
proxies are the ground truth's own training cut short: SGD with momentum
0.9 (PyTorch form, as in `gtnjax.inner_loop`), a cosine learning-rate decay
to zero over the run's steps, batches drawn uniformly with replacement from
the training split inside the compiled loop (no host round trip per step).

`train_and_score` trains several candidates as one program, one after
another: P seeds of a static spec's cell, or P cells of a masked spec (each
its own encoding, initialisation and batches; one compilation for all).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gtnjax import evaluation, inner_loop
from gtnjax.learners import Learner
from gtnjax.nas import network
from gtnjax.nas.network import CellNetworkSpec


def cosine_lr(step: jax.Array, num_steps: int, peak_lr: float) -> jax.Array:
  """peak_lr * (1 + cos(pi * step / num_steps)) / 2: peak_lr at step 0, 0 at the end."""
  return 0.5 * peak_lr * (1.0 + jnp.cos(jnp.pi * step / num_steps))


def train(spec: Learner, key: jax.Array, train_images: jax.Array,
          train_labels: jax.Array, *, num_steps: int, batch_size: int, peak_lr: float,
          momentum: float = 0.9) -> inner_loop.LearnerState:
  """A fresh candidate (a static cell network, or a masked one bound to its
  cell by `network.bind`) trained for `num_steps` SGD steps on real data."""
  init_key, data_key = jax.random.split(key)
  state = inner_loop.init_state(spec, init_key)

  def step(state, i):
    idx = jax.random.randint(jax.random.fold_in(data_key, i), (batch_size,), 0,
                             train_images.shape[0])
    y = jax.nn.one_hot(train_labels[idx], spec.num_classes)
    state, _ = inner_loop.sgd_step(spec, state, train_images[idx], y,
                                   cosine_lr(i, num_steps, peak_lr), momentum)
    return state, None

  state, _ = jax.lax.scan(step, state, jnp.arange(num_steps))
  return state


def accuracy(spec: Learner, state: inner_loop.LearnerState, images: jax.Array,
             labels: jax.Array) -> jax.Array:
  """Test-mode accuracy over a split (batch means of the last training batch),
  chunked like every gtnjax evaluation."""
  return evaluation.split_accuracy(spec, state, images, labels)


def mean_loss(spec: Learner, state: inner_loop.LearnerState, images: jax.Array,
              labels: jax.Array, chunk: int = 1000) -> jax.Array:
  """Test-mode mean cross-entropy over a split, chunked like `accuracy`."""
  n = images.shape[0]
  chunk = min(chunk, n)
  pad = (-n) % chunk
  padded = jnp.concatenate([images, jnp.zeros((pad, *images.shape[1:]), images.dtype)])
  weights = jnp.concatenate([jnp.ones((n,)), jnp.zeros((pad,))])
  padded_labels = jnp.concatenate([labels, jnp.zeros((pad,), labels.dtype)])

  def chunk_loss(xs):
    x, y, w = xs
    logits, _ = spec.apply(state.params, x, state.batch_means)
    losses = -jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, spec.num_classes), -1)
    return jnp.sum(losses * w)

  total = jax.lax.map(chunk_loss, (padded.reshape(-1, chunk, *images.shape[1:]),
                                   padded_labels.reshape(-1, chunk), weights.reshape(-1, chunk)))
  return jnp.sum(total) / n


@functools.partial(jax.jit, static_argnames=("spec", "num_steps", "batch_size"))
def train_and_score(spec: CellNetworkSpec, keys: jax.Array, encodings: jax.Array,
                    train_images, train_labels, eval_sets, *, num_steps: int,
                    batch_size: int, peak_lr: float) -> jax.Array:
  """[P, len(eval_sets)] accuracies of P candidates, each trained from its key.

  `encodings` is [P, 6]: a masked spec trains candidate p as the cell
  `encodings[p]` (one program for every cell); a static spec trains P seeds
  of its own architecture and ignores it. The candidates run side by side
  or one after another as `spec.vmap_population` says: on CPU a masked
  network runs them one after another, computing only each cell's own
  operations (`vmap` would compute every operation of every edge).
  `eval_sets` is a tuple of (images, labels) pairs (validation, test).
  """
  def one(xs):
    key, encoding = xs
    learner = network.bind(spec, encoding if spec.masked else None)
    state = train(learner, key, train_images, train_labels, num_steps=num_steps,
                  batch_size=batch_size, peak_lr=peak_lr)
    return jnp.stack([accuracy(learner, state, x, y) for x, y in eval_sets])

  if spec.vmap_population:
    return jax.vmap(one)((keys, encodings))
  return jax.lax.map(one, (keys, encodings))
