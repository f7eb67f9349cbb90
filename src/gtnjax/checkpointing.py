"""Orbax checkpoints of the meta-training state, with recovery from bad ones.

Orbax writes each checkpoint into a temporary folder and renames it when
complete, so a killed process never leaves a half-written step behind; old
steps are deleted only after a newer one is committed. If the newest step
still fails to restore (a truncated or corrupted file), it is moved aside to
`<workdir>/corrupt_checkpoints/` (never deleted) and the previous one is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp

_LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet_unraisable_errors():
  """Silence the unraisable-exception reports of a failed restore's leftover I/O.

  When tensorstore fails to read a corrupt file, its pending callbacks hit a
  closed asyncio loop and report 'Event loop is closed' as unraisable
  exceptions (they cannot propagate to anyone); the failure itself is reported
  by the exception we catch. Only `sys.unraisablehook` is swapped, and only
  for the restore: an uncaught exception still reaches `sys.excepthook`.
  """
  previous = sys.unraisablehook
  sys.unraisablehook = lambda unraisable: None
  try:
    yield
  finally:
    sys.unraisablehook = previous


class CheckpointError(RuntimeError):
  """No usable checkpoint; the message says what to do."""


class Checkpointer:
  """Saves and restores one pytree per step under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.corrupt_directory = os.path.abspath(os.path.join(workdir, "corrupt_checkpoints"))
    self.manifest_directory = os.path.abspath(os.path.join(workdir, "checkpoint_manifests"))
    self._keep = keep
    self._manager = self._make_manager()

  def _make_manager(self) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(self.directory, options=options)

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    if step in self._manager.all_steps():
      return  # already saved (e.g. a final save right after a periodic one)
    self._manager.save(step, args=ocp.args.StandardSave(state))
    self._manager.wait_until_finished()
    if jax.process_index() == 0:
      self._write_manifest(step)

  # A manifest of every file's size and SHA-256, written once a step is
  # committed, lets a truncated or altered checkpoint be recognised before
  # Orbax tries (and noisily fails) to read it.
  def _manifest_path(self, step: int) -> str:
    return os.path.join(self.manifest_directory, f"{step}.json")

  def _file_digests(self, step: int) -> dict[str, list]:
    root = os.path.join(self.directory, str(step))
    digests = {}
    for folder, _, files in os.walk(root):
      for name in files:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
          digest = hashlib.sha256(f.read()).hexdigest()
        digests[os.path.relpath(path, root)] = [os.path.getsize(path), digest]
    return digests

  def _write_manifest(self, step: int) -> None:
    os.makedirs(self.manifest_directory, exist_ok=True)
    tmp = self._manifest_path(step) + ".tmp"
    with open(tmp, "w") as f:
      json.dump(self._file_digests(step), f)
    os.replace(tmp, self._manifest_path(step))
    kept = {f"{s}.json" for s in self._manager.all_steps()}
    for name in os.listdir(self.manifest_directory):
      if name.endswith(".json") and name not in kept:
        os.remove(os.path.join(self.manifest_directory, name))  # its step was rotated out

  def _damaged_files(self, step: int) -> list[str]:
    """Files of `step` that differ from its manifest ([] if intact or no manifest)."""
    try:
      with open(self._manifest_path(step)) as f:
        expected = json.load(f)
    except (OSError, ValueError):
      return []  # no (readable) manifest: let Orbax judge
    actual = self._file_digests(step)
    return sorted(name for name in set(expected) | set(actual)
                  if expected.get(name) != actual.get(name))

  def restore_latest(self, like: Any) -> tuple[int, Any] | None:
    """The newest restorable checkpoint as (step, state), or None if there is none.

    Args:
      like: a pytree with the state's structure, shapes and dtypes (e.g. the
        freshly initialised state); restored arrays take its shardings.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    for step in reversed(self.steps()):
      damaged = self._damaged_files(step)
      if damaged:
        problem = f"{len(damaged)} file(s) changed since saved, e.g. {damaged[0]}"
      else:
        try:
          with _quiet_unraisable_errors():
            state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
          return step, state
        except Exception as e:  # any failure to read means this step is unusable
          problem = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
      target = self._move_aside(step)
      _LOG.warning("checkpoint %d in %s cannot be restored (%s); moved it to %s and "
                   "trying the previous one", step, self.directory, problem, target)
      self._manager.close()
      self._manager = self._make_manager()
    if os.path.isdir(self.corrupt_directory) and os.listdir(self.corrupt_directory):
      raise CheckpointError(
          f"no checkpoint under {self.directory} could be restored (the unreadable ones are in "
          f"{self.corrupt_directory}); to start over, use a new --workdir")
    return None

  def _move_aside(self, step: int) -> str:
    """Move an unreadable step out of Orbax's folder (process 0 moves; all wait)."""
    target = os.path.join(self.corrupt_directory, f"{step}")
    suffix = 0
    while os.path.exists(target):
      suffix += 1
      target = os.path.join(self.corrupt_directory, f"{step}.{suffix}")
    if jax.process_index() == 0:
      os.makedirs(self.corrupt_directory, exist_ok=True)
      shutil.move(os.path.join(self.directory, str(step)), target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"gtnjax_move_aside_{step}")
    return target

  def close(self) -> None:
    self._manager.close()
