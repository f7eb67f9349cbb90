"""The run directory: the one module that knows a workdir's files.

A run owns one workdir:
  config.json     the config it was started with, "auto" implementations
                  resolved; its presence marks a started run, and resuming
                  checks the config given against it;
  learners.json   the definitions (fingerprints) of its user-given learners,
                  whose names alone do not say what ran;
  metrics.jsonl   one JSON object per logged meta-step;
  tensorboard/    event files of the same metrics;
  checkpoints/    Orbax checkpoints (`gtnjax.checkpointing`);
  summary.json    the evaluation after the last meta-step (`gtnjax.report`).

Every JSON file is written atomically (a temporary file, then `os.replace`),
so a kill leaves the old file or the new one, never half of one. In a
multi-process job only process 0 writes (the callers check
`jax.process_index()`); every process may read.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gtnjax import config as gconfig
from gtnjax.checkpointing import CheckpointError

CONFIG_FILE = "config.json"
LEARNERS_FILE = "learners.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
TENSORBOARD_DIR = "tensorboard"


def write_text(path: str, text: str) -> None:
  """Write `text` to `path` atomically, creating its folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
  """Write `value` as indented JSON to `path` atomically."""
  write_text(path, json.dumps(value, indent=1))


def read_json(path: str) -> Any | None:
  """The JSON in `path`, or None if it is absent or unreadable (a cache entry
  cut by a kill: the caller recomputes it)."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return None


# ----------------------------------------------------------------- metrics
def _metrics_lines(path: str, up_to_step: int | None) -> list[str]:
  if not os.path.exists(path):
    return []
  kept = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        break  # a line cut by a kill: nothing after it is trustworthy
      if up_to_step is None or record.get("step", 0) <= up_to_step:
        kept.append(line if line.endswith("\n") else line + "\n")
  return kept


def read_metrics(workdir_or_file: str, up_to_step: int | None = None) -> list[dict[str, Any]]:
  """The records of a run's metrics.jsonl (a workdir, or the file itself), in
  order, up to `up_to_step` if given; a line cut by a kill ends them."""
  path = workdir_or_file
  if os.path.isdir(path):
    path = os.path.join(path, METRICS_FILE)
  return [json.loads(line) for line in _metrics_lines(path, up_to_step)]


class MetricsLog:
  """metrics.jsonl and TensorBoard scalars, written by process 0 only.

  On a resume the lines after the restored checkpoint are dropped first (they
  were not checkpointed and will be written again); the ones up to it stay
  byte for byte.
  """

  def __init__(self, workdir: str, start_step: int, enabled: bool):
    self._enabled = enabled
    if not enabled:
      return
    path = os.path.join(workdir, METRICS_FILE)
    kept = _metrics_lines(path, start_step)
    with open(path, "w") as f:
      f.writelines(kept)
    from tensorboardX import SummaryWriter  # heavy import, only for training
    self._writer = SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR))
    self._file = open(path, "a")

  def write(self, step: int, values: dict[str, float], seconds: float) -> None:
    if not self._enabled:
      return
    self._file.write(json.dumps({"step": step, **values, "seconds": seconds}) + "\n")
    self._file.flush()
    for name, value in values.items():
      self._writer.add_scalar(f"meta/{name}", value, step)

  def close(self) -> None:
    if self._enabled:
      self._file.close()
      self._writer.close()


# ------------------------------------------------------------ config, learners
def _read_record(path: str) -> Any | None:
  """A workdir's own JSON record, None if absent; one that does not parse was
  changed by something else (gtnjax writes them atomically), so stop."""
  if not os.path.exists(path):
    return None  # a new workdir, or a run started before this record existed
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise gconfig.ConfigError(f"{path} is not valid JSON ({e}): it is written atomically, so "
                              "something else changed it; restore it or choose a new --workdir")


def check_config(workdir: str, config) -> None:
  """Refuse `config` for a workdir whose recorded run was started with another
  (any run-defining field differs), naming the fix."""
  saved = _read_record(os.path.join(workdir, CONFIG_FILE))
  if saved is None:
    return
  changed = [f for f in gconfig.RUN_DEFINING_FIELDS
             if f in saved and saved[f] != (list(config[f]) if isinstance(config[f], tuple)
                                            else config[f])]
  if changed:
    detail = ", ".join(f"{f}: {saved[f]!r} -> {config[f]!r}" for f in changed)
    raise gconfig.ConfigError(
        f"--workdir {workdir} holds a run with a different config ({detail}); resume it with "
        "its own config (see its config.json) or choose a new --workdir")


def _check_learners(workdir: str, fingerprints: dict[str, str]) -> None:
  """A user's learner (Flax) changed under an unchanged name is another run."""
  path = os.path.join(workdir, LEARNERS_FILE)
  saved = _read_record(path)
  if saved is None:
    return
  changed = sorted(n for n in set(saved) | set(fingerprints) if saved.get(n) != fingerprints.get(n))
  if changed:
    raise gconfig.ConfigError(
        f"--workdir {workdir} holds a run whose learner definition differs from the one "
        f"given now ({', '.join(changed)}; recorded in {path}); give the same module "
        "definition to resume it, or choose a new --workdir")


def start(workdir: str, config, learner_fingerprints: dict[str, str], *, write: bool) -> None:
  """Create the workdir, refuse a different run's, and (if `write`: process 0)
  record this config and the definitions of its user-given learners.

  conv_impl and pool_impl are recorded resolved ("gemm", not "auto"), so the
  record says what ran. They are not run-defining (the implementations agree
  to float rounding), so a resumed run started with "auto" accepts its own
  record, and one may resume on a backend with another default.
  """
  os.makedirs(workdir, exist_ok=True)
  check_config(workdir, config)
  _check_learners(workdir, learner_fingerprints)
  if write:  # config.json last: it marks a started run
    write_text(os.path.join(workdir, LEARNERS_FILE),
               json.dumps(learner_fingerprints, indent=1, sort_keys=True))
    write_text(os.path.join(workdir, CONFIG_FILE),
               gconfig.to_json(gconfig.with_resolved_impls(config)))


def load_config(workdir: str):
  """The config a workdir's run was started with.

  Raises:
    CheckpointError: no run there yet, naming the command that makes one.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise CheckpointError(
        f"{workdir} holds no run (no {CONFIG_FILE}): train one first with "
        f"`gtnjax train --config ... --workdir {workdir}`")
  with open(path) as f:
    return gconfig.from_json(f.read())


def write_summary(workdir: str, summary: dict[str, Any]) -> None:
  write_json(os.path.join(workdir, SUMMARY_FILE), summary)


def read_summary(workdir: str) -> dict[str, Any] | None:
  """A finished run's summary.json, or None before the run has ended."""
  return read_json(os.path.join(workdir, SUMMARY_FILE))
