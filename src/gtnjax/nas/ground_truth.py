"""The ground-truth table: every candidate trained on real data for the full budget.

The candidates are a fixed sample of the space (`candidates(config)`), so
the table is the same whichever machine or session fills it in. Each row is
appended (and flushed) as soon as its candidate is done, so an interrupted
run loses at most the candidates in flight and `run` resumes after the last
row. A row records what is needed to check or reproduce it: encoding,
canonical hash, parameters, FLOPs, validation and test accuracy per seed, the
budget, seconds, the code version and the device.
"""

from __future__ import annotations

import csv
import os
import subprocess
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax.nas import network, space, training

COLUMNS = ("index", "encoding", "hash", "params", "flops", "val_acc_seed0", "test_acc_seed0",
           "val_acc_seed1", "test_acc_seed1", "steps", "batch_size", "peak_lr", "channels",
           "cells_per_stage", "network_form", "seconds", "code_version", "device")
GROUND_TRUTH_KEY_SALT = 0x6A7


def candidates(config) -> list[space.Encoding]:
  """The table's candidates: distinct canonical hashes, none that ignores its input."""
  rng = np.random.default_rng(config.sample_seed)
  return space.unique_sample(rng, config.num_candidates, exclude_input_independent=True)


def training_cells(config, count: int, seed: int) -> list[space.Encoding]:
  """`count` cells none of which is a candidate (by canonical hash), drawn
  with their own seed: labelled cells a teacher may train on (the
  ranking-aware teacher's "cell:pool") while every candidate stays unseen."""
  taken = frozenset(space.canonical_hash(e) for e in candidates(config))
  return space.unique_sample(np.random.default_rng(seed), count,
                             exclude_input_independent=True, exclude_hashes=taken)


def candidate_key(index: int, seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(GROUND_TRUTH_KEY_SALT), index),
                            seed)


def read_table(path: str) -> list[dict[str, Any]]:
  """The rows written so far, typed (empty accuracy cells are None)."""
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    if reader.fieldnames is None:
      return []
    if tuple(reader.fieldnames) != COLUMNS:
      raise ValueError(f"{path} has columns {reader.fieldnames}, expected {COLUMNS}: it was "
                       "written by another version; move it aside to start a new table")
    rows = []
    for raw in reader:
      row: dict[str, Any] = dict(raw)
      for k in ("index", "params", "flops", "steps", "batch_size", "channels",
                "cells_per_stage"):
        row[k] = int(row[k])
      for k in ("val_acc_seed0", "test_acc_seed0", "val_acc_seed1", "test_acc_seed1",
                "peak_lr", "seconds"):
        row[k] = float(row[k]) if row[k] not in ("", None) else None
      rows.append(row)
  return rows


def code_version() -> str:
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, text=True,
                         capture_output=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here, text=True,
                           capture_output=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return rev + ("+dirty" if dirty else "")


def resolve_form(config) -> str:
  """"auto" is "masked": one compiled program for every candidate, each cell
  computing only its own operations when candidates run one after another
  (CPU) and every operation when they run side by side (accelerators)."""
  return "masked" if config.network_form == "auto" else config.network_form


def _check_compatible(rows, config, path):
  for row in rows[:1]:
    for field in ("steps", "batch_size", "channels", "cells_per_stage"):
      want = config.ground_truth_steps if field == "steps" else config[field]
      if row[field] != want:
        raise ValueError(f"{path} was made with {field}={row[field]}, the config says {want}; "
                         "use the config that made it or another --out")
  if rows and abs(rows[0]["peak_lr"] - config.peak_lr) > 1e-12:
    raise ValueError(f"{path} was made with peak_lr={rows[0]['peak_lr']}, the config says "
                     f"{config.peak_lr}")


def run(config, dataset, path: str, *, time_limit_s: float | None = None,
        log: Callable[[str], None] = print,
        cells: list[space.Encoding] | None = None) -> list[dict[str, Any]]:
  """Trains the candidates missing from the table at `path`, appending rows.

  Stops cleanly (between candidates) after `time_limit_s`; rerun to go on.
  `cells` replaces `candidates(config)` (e.g. `training_cells`).
  """
  rows = read_table(path)
  _check_compatible(rows, config, path)
  done = {row["index"] for row in rows}
  cells = candidates(config) if cells is None else cells
  todo = [(i, enc) for i, enc in enumerate(cells) if i not in done]
  form = resolve_form(config)
  device = f"{jax.default_backend()}:{jax.devices()[0].device_kind}x{jax.device_count()}"
  version = code_version()
  train_x, train_y = jnp.asarray(dataset.train_images), jnp.asarray(dataset.train_labels)
  eval_sets = ((jnp.asarray(dataset.validation_images), jnp.asarray(dataset.validation_labels)),
               (jnp.asarray(dataset.test_images), jnp.asarray(dataset.test_labels)))
  new_file = not os.path.exists(path) or os.path.getsize(path) == 0
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  start = time.time()
  log(f"ground truth: {len(rows)} rows in {path}, {len(todo)} to train ({form} networks)")

  chunk = 1 if form == "static" else max(1, config.population_chunk)
  with open(path, "a", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    if new_file:
      writer.writeheader()
    for at in range(0, len(todo), chunk):
      if time_limit_s is not None and time.time() - start > time_limit_s:
        log(f"time limit reached after {len(rows)} rows; rerun to continue")
        break
      group = todo[at:at + chunk]
      t0 = time.time()
      accuracies = _train_group(config, form, group, train_x, train_y, eval_sets,
                                dataset.image_shape, dataset.num_classes)
      seconds = (time.time() - t0) / len(group)
      for (index, enc), acc in zip(group, accuracies):
        static = network.make(enc, dataset.image_shape, dataset.num_classes,
                              channels=config.channels, cells_per_stage=config.cells_per_stage,
                              batch_norm=config.teacher.cell_batch_norm)
        row = {"index": index, "encoding": space.to_string(enc),
               "hash": space.canonical_hash(enc), "params": network.count_params(static),
               "flops": network.count_flops(static),
               "val_acc_seed0": acc[0][0], "test_acc_seed0": acc[0][1],
               "val_acc_seed1": acc[1][0] if len(acc) > 1 else None,
               "test_acc_seed1": acc[1][1] if len(acc) > 1 else None,
               "steps": config.ground_truth_steps, "batch_size": config.batch_size,
               "peak_lr": config.peak_lr, "channels": config.channels,
               "cells_per_stage": config.cells_per_stage, "network_form": form,
               "seconds": round(seconds, 2), "code_version": version, "device": device}
        writer.writerow(row)
        f.flush()
        rows.append(row)
        log(f"[{len(rows)}/{len(cells)}] #{index} {row['encoding']}: val "
            f"{acc[0][0]:.4f}" + (f" / {acc[1][0]:.4f}" if len(acc) > 1 else "")
            + f", {seconds:.1f} s")
  return rows


def _train_group(config, form, group, train_x, train_y, eval_sets, image_shape,
                 num_classes) -> list[list[tuple]]:
  """Per candidate, per seed: (validation, test) accuracy."""
  seeds_of = [2 if index < config.retest_candidates else 1 for index, _ in group]
  keys, encodings = [], []
  for (index, enc), n in zip(group, seeds_of):
    for seed in range(n):
      keys.append(candidate_key(index, seed))
      encodings.append(enc)
  # Static: one candidate per program (its seeds share the compilation).
  spec = network.make(group[0][1] if form == "static" else None, image_shape, num_classes,
                      channels=config.channels, cells_per_stage=config.cells_per_stage,
                      batch_norm=config.teacher.cell_batch_norm)
  result = training.train_and_score(
      spec, jnp.stack(keys), jnp.asarray(encodings, jnp.int32), train_x, train_y, eval_sets,
      num_steps=config.ground_truth_steps, batch_size=config.batch_size,
      peak_lr=config.peak_lr)
  result = np.asarray(result).tolist()
  out, i = [], 0
  for n in seeds_of:
    out.append([tuple(round(a, 6) for a in result[i + s]) for s in range(n)])
    i += n
  return out

