"""The uint8 ``.npz`` cache of tfds sets: its path, atomic write and validated read.

The first read of a tfds set is cached as an uncompressed ``.npz`` of uint8
images and int labels per raw split (``train``, ``test`` and ``validation`` if
the set has one), so later loads skip the (slow, PNG-decoding) tfds path. On a
machine without tensorflow_datasets a cache file copied from one that has it
stands in for the tfds set (`find_without_tfds`, `read_without_tfds`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import zipfile

import numpy as np

from gtnjax.data.dataset import DatasetError

# "gtnjax.data", the logger name these messages had before data.py was split.
_LOG = logging.getLogger(__package__)

# Bump when the cache layout changes so stale files are re-read, not misread.
FORMAT = 1
# What a damaged or foreign cache file raises when read.
_UNUSABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def default_cache_dir() -> str:
  """``$GTNJAX_CACHE_DIR`` if set, else ``~/.cache/gtnjax``."""
  return os.environ.get("GTNJAX_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "gtnjax"
  )


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
  return os.path.join(cache_dir, f"{_safe_name(name)}-{version}-{digest}.npz")


def _safe_name(name: str) -> str:
  return name.replace("/", "__").replace(":", "_")


def write(path: str, arrays: dict[str, np.ndarray]) -> None:
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


def read(path: str, splits: tuple[str, ...]) -> dict[str, np.ndarray] | None:
  """Reads a cache file; returns ``None`` (and removes it) if it is unusable.

  Unusable means unreadable (truncated or garbage), written by another cache
  format, missing a split, or with inconsistent arrays.
  """
  if not os.path.exists(path):
    return None
  try:
    return _read_checked(path, splits)
  except _UNUSABLE as e:
    _LOG.warning("removing unusable data cache %s (%s); re-reading from tfds", path, e)
    try:
      os.unlink(path)
    except OSError:
      pass
    return None


def _read_checked(path: str, splits: tuple[str, ...] | None) -> dict[str, np.ndarray]:
  """The arrays of a cache file, without ``format``; raises one of `_UNUSABLE`.

  ``splits=None`` checks the splits the file holds: ``train``, ``test`` and
  ``validation`` if present.
  """
  with np.load(path, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
  if int(arrays.pop("format", -1)) != FORMAT:
    raise ValueError("cache format mismatch")
  if splits is None:
    splits = ("train", "test") + (("validation",) if "validation_images" in arrays else ())
  for s in splits:
    im, lb = arrays[f"{s}_images"], arrays[f"{s}_labels"]
    if im.dtype != np.uint8 or im.ndim != 4 or lb.ndim != 1 or len(im) != len(lb):
      raise ValueError(f"inconsistent arrays for split {s!r}")
  return arrays


# ---------------------------------------------------------------------------
# Without tensorflow_datasets
# ---------------------------------------------------------------------------


def matching_files(name: str, cache_dir: str | None = None) -> list[str]:
  """Cache files in ``cache_dir`` written for the tfds set ``name``, newest first.

  Matches the names `cache_path` gives, ``{name}-{version}-{digest}.npz``, for
  any digest: it keys the tfds folder of the machine that wrote the file, which
  cannot be known here. If ``name`` is ``name:version`` only that version
  matches. A file that a ``name:version`` load wrote
  (``{name}_{version}-{version}-{digest}.npz``) matches too.

  Args:
    name: tfds name, optionally ``name:version``.
    cache_dir: cache root; defaults to `default_cache_dir`.

  Returns:
    Paths, newest modification time first.
  """
  cache_dir = cache_dir or default_cache_dir()
  base, _, want = name.partition(":")
  pattern = re.compile(re.escape(_safe_name(base)) + r"(?:_([^-]+))?-([^-]+)-[0-9a-f]{12}\.npz")
  try:
    files = os.listdir(cache_dir)
  except OSError:  # no cache folder yet
    return []
  found = []
  for f in files:
    m = pattern.fullmatch(f)
    # m[1] is the version a `name:version` load put into the name: it must be
    # the file's own, so that "mnist" never matches "mnist_extra-1.0.0-...".
    if m and m[1] in (None, m[2]) and want in ("", m[2]):
      found.append(os.path.join(cache_dir, f))
  return sorted(found, key=lambda p: (os.path.getmtime(p), p), reverse=True)


def find_without_tfds(name: str, cache_dir: str | None, error: ImportError) -> str:
  """The cache file that stands in for ``name`` when tfds cannot be imported.

  With several matches (say two copies of MNIST from two machines) the newest
  one wins; the log says which file and why.

  Args:
    name: tfds name, optionally ``name:version``.
    cache_dir: cache root; defaults to `default_cache_dir`.
    error: why ``import tensorflow_datasets`` failed, for the messages.

  Raises:
    DatasetError: no cache file for ``name``; the message names both fixes.
  """
  cache_dir = cache_dir or default_cache_dir()
  found = matching_files(name, cache_dir)
  if not found:
    base, _, want = name.partition(":")
    pattern = f"{_safe_name(base)}-{want or '<version>'}-<digest>.npz"
    raise DatasetError(
        f"tensorflow_datasets cannot be imported ({error}) and no cache file "
        f"{pattern} for dataset {name!r} is in {cache_dir}: install it with `pip "
        "install tensorflow-datasets array_record pillow importlib_resources`, or "
        f"copy {pattern} from the cache folder of a machine that has it (written "
        f"there by loading {name!r} once; $GTNJAX_CACHE_DIR, else ~/.cache/gtnjax) "
        "into this machine's cache folder (set GTNJAX_CACHE_DIR to choose it); "
        "'digits' needs neither"
    )
  if len(found) == 1:
    _LOG.info("tensorflow_datasets cannot be imported (%s); loading %s from the "
              "cache file %s", error, name, found[0])
  else:
    _LOG.info("tensorflow_datasets cannot be imported (%s); %d cache files match %s, "
              "loading the newest, %s (older: %s)", error, len(found), name, found[0],
              ", ".join(found[1:]))
  return found[0]


def read_without_tfds(path: str) -> tuple[dict[str, np.ndarray], int]:
  """Reads a cache file found by `find_without_tfds`.

  Without tfds the set's metadata is not at hand, so the class count is
  ``max(label) + 1`` over every split in the file (train, test and validation
  if present). That undercounts only if the highest classes are in no split,
  which no real image-classification set does.

  Returns:
    ``(arrays, num_classes)`` as `tfds_reader.read_splits` returns them.

  Raises:
    DatasetError: the file is unusable; it is kept, since it cannot be
      re-read from tfds here.
  """
  try:
    arrays = _read_checked(path, None)
  except _UNUSABLE as e:
    raise DatasetError(
        f"data cache {path} is unusable ({e}) and tensorflow_datasets cannot be "
        "imported to re-read the data: copy a good cache file over it, or install "
        "tensorflow-datasets"
    ) from e
  labels = [y for k, y in arrays.items() if k.endswith("_labels") and y.size]
  num_classes = int(max(y.max() for y in labels)) + 1 if labels else 0
  return arrays, num_classes
