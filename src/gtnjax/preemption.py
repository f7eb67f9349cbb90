"""Stopping a run cleanly when the scheduler asks: SIGTERM becomes a flag
checked between meta-steps, agreed on by every process of a job.

A cluster scheduler (SLURM's `scancel --signal=TERM`, a time limit, a
preemptible VM) sends SIGTERM and waits a grace period. The loop finishes the
meta-step under way, every process stops at the same step (`any_process`),
one checkpoint is written, and rerunning the same command resumes from it.
"""

from __future__ import annotations

import signal

import jax
import numpy as np


class Preempted(Exception):
  """A SIGTERM (or stop_after) stopped a nested meta-training with a checkpoint."""

  def __init__(self, step: int):
    super().__init__(f"preempted at meta-step {step}")
    self.step = step


class PreemptionFlag:
  """Turns SIGTERM into a flag (`raised`) for the duration of a `with` block."""

  def __init__(self):
    self.raised = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      self._previous = None
    return self

  def _handle(self, signum, frame):
    self.raised = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def any_process(flag: bool) -> bool:
  """True if `flag` is set on any process, so that all stop at the same step.

  A collective: every process of a multi-process job must call it at the same
  point of the loop.
  """
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
