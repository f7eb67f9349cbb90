"""Real image-classification data for meta-training, as numpy arrays.

Two sources are supported:

* ``digits``: scikit-learn's embedded 8x8 handwritten digits (no download,
  always available). This is the default data set for quick runs.
* TensorFlow Datasets (tfds) image-classification sets (``mnist``,
  ``fashion_mnist``, ``cifar10`` and any other builder with uint8 ``image`` and
  ``label`` features), read with ``tfds.data_source`` from array_record files
  that were prepared beforehand. Nothing is ever downloaded: TensorFlow is not
  installed and the machines may have no internet.

Every split comes back as float32 ``[N, H, W, C]`` images, normalised as
``(pixels / 255 - mean) / std``, with int32 ``[N]`` labels. The first read of a
tfds set is cached as an uncompressed ``.npz`` of uint8 images and int labels,
so later loads skip the (slow, PNG-decoding) tfds path.

Without tensorflow_datasets (a machine that has jax but no tfds and no
network) a tfds name is read from a cache file already in the cache folder,
one copied from a machine that has tfds; see `load`.

Layout: `dataset` (the `Dataset` record, split rules, the split-and-normalise
step), `digits` (the embedded set), `tfds_reader` (everything that touches
tfds) and `cache` (the ``.npz`` cache). This module is the public API.
"""

from __future__ import annotations

from gtnjax.data import cache, digits, tfds_reader
from gtnjax.data.cache import cache_path, default_cache_dir
from gtnjax.data.dataset import (KNOWN_DATASETS, Dataset, DatasetError, SplitRule, describe,
                                 split_and_normalise)
from gtnjax.data.tfds_reader import default_data_dir

__all__ = [
    "Dataset",
    "DatasetError",
    "KNOWN_DATASETS",
    "SplitRule",
    "cache_path",
    "check_available",
    "default_cache_dir",
    "default_data_dir",
    "describe",
    "load",
]


def load(name: str, *, data_dir: str | None = None, cache_dir: str | None = None) -> Dataset:
  """Loads, splits and normalises an image-classification data set.

  ``digits`` is scikit-learn's embedded set: pixel values run 0..16, so
  pixels/16 stands in for pixels/255 (the [0, 1] scale), and mean/std are
  computed on its train split. Split: 1197/300/300 by a seed-0 permutation.

  Any other name is a tfds builder read with ``tfds.data_source(...,
  download=False)``. Validation is the set's own 'validation' split if it has
  one, else the end of its train split (MNIST and Fashion-MNIST: last 10k of
  60k; CIFAR-10: last 5k of 50k; others: last 10%). The test split is kept
  apart. The raw uint8 arrays are cached under ``cache_dir``.

  If tensorflow_datasets cannot be imported, a tfds name is read instead from
  a cache file ``{name}-{version}-{digest}.npz`` in ``cache_dir`` (any
  version, or the one ``name:version`` names; the newest if several match),
  with the same split and normalisation; ``data_dir`` is then unused. Its class
  count is ``max(label) + 1`` over the file's splits, as the tfds metadata is
  not at hand.

  Args:
    name: ``"digits"``, a key of `KNOWN_DATASETS`, or another tfds
      image-classification builder name (optionally ``name:version``).
    data_dir: tfds data folder; defaults to ``$TFDS_DATA_DIR``, else tfds'
      own default (``~/tensorflow_datasets``).
    cache_dir: folder for the ``.npz`` cache; defaults to
      ``$GTNJAX_CACHE_DIR``, else ``~/.cache/gtnjax``.

  Returns:
    A `Dataset` with float32 ``[N, H, W, C]`` images and int32 ``[N]`` labels.

  Raises:
    DatasetError: unknown name, data not prepared under ``data_dir``, a
      needed split or feature missing, or no tfds and no cache file; the
      message names the fix.
  """
  _check_name(name)
  if name == "digits":
    return digits.load()
  try:
    tfds_reader.import_tfds()
  except ImportError as e:
    path = cache.find_without_tfds(name, cache_dir, e)
    arrays, num_classes = cache.read_without_tfds(path)
  else:
    data_dir = data_dir or default_data_dir()
    arrays, num_classes = tfds_reader.read_splits(name, data_dir, cache_dir)
  return split_and_normalise(name, arrays, num_classes)


def check_available(name: str, *, data_dir: str | None = None,
                    cache_dir: str | None = None) -> None:
  """Fails fast, before anything is compiled, if `load` would fail to find data.

  Opens the tfds metadata and the needed splits without reading records
  (well under a second once tfds is imported). Without tensorflow_datasets it
  looks for the cache file `load` would read instead, without reading it.

  Args:
    name: as for `load`.
    data_dir: as for `load`.
    cache_dir: as for `load`; used only when tensorflow_datasets is missing.

  Raises:
    DatasetError: with a message naming the fix.
  """
  _check_name(name)
  if name == "digits":
    return
  try:
    tfds_reader.import_tfds()
  except ImportError as e:
    cache.find_without_tfds(name, cache_dir, e)
    return
  tfds_reader.check(name, data_dir or default_data_dir())


def _check_name(name: str) -> None:
  if not isinstance(name, str) or not name:
    raise DatasetError(f"dataset name must be a non-empty string, got {name!r}")
