"""The data set record, the known data sets' split rules, and the split step.

Every source (`digits`, `tfds_reader`, a `cache` file read without tfds) ends
here: `split_and_normalise` turns raw uint8 arrays into a `Dataset`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


class DatasetError(ValueError):
  """A data set cannot be loaded; the message always names the fix."""


@dataclasses.dataclass(frozen=True)
class SplitRule:
  """How a known data set is split and normalised.

  Attributes:
    validation_fraction: fraction of the tfds ``train`` split held out, taken
      from its end, as the validation split (used only when the set has no
      ``validation`` split of its own). For MNIST 1/6 gives the paper's
      50k/10k split of the 60k train records; for CIFAR-10 0.1 gives 45k/5k.
    mean: per-channel mean in pixel/255 units, or ``None`` to compute it from
      the training portion.
    std: per-channel standard deviation, or ``None`` to compute it.
    note: one line for help texts.
  """

  validation_fraction: float = 0.1
  mean: tuple[float, ...] | None = None
  std: tuple[float, ...] | None = None
  note: str = ""


# Sets with paper-specific rules. Any other tfds image-classification builder
# also loads, with the generic rule `SplitRule()` (last 10% of train as
# validation unless it has a 'validation' split; statistics from the data).
KNOWN_DATASETS: dict[str, SplitRule] = {
    "digits": SplitRule(
        note="scikit-learn 8x8 digits, embedded: 1197/300/300 by a seed-0 permutation",
    ),
    "mnist": SplitRule(
        validation_fraction=1 / 6,
        mean=(0.1307,),
        std=(0.3081,),
        note="tfds mnist: 50k train / 10k validation (end of train) / 10k test",
    ),
    "fashion_mnist": SplitRule(
        validation_fraction=1 / 6,
        mean=(0.2860,),
        std=(0.3530,),
        note="tfds fashion_mnist: 50k / 10k (end of train) / 10k test",
    ),
    "cifar10": SplitRule(
        validation_fraction=0.1,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        note="tfds cifar10: 45k / 5k (end of train) / 10k test",
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A normalised image-classification data set in host memory.

  Attributes:
    name: data set name as passed to `load`.
    train_images: float32 ``[N_train, H, W, C]``, ``(pixels/255 - mean)/std``.
    train_labels: int32 ``[N_train]`` in ``[0, num_classes)``.
    validation_images: float32 ``[N_val, H, W, C]``.
    validation_labels: int32 ``[N_val]``.
    test_images: float32 ``[N_test, H, W, C]``.
    test_labels: int32 ``[N_test]``.
    mean: float32 ``[C]``, per-channel mean in pixel/255 units (for
      ``digits`` the [0, 1] scale is pixels/16, see `load`).
    std: float32 ``[C]``, per-channel standard deviation, same units.
    num_classes: number of label classes.
  """

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  validation_images: np.ndarray
  validation_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  mean: np.ndarray
  std: np.ndarray
  num_classes: int

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """``(H, W, C)`` of every image."""
    h, w, c = self.train_images.shape[1:]
    return int(h), int(w), int(c)

  def denormalise(self, images: np.ndarray) -> np.ndarray:
    """Maps normalised images ``[..., C]`` back to the [0, 1] pixel scale."""
    return np.asarray(images) * self.std + self.mean


def known_names_text() -> str:
  return ", ".join(sorted(KNOWN_DATASETS))


def _hold_out_validation(name: str, rule: SplitRule, train_x: np.ndarray,
                         train_y: np.ndarray) -> tuple[np.ndarray, ...]:
  """(train images, labels, validation images, labels): validation is the END
  of train, so the remaining train records keep tfds order and the split is
  deterministic without a seed."""
  n_val = int(round(len(train_y) * rule.validation_fraction))
  if n_val < 1 or n_val >= len(train_y):
    raise DatasetError(
        f"dataset {name!r} has {len(train_y)} train records, too few to "
        "hold out a validation split; pick a larger data set"
    )
  cut = len(train_y) - n_val
  return train_x[:cut], train_y[:cut], train_x[cut:], train_y[cut:]


def _normalisation(name: str, rule: SplitRule, train_x: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel (mean, std) of pixels scaled to [0, 1]: the rule's constants,
  else computed from the training portion only, so validation and test stay
  unseen."""
  channels = train_x.shape[-1]
  if rule.mean is not None and rule.std is not None:
    mean = np.asarray(rule.mean, np.float32)
    std = np.asarray(rule.std, np.float32)
    if mean.shape != (channels,):
      raise DatasetError(
          f"dataset {name!r} has {channels} channels but its normalisation "
          f"constants have {mean.shape[0]}; fix KNOWN_DATASETS[{name!r}]"
      )
    return mean, std
  # float64 accumulation: float32 sums drift on 10^8 pixels.
  scaled = train_x.reshape(-1, channels).astype(np.float64) / 255.0
  mean = scaled.mean(axis=0).astype(np.float32)
  std = np.maximum(scaled.std(axis=0), 1e-6).astype(np.float32)
  return mean, std


def split_and_normalise(
    name: str, arrays: dict[str, np.ndarray], num_classes: int
) -> Dataset:
  """Applies the split rule and normalisation of ``name`` to raw arrays."""
  rule = KNOWN_DATASETS.get(name.split(":")[0], SplitRule())
  train_x, train_y = arrays["train_images"], arrays["train_labels"]
  if "validation_images" in arrays:
    val_x, val_y = arrays["validation_images"], arrays["validation_labels"]
  else:
    train_x, train_y, val_x, val_y = _hold_out_validation(name, rule, train_x, train_y)
  mean, std = _normalisation(name, rule, train_x)

  def norm(x: np.ndarray) -> np.ndarray:
    # Written in place on one float32 buffer: CIFAR-10 train alone is
    # ~550 MB as float32, so avoid float64 temporaries.
    out = x.astype(np.float32)
    out *= np.float32(1 / 255)
    out -= mean
    out /= std
    return out

  def labels(y: np.ndarray) -> np.ndarray:
    y = y.astype(np.int32)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
      raise DatasetError(
          f"dataset {name!r} has labels outside [0, {num_classes}); re-prepare it"
      )
    return y

  return Dataset(
      name=name,
      train_images=norm(train_x),
      train_labels=labels(train_y),
      validation_images=norm(val_x),
      validation_labels=labels(val_y),
      test_images=norm(arrays["test_images"]),
      test_labels=labels(arrays["test_labels"]),
      mean=mean,
      std=std,
      num_classes=num_classes,
  )


def describe(dataset: Dataset) -> dict[str, Any]:
  """A small JSON-friendly summary (sizes, shape, constants) for logs."""
  return {
      "name": dataset.name,
      "image_shape": list(dataset.image_shape),
      "num_classes": dataset.num_classes,
      "train": int(len(dataset.train_labels)),
      "validation": int(len(dataset.validation_labels)),
      "test": int(len(dataset.test_labels)),
      "mean": [float(v) for v in dataset.mean],
      "std": [float(v) for v in dataset.std],
  }
