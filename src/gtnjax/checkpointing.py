"""Orbax checkpoints of the meta-training state, with recovery from bad ones.

Orbax writes each checkpoint into a temporary folder and renames it when
complete, so a killed process never leaves a half-written step behind; old
steps are deleted only after a newer one is committed. If the newest step
still fails to restore (a truncated or corrupted file), it is moved aside to
`<workdir>/corrupt_checkpoints/` (never deleted) and the previous one is used.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp

_LOG = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
  """No usable checkpoint; the message says what to do."""


class Checkpointer:
  """Saves and restores one pytree per step under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.corrupt_directory = os.path.abspath(os.path.join(workdir, "corrupt_checkpoints"))
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

  def restore_latest(self, like: Any) -> tuple[int, Any] | None:
    """The newest restorable checkpoint as (step, state), or None if there is none.

    Args:
      like: a pytree with the state's structure, shapes and dtypes (e.g. the
        freshly initialised state); restored arrays take its shardings.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    for step in reversed(self.steps()):
      try:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # any failure to read means this step is unusable
        target = self._move_aside(step)
        _LOG.warning("checkpoint %d in %s cannot be restored (%s: %s); moved it to %s and "
                     "trying the previous one", step, self.directory, type(e).__name__,
                     str(e).splitlines()[0][:200] if str(e) else "", target)
        self._manager = self._make_manager()
        continue
      return step, state
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
