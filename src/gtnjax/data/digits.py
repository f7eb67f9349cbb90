"""scikit-learn's embedded 8x8 handwritten digits: no download, always available."""

from __future__ import annotations

import numpy as np

from gtnjax.data.dataset import Dataset

_SIZES = (1197, 300, 300)


def load() -> Dataset:
  """scikit-learn digits, split 1197/300/300 by a fixed seed-0 permutation.

  Train, validation and test are consecutive slices of
  `np.random.default_rng(0).permutation(1797)`, so test = its last 300 rows.
  """
  from sklearn.datasets import load_digits  # local: sklearn import is slow

  bunch = load_digits()
  # Pixel values are 0..16, so pixels/16 plays the role that pixels/255
  # plays for 8-bit images: it puts the data on the [0, 1] scale.
  images = (bunch.images.astype(np.float32) / 16.0)[..., None]  # [1797, 8, 8, 1]
  labels = bunch.target.astype(np.int32)
  perm = np.random.default_rng(0).permutation(len(labels))
  n_train, n_val, n_test = _SIZES
  assert n_train + n_val + n_test == len(labels), len(labels)
  tr, va, te = np.split(perm, [n_train, n_train + n_val])
  mean = images[tr].mean(axis=(0, 1, 2)).astype(np.float32)  # [1]
  std = images[tr].std(axis=(0, 1, 2)).astype(np.float32)  # [1]

  def norm(x: np.ndarray) -> np.ndarray:
    return ((x - mean) / std).astype(np.float32)

  return Dataset(
      name="digits",
      train_images=norm(images[tr]),
      train_labels=labels[tr],
      validation_images=norm(images[va]),
      validation_labels=labels[va],
      test_images=norm(images[te]),
      test_labels=labels[te],
      mean=mean,
      std=std,
      num_classes=10,
  )

