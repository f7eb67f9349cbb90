"""The synthetic curriculum as plain arrays: what `gtnjax export` writes and
`gtnjax samples` draws, for training learners outside gtnjax.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import config as gconfig, evaluation, train


def curriculum_arrays(run: train.Run, teacher_params) -> dict[str, np.ndarray]:
  """The synthetic curriculum as plain arrays (the contents of `gtnjax export`).

  It is the curriculum the first fresh learner of `gtnjax evaluate` (and of
  `summary.json`) trains on, so training that learner on the arrays reproduces
  its accuracy (tests/test_cli.py checks it with a loop written outside gtnjax).
  """
  teacher_key, _ = evaluation.seed_data_and_learner_keys(run.config.seed, 1)
  batches = jax.jit(run.teacher_spec.batches)(
      teacher_params, teacher_key[0],
      jnp.asarray(run.dataset.train_images), jnp.asarray(run.dataset.train_labels))
  arrays = {
      "x": np.asarray(batches.x, np.float32),
      "y": np.asarray(batches.y, np.float32),
      "lr": np.asarray(batches.lr, np.float32),
      "momentum": np.asarray(batches.momentum, np.float32),
      "mean": np.asarray(run.dataset.mean, np.float32),
      "std": np.asarray(run.dataset.std, np.float32),
      "dataset": np.asarray(run.config.dataset),
      "learner": np.asarray(gconfig.learner_names(run.config)[0]),
  }
  return arrays


def export_curriculum(run: train.Run, teacher_params, path: str) -> dict[str, np.ndarray]:
  """Write `curriculum_arrays` to an .npz atomically; returns the arrays."""
  arrays = curriculum_arrays(run, teacher_params)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return arrays
