"""Training and scoring cell networks on real data.

One recipe for the ground truth and for the real-data proxies, so that the
proxies are the ground truth's own training cut short: SGD with momentum
0.9 (PyTorch form, as in `gtnjax.inner_loop`), a cosine learning-rate decay
to zero over the run's steps, batches drawn uniformly with replacement from
the training split inside the compiled loop (no host round trip per step).

`train_population` trains several candidates as one program: a static spec
runs them one after another (`lax.map`, the CPU default: one architecture's
program is cheapest there), a masked spec runs them side by side (`vmap`,
for accelerators), each with its own encoding, initialisation and batches.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gtnjax import evaluation, inner_loop
from gtnjax.nas.network import CellNetworkSpec


def cosine_lr(step: jax.Array, num_steps: int, peak_lr: float) -> jax.Array:
  """peak_lr * (1 + cos(pi * step / num_steps)) / 2: peak_lr at step 0, 0 at the end."""
  return 0.5 * peak_lr * (1.0 + jnp.cos(jnp.pi * step / num_steps))


def init_state(spec: CellNetworkSpec, key: jax.Array, encoding=None
               ) -> inner_loop.LearnerState:
  params = spec.init(key, encoding)
  return inner_loop.LearnerState(
      params=params, momentum=jax.tree.map(jnp.zeros_like, params),
      batch_means=tuple(jnp.zeros((w,)) for w in spec.hidden_layer_widths))


def train(spec: CellNetworkSpec, key: jax.Array, train_images: jax.Array,
          train_labels: jax.Array, *, num_steps: int, batch_size: int, peak_lr: float,
          momentum: float = 0.9, encoding=None) -> inner_loop.LearnerState:
  """A fresh candidate trained for `num_steps` SGD steps on real data."""
  init_key, data_key = jax.random.split(key)
  state = init_state(spec, init_key, encoding)

  def step(state, i):
    idx = jax.random.randint(jax.random.fold_in(data_key, i), (batch_size,), 0,
                             train_images.shape[0])
    y = jax.nn.one_hot(train_labels[idx], spec.num_classes)
    state, _ = inner_loop.sgd_step(spec, state, train_images[idx], y,
                                   cosine_lr(i, num_steps, peak_lr), momentum)
    return state, None

  state, _ = jax.lax.scan(step, state, jnp.arange(num_steps))
  return state


def accuracy(spec: CellNetworkSpec, state: inner_loop.LearnerState, images: jax.Array,
             labels: jax.Array) -> jax.Array:
  """Test-mode accuracy over a split (batch means of the last training batch),
  chunked like every gtnjax evaluation."""
  return evaluation.split_accuracy(spec, state, images, labels)


@functools.partial(jax.jit, static_argnames=("spec", "num_steps", "batch_size"))
def train_and_score(spec: CellNetworkSpec, keys: jax.Array, encodings: jax.Array,
                    train_images, train_labels, eval_sets, *, num_steps: int,
                    batch_size: int, peak_lr: float) -> jax.Array:
  """[P, len(eval_sets)] accuracies of P candidates, each trained from its key.

  `encodings` is [P, 6]: used by a masked spec (vmapped); a static spec
  trains P seeds of its own architecture one after another and ignores it.
  `eval_sets` is a tuple of (images, labels) pairs (validation, test).
  """
  def one(key, encoding):
    state = train(spec, key, train_images, train_labels, num_steps=num_steps,
                  batch_size=batch_size, peak_lr=peak_lr,
                  encoding=encoding if spec.masked else None)
    return jnp.stack([accuracy(spec, state, x, y) for x, y in eval_sets])

  if spec.masked:
    return jax.vmap(one)(keys, encodings)
  return jax.lax.map(lambda xs: one(*xs), (keys, encodings))
