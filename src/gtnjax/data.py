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
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import time
import zipfile
from typing import Any

import numpy as np

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

_LOG = logging.getLogger(__name__)

# Bump when the cache layout changes so stale files are re-read, not misread.
_CACHE_FORMAT = 1
# Records per `__getitems__` call: big enough to amortise per-call overhead,
# small enough to keep the decoded-dict list from dominating peak memory.
_READ_CHUNK = 4096


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

_DIGITS_SIZES = (1197, 300, 300)


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


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def default_data_dir() -> str | None:
    """``$TFDS_DATA_DIR`` if set, else ``None`` (tfds picks its own default)."""
    return os.environ.get("TFDS_DATA_DIR") or None


def default_cache_dir() -> str:
    """``$GTNJAX_CACHE_DIR`` if set, else ``~/.cache/gtnjax``."""
    return os.environ.get("GTNJAX_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "gtnjax"
    )


def _known_names_text() -> str:
    return ", ".join(sorted(KNOWN_DATASETS))


# ---------------------------------------------------------------------------
# digits (embedded)
# ---------------------------------------------------------------------------


def _load_digits() -> Dataset:
    """scikit-learn digits, split 1197/300/300 by a fixed seed-0 permutation."""
    from sklearn.datasets import load_digits  # local: sklearn import is slow

    bunch = load_digits()
    # Pixel values are 0..16, so pixels/16 plays the role that pixels/255
    # plays for 8-bit images: it puts the data on the [0, 1] scale.
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]  # [1797, 8, 8, 1]
    labels = bunch.target.astype(np.int32)
    perm = np.random.default_rng(0).permutation(len(labels))
    n_train, n_val, n_test = _DIGITS_SIZES
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


# ---------------------------------------------------------------------------
# tfds
# ---------------------------------------------------------------------------


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - listed as a dependency
        raise DatasetError(
            f"tensorflow_datasets cannot be imported ({e}); install it with "
            "`pip install tensorflow-datasets array_record pillow importlib_resources`, "
            "or use the embedded data set 'digits'"
        ) from e
    return tfds


def _missing_message(name: str, where: str) -> str:
    return (
        f"dataset {name!r} not found under {where}: set TFDS_DATA_DIR (or pass "
        f"data_dir) to a folder holding {name}/<version>/ in array_record format, "
        f"or prepare it once with `tfds.data_source({name!r}, download=True)` / "
        f"`tfds build {name} --file_format=array_record` on a machine with "
        "internet; 'digits' needs no download"
    )


def _builder(name: str, data_dir: str | None):
    """The tfds builder for ``name``; unknown names raise `DatasetError`.

    Only reads local metadata: with no data on disk tfds falls back to the
    builder's code, and it never downloads here.
    """
    tfds = _tfds()
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        # tfds' own message lists every builder (hundreds of lines); ours is short.
        raise DatasetError(
            f"unknown dataset {name!r}: use one of {_known_names_text()}, or the "
            "name of another tfds image-classification builder (uint8 'image' "
            "and 'label' features)"
        ) from e


def _open_split(name: str, split: str, data_dir: str | None, builder):
    """Opens one split as a random-access tfds data source.

    Raises:
      DatasetError: the data set is not prepared under ``data_dir``, or it has
        no split ``split``.
    """
    tfds = _tfds()
    splits = dict(builder.info.splits) if builder.is_prepared() else {}
    if splits and split not in splits:
        raise DatasetError(
            f"dataset {name!r} has no {split!r} split (it has "
            f"{sorted(splits)}); gtnjax needs 'train' and 'test' splits: pick "
            "another data set or prepare one that has them"
        )
    try:
        # download=False: fail at once instead of trying the network.
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # tfds raises NotImplementedError, ValueError, ...
        where = data_dir or str(getattr(builder, "_data_dir_root", "the tfds default data dir"))
        if not builder.is_prepared():
            # tfds' own error for a missing set is a misleading "file format
            # TFRECORD is not supported"; name the real fix instead.
            raise DatasetError(_missing_message(name, where)) from e
        if "Unknown split" in str(e):
            raise DatasetError(
                f"dataset {name!r} has no {split!r} split: pick another data set "
                "or prepare one that has 'train' and 'test' splits"
            ) from e
        if isinstance(e, NotImplementedError):
            raise DatasetError(
                f"dataset {name!r} under {where} is not stored in a random-access "
                f"format ({e}); re-prepare it with `tfds build {name} "
                "--file_format=array_record`"
            ) from e
        raise DatasetError(f"cannot open {name!r} split {split!r} under {where}: {e}") from e


def _check_features(name: str, source) -> int:
    """Validates the ``image``/``label`` features; returns the class count."""
    features = source.dataset_info.features
    keys = set(features.keys())
    if not {"image", "label"} <= keys:
        raise DatasetError(
            f"dataset {name!r} has features {sorted(keys)}, but gtnjax needs an "
            "image-classification set with 'image' and 'label' features; pick "
            f"one of {_known_names_text()} or another such tfds set"
        )
    image = features["image"]
    shape = tuple(image.shape)
    if len(shape) != 3 or any(d is None for d in shape) or np.dtype(image.np_dtype) != np.uint8:
        raise DatasetError(
            f"dataset {name!r} has images of shape {shape} and dtype "
            f"{image.np_dtype}; gtnjax needs fixed-size uint8 HxWxC images: pick "
            "another data set"
        )
    num_classes = getattr(features["label"], "num_classes", None)
    if not num_classes:
        raise DatasetError(
            f"dataset {name!r} has a 'label' feature without a class count; "
            "gtnjax needs a ClassLabel feature: pick another data set"
        )
    return int(num_classes)


def _read_all(source) -> tuple[np.ndarray, np.ndarray]:
    """Reads every record of a data source.

    Returns:
      uint8 images ``[N, H, W, C]`` and int64 labels ``[N]``.
    """
    n = len(source)
    images: list[np.ndarray] = []
    labels: list[int] = []
    batched = True
    for start in range(0, n, _READ_CHUNK):
        keys = list(range(start, min(start + _READ_CHUNK, n)))
        if batched:
            try:
                # Batched reads are ~3x faster than one `source[i]` at a time
                # (MNIST train: ~4.5 s vs ~13 s): one array_record call per chunk.
                records = source.__getitems__(keys)
            except TypeError:
                # `tfds.testing.mock_data` (tfds 4.9.10) installs a broken
                # `__getitems__` (unbound partial: "missing 'record_keys'");
                # single-item access works, so use that from here on.
                batched = False
        if not batched:
            records = [source[i] for i in keys]
        images.extend(np.asarray(r["image"], dtype=np.uint8) for r in records)
        labels.extend(int(r["label"]) for r in records)
    if not images:
        return np.zeros((0, 0, 0, 0), np.uint8), np.zeros((0,), np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def cache_path(name: str, version_dir: str, cache_dir: str | None = None) -> str:
    """Path of the ``.npz`` cache for one tfds set.

    The key holds the name, the version and a hash of the absolute tfds version
    folder, so data from another folder (another copy, or mocked test data)
    never answers for this one.

    Args:
      name: tfds name, e.g. ``"mnist"``.
      version_dir: the builder's version folder, e.g. ``/data/mnist/3.0.1``.
      cache_dir: cache root; defaults to `default_cache_dir`.
    """
    cache_dir = cache_dir or default_cache_dir()
    version = os.path.basename(os.path.normpath(str(version_dir)))
    digest = hashlib.sha1(os.path.abspath(str(version_dir)).encode()).hexdigest()[:12]
    safe = name.replace("/", "__").replace(":", "_")
    return os.path.join(cache_dir, f"{safe}-{version}-{digest}.npz")


def _write_cache(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` to ``path`` atomically (tmp file + ``os.replace``).

    A process killed mid-write leaves at most a stray ``*.tmp`` file, never a
    truncated cache under the real name.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # Uncompressed: loading is I/O-bound and compression would cost more
            # than it saves on these sizes. A file object stops np.savez from
            # appending its own ".npz" suffix.
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; a cache is ordinary shared data.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_cache(path: str, splits: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Reads a cache file; returns ``None`` (and removes it) if it is unusable.

    Unusable means unreadable (truncated or garbage), written by another cache
    format, missing a split, or with inconsistent arrays.
    """
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if int(arrays.pop("format", -1)) != _CACHE_FORMAT:
            raise ValueError("cache format mismatch")
        for s in splits:
            im, lb = arrays[f"{s}_images"], arrays[f"{s}_labels"]
            if im.dtype != np.uint8 or im.ndim != 4 or lb.ndim != 1 or len(im) != len(lb):
                raise ValueError(f"inconsistent arrays for split {s!r}")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        _LOG.warning("removing unusable data cache %s (%s); re-reading from tfds", path, e)
        try:
            os.unlink(path)
        except OSError:
            pass
        return None


def _tfds_arrays(
    name: str, data_dir: str | None, cache_dir: str | None
) -> tuple[dict[str, np.ndarray], int]:
    """uint8 images and int labels per raw tfds split, via the cache.

    Returns:
      ``({"train_images": [N, H, W, C] uint8, "train_labels": [N], "test_...":
      ..., and "validation_..." if the set has that split}, num_classes)``.
    """
    builder = _builder(name, data_dir)
    train = _open_split(name, "train", data_dir, builder)
    num_classes = _check_features(name, train)
    info_splits = dict(builder.info.splits) if builder.is_prepared() else {}
    splits: tuple[str, ...] = ("train", "test")
    if "validation" in info_splits:
        splits += ("validation",)
    sources = {"train": train}
    for s in splits[1:]:
        sources[s] = _open_split(name, s, data_dir, builder)

    path = cache_path(name, str(train.dataset_info.data_dir), cache_dir)
    arrays = _read_cache(path, splits)
    if arrays is not None:
        _LOG.info("loaded %s from cache %s", name, path)
        return arrays, num_classes

    t0 = time.perf_counter()
    arrays = {"format": np.asarray(_CACHE_FORMAT)}
    for s, source in sources.items():
        arrays[f"{s}_images"], arrays[f"{s}_labels"] = _read_all(source)
        if len(arrays[f"{s}_labels"]) == 0:
            raise DatasetError(f"dataset {name!r} split {s!r} is empty; re-prepare it")
    _LOG.info("read %s from tfds in %.1f s; caching to %s", name, time.perf_counter() - t0, path)
    try:
        _write_cache(path, arrays)
    except OSError as e:
        # A read-only or full cache folder must not stop training.
        _LOG.warning("could not write data cache %s (%s); set GTNJAX_CACHE_DIR", path, e)
    arrays.pop("format")
    return arrays, num_classes


def _split_and_normalise(
    name: str, arrays: dict[str, np.ndarray], num_classes: int
) -> Dataset:
    """Applies the split rule and normalisation of ``name`` to raw arrays."""
    rule = KNOWN_DATASETS.get(name.split(":")[0], SplitRule())
    train_x, train_y = arrays["train_images"], arrays["train_labels"]
    if "validation_images" in arrays:
        val_x, val_y = arrays["validation_images"], arrays["validation_labels"]
    else:
        # Validation = the END of train, so the remaining train records keep
        # tfds order and the split is deterministic without a seed.
        n_val = int(round(len(train_y) * rule.validation_fraction))
        if n_val < 1 or n_val >= len(train_y):
            raise DatasetError(
                f"dataset {name!r} has {len(train_y)} train records, too few to "
                "hold out a validation split; pick a larger data set"
            )
        cut = len(train_y) - n_val
        train_x, val_x = train_x[:cut], train_x[cut:]
        train_y, val_y = train_y[:cut], train_y[cut:]

    channels = train_x.shape[-1]
    if rule.mean is not None and rule.std is not None:
        mean = np.asarray(rule.mean, np.float32)
        std = np.asarray(rule.std, np.float32)
        if mean.shape != (channels,):
            raise DatasetError(
                f"dataset {name!r} has {channels} channels but its normalisation "
                f"constants have {mean.shape[0]}; fix KNOWN_DATASETS[{name!r}]"
            )
    else:
        # Statistics from the training portion only, so validation/test stay
        # unseen. float64 accumulation: float32 sums drift on 10^8 pixels.
        scaled = train_x.reshape(-1, channels).astype(np.float64) / 255.0
        mean = scaled.mean(axis=0).astype(np.float32)
        std = np.maximum(scaled.std(axis=0), 1e-6).astype(np.float32)

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


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


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
        needed split or feature missing; the message names the fix.
    """
    if not isinstance(name, str) or not name:
        raise DatasetError(f"dataset name must be a non-empty string, got {name!r}")
    if name == "digits":
        return _load_digits()
    data_dir = data_dir or default_data_dir()
    arrays, num_classes = _tfds_arrays(name, data_dir, cache_dir)
    return _split_and_normalise(name, arrays, num_classes)


def check_available(name: str, *, data_dir: str | None = None) -> None:
    """Fails fast, before anything is compiled, if `load` would fail to find data.

    Opens the tfds metadata and the needed splits without reading records
    (well under a second once tfds is imported).

    Args:
      name: as for `load`.
      data_dir: as for `load`.

    Raises:
      DatasetError: with a message naming the fix.
    """
    if not isinstance(name, str) or not name:
        raise DatasetError(f"dataset name must be a non-empty string, got {name!r}")
    if name == "digits":
        return
    data_dir = data_dir or default_data_dir()
    builder = _builder(name, data_dir)
    train = _open_split(name, "train", data_dir, builder)
    _check_features(name, train)
    _open_split(name, "test", data_dir, builder)


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
