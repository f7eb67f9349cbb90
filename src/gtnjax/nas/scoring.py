"""Stages 3 and 4 of `gtnjax nas`: the real-data proxies' lr, then every
proxy of every candidate and the proxies' costs.

The teacher-free proxies (real data, zero-cost) are the same in every run
with the same candidates and proxy settings, so they are cached once per
setting (`teacher_free_cache_path`, keyed by the settings and the source of
every gtnjax module that computes them) and a run with a new teacher pays
only for its GTN proxies.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import hashlib
import importlib.util
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import data, rundir
from gtnjax.data import cache as data_cache
from gtnjax.nas import config as nas_config
from gtnjax.nas import ground_truth, network, proxies, space


@dataclasses.dataclass(frozen=True)
class ProxyContext:
  """What the proxies of every candidate share: the settings, the data, the
  teacher (trained and at its initialisation) and the real-data proxies' lr."""
  config: Any
  dataset: data.Dataset
  teacher_spec: Any
  teacher_params: Any
  untrained_params: Any
  real_lr: dict[str, float]


def source_files(module: str) -> list[str]:
  """The files of `module` and of every gtnjax module it imports, directly or
  not (read from the import statements, without importing anything): the
  code a cached result depends on, derived rather than listed by hand."""
  seen: dict[str, str] = {}
  todo = [module]
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
      continue
    seen[name] = spec.origin
    with open(spec.origin) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        todo += [a.name for a in node.names if a.name.startswith("gtnjax")]
      elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gtnjax"):
        todo.append(node.module)
        # `from gtnjax import evaluation`: the names may be modules too.
        todo += [f"{node.module}.{a.name}" for a in node.names
                 if importlib.util.find_spec(node.module).submodule_search_locations]
  return sorted(seen.values())


PROXY_KEY_SALT = 0x9A5
REAL_LR_CHOICES = (0.02, 0.05, 0.1, 0.2)


def proxy_key(index: int) -> jax.Array:
  """The key of every proxy of candidate `index` (initialisation, batches)."""
  return jax.random.fold_in(jax.random.key(PROXY_KEY_SALT), index)


def choose_real_lr(config, teacher_run, dataset, workdir, log) -> dict[str, float]:
  """Peak lr of each real-data proxy: the best mean validation accuracy of
  `real_lr_learner` (default: the teacher's fixed learner) over 3 seeds among
  REAL_LR_CHOICES (cached)."""
  path = os.path.join(workdir, "real_proxy_lr.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  spec = teacher_run.learner_spec(nas_config.real_lr_learner_of(config))
  batch = config.teacher.inner_batch_size
  train_x, train_y = jnp.asarray(dataset.train_images), jnp.asarray(dataset.train_labels)
  val_x, val_y = jnp.asarray(dataset.validation_images), jnp.asarray(dataset.validation_labels)
  out: dict[str, Any] = {"choices": list(REAL_LR_CHOICES)}
  for name, steps in (("real_same_steps", config.gtn_steps),
                      ("real_9x_steps", config.gtn_steps * config.long_proxy_factor)):
    fn = jax.jit(lambda lr, key, steps=steps: proxies.real_score(
        spec, key, train_x, train_y, val_x, val_y, num_steps=steps, batch_size=batch,
        peak_lr=lr))
    means = [float(np.mean([fn(lr, jax.random.fold_in(jax.random.key(7), s))
                            for s in range(3)])) for lr in REAL_LR_CHOICES]
    out[name] = REAL_LR_CHOICES[int(np.argmax(means))]
    out[name + "_validation"] = means
    log(f"real-data proxy {name} ({steps} steps): lr {out[name]} "
        f"(validation {dict(zip(REAL_LR_CHOICES, np.round(means, 4)))})")
  rundir.write_json(path, out)
  return out


PROXY_COLUMNS = ("index", "encoding", "hash") + nas_config.PROXIES + ("seconds",)


def _read_proxy_rows(path):
  if not os.path.exists(path):
    return {}
  with open(path, newline="") as f:
    return {int(r["index"]): {k: (float(v) if k not in ("encoding", "hash") else v)
                              for k, v in r.items()} for r in csv.DictReader(f)}


# Proxies that do not depend on the teacher: the same in every `gtnjax nas`
# run with the same candidates and proxy settings (a second teacher's run
# finds them all equal, bit for bit), so each is computed once and kept in a
# cache beside the data sets' (`teacher_free_cache_path`); a run with a new
# teacher then pays only for its GTN proxies.
TEACHER_FREE_PROXIES = ("real_same_steps", "real_9x_steps") + proxies.ZERO_COST_PROXIES


def teacher_free_cache_path(config, dataset, real_lr) -> str:
  """The cache file of the teacher-free proxies for these settings: keyed by
  everything they depend on (data, network shape, steps, batches, lrs, keys,
  backend and the source of the code that computes them)."""
  source = hashlib.sha256()
  for path in source_files(__name__):  # this module: keys, batches, candidate networks
    with open(path, "rb") as f:
      source.update(f.read())
  data_digest = hashlib.sha256()
  for array in (dataset.train_images, dataset.train_labels, dataset.validation_images,
                dataset.validation_labels):
    data_digest.update(np.ascontiguousarray(array[::97]).tobytes())
    data_digest.update(str(array.shape).encode())
  settings = {
      "dataset": config.dataset, "data": data_digest.hexdigest(),
      "channels": config.channels, "cells_per_stage": config.cells_per_stage,
      "weight_norm": bool(config.teacher.weight_norm), "gtn_steps": config.gtn_steps,
      "long_proxy_factor": config.long_proxy_factor,
      "batch_size": config.teacher.inner_batch_size,
      "proxy_batch_size": config.proxy_batch_size,
      "lr": [real_lr["real_same_steps"], real_lr["real_9x_steps"]],
      "key_salt": PROXY_KEY_SALT, "backend": jax.default_backend(),
      "jax": jax.__version__, "source": source.hexdigest()}
  if config.teacher.cell_batch_norm != "mean":  # added later: earlier caches keep their keys
    settings["cell_batch_norm"] = config.teacher.cell_batch_norm
  digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
  return os.path.join(data_cache.default_cache_dir(), "nas_proxies",
                      f"{config.dataset}-{digest}.csv")


def _read_teacher_free_cache(path) -> dict[tuple[int, str], dict[str, float]]:
  """{(index, encoding): teacher-free proxies}: a candidate's key is drawn from
  its index, so both identify its values. A row that does not parse (a run
  killed while writing it) is skipped: its candidate is scored again."""
  if not os.path.exists(path):
    return {}
  out = {}
  with open(path, newline="") as f:
    for r in csv.DictReader(f):
      try:
        out[(int(r["index"]), r["encoding"])] = {p: float(r[p]) for p in TEACHER_FREE_PROXIES}
      except (KeyError, ValueError, TypeError):
        continue
  return out


def compute_proxies(context: ProxyContext, rows, workdir: str,
                    log: Callable[[str], None] = print) -> dict[int, dict[str, Any]]:
  """Every proxy of every candidate of `rows` not yet in WORKDIR/proxies.csv,
  a row each (resumable); the teacher-free proxies from the shared cache
  where it has them. Returns {index: row} for all candidates done."""
  config, dataset, real_lr = context.config, context.dataset, context.real_lr
  path = os.path.join(workdir, "proxies.csv")
  done = _read_proxy_rows(path)
  todo = [r for r in rows if r["index"] not in done]
  cache_path = teacher_free_cache_path(config, dataset, real_lr)
  cached = _read_teacher_free_cache(cache_path) if config.cache_teacher_free_proxies else {}
  hits = sum((r["index"], r["encoding"]) in cached for r in todo)
  log(f"proxies: {len(done)} candidates done, {len(todo)} to score "
      f"({hits} with their teacher-free proxies cached in {cache_path})")
  train_x, train_y = jnp.asarray(dataset.train_images), jnp.asarray(dataset.train_labels)
  val_x, val_y = jnp.asarray(dataset.validation_images), jnp.asarray(dataset.validation_labels)
  new_file = not os.path.exists(path)
  if config.cache_teacher_free_proxies:
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
  new_cache = not os.path.exists(cache_path)
  with open(path, "a", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=PROXY_COLUMNS)
    if new_file:
      writer.writeheader()
    for n, row in enumerate(todo):
      t0 = time.time()
      hit = cached.get((row["index"], row["encoding"]))
      spec, scores = _score_candidate(context, row, hit, train_x, train_y, val_x, val_y)
      if config.cache_teacher_free_proxies and hit is None:
        _append_teacher_free(cache_path, new_cache, row, scores)
        new_cache = False
      scores["params"] = float(row["params"])
      scores["flops"] = float(row["flops"])
      out = {"index": row["index"], "encoding": row["encoding"], "hash": row["hash"],
             **scores, "seconds": round(time.time() - t0, 2)}
      writer.writerow(out)
      f.flush()
      done[row["index"]] = out
      if not spec.masked:
        # Every static candidate compiles new programs; dropping them keeps
        # memory flat (without this 24 GiB ran out after ~22 candidates).
        jax.clear_caches()
      log(f"[{n + 1}/{len(todo)}] #{row['index']} gtn {scores['gtn']:.3f} real "
          f"{scores['real_same_steps']:.3f}/{scores['real_9x_steps']:.3f} "
          f"({out['seconds']:.1f} s" + (" with compilation" if n == 0 or not spec.masked else "")
          + (", teacher-free proxies cached)" if hit is not None else ")"))
  return done


def _score_candidate(context: ProxyContext, row, hit, train_x, train_y, val_x, val_y):
  """(the network it ran, {proxy: score}) of one candidate: the teacher-free
  proxies from `hit` (its cache row) where there is one."""
  config, real_lr = context.config, context.real_lr
  spec, encoding = candidate_network(config, space.from_string(row["encoding"]),
                                     context.dataset)
  key = proxy_key(row["index"])
  if hit is not None:
    scores = dict(hit)
    to_train = tuple(p for p in proxies.TRAINING_PROXIES if p not in scores)
  else:
    batch_x, batch_y = _proxy_batch(config, key, train_x, train_y)
    scores = {k: float(v) for k, v in proxies.zero_cost_scores(
        spec, encoding, key, batch_x, batch_y).items()}
    to_train = proxies.TRAINING_PROXIES
  trained = proxies.training_scores(
      spec, encoding, context.teacher_spec, context.teacher_params,
      context.untrained_params, key, train_x, train_y, val_x, val_y,
      real_lr["real_same_steps"], real_lr["real_9x_steps"],
      proxies=to_train, gtn_steps=config.gtn_steps,
      long_steps=config.gtn_steps * config.long_proxy_factor,
      batch_size=config.teacher.inner_batch_size, gtn_scoring=gtn_scoring(config))
  scores.update({k: float(v) for k, v in trained.items()})
  return spec, scores


def _append_teacher_free(path, new_file, row, scores) -> None:
  cut_short = False  # the last row of a run killed while writing it
  if not new_file and os.path.getsize(path) > 0:
    with open(path, "rb") as f:
      f.seek(-1, os.SEEK_END)
      cut_short = f.read(1) != b"\n"
  with open(path, "a", newline="") as f:
    if cut_short:
      f.write("\n")
    writer = csv.DictWriter(f, fieldnames=("index", "encoding") + TEACHER_FREE_PROXIES)
    if new_file:
      writer.writeheader()
    writer.writerow({"index": row["index"], "encoding": row["encoding"],
                     **{p: repr(scores[p]) for p in TEACHER_FREE_PROXIES}})


def gtn_scoring(config) -> proxies.GtnScoring:
  """The GTN proxy's scoring choices of a NAS config (`nas.config` fields)."""
  return proxies.GtnScoring(score=config.gtn_score, batch_stats=config.gtn_batch_stats,
                            seeds=config.gtn_seeds, lr_scales=nas_config.lr_scales_of(config))


def candidate_network(config, enc, dataset) -> tuple[network.CellNetworkSpec, Any]:
  """(network, encoding argument) a candidate's proxies are computed with:
  the masked network and the cell as an array (`network_form` auto or
  masked: one compilation for every candidate), or the cell's own static
  network and None (one compilation per architecture)."""
  masked = ground_truth.resolve_form(config) == "masked"
  spec = network.make(None if masked else enc, dataset.image_shape, dataset.num_classes,
                      channels=config.channels, cells_per_stage=config.cells_per_stage,
                      weight_norm=config.teacher.weight_norm,
                      batch_norm=config.teacher.cell_batch_norm)
  return spec, (jnp.asarray(enc, jnp.int32) if masked else None)


def _proxy_batch(config, key, train_x, train_y):
  idx = jax.random.choice(jax.random.fold_in(key, 1), train_x.shape[0],
                          (config.proxy_batch_size,), replace=False)
  return train_x[idx], train_y[idx]


def proxy_costs(context: ProxyContext, rows, workdir: str,
                log: Callable[[str], None] = print) -> dict[str, Any]:
  """Seconds per candidate of each proxy alone (median over `cost_candidates`
  candidates, each the median of 3 compiled runs), cached. A training proxy's
  `training_seconds` is its `seconds` less the validation scoring it ends
  with (the same work for all four, timed alone as `validation_scoring`)."""
  config, dataset, real_lr = context.config, context.dataset, context.real_lr
  path = os.path.join(workdir, "proxy_costs.json")
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if proxies.VALIDATION_SCORING in cached:
      return cached
    log("proxy costs: the cached table predates the scoring split; timing again")
  train_x, train_y = jnp.asarray(dataset.train_images), jnp.asarray(dataset.train_labels)
  val_x, val_y = jnp.asarray(dataset.validation_images), jnp.asarray(dataset.validation_labels)
  per: dict[str, list] = {}
  for row in rows[:config.cost_candidates]:
    spec, encoding = candidate_network(config, space.from_string(row["encoding"]), dataset)
    key = proxy_key(row["index"])
    x, y = _proxy_batch(config, key, train_x, train_y)
    timed = proxies.time_proxies(
        spec, encoding, context.teacher_spec, context.teacher_params,
        context.untrained_params, key,
        (train_x, train_y, val_x, val_y), x, y, lr_same=real_lr["real_same_steps"],
        lr_long=real_lr["real_9x_steps"], gtn_steps=config.gtn_steps,
        long_steps=config.gtn_steps * config.long_proxy_factor,
        batch_size=config.teacher.inner_batch_size, gtn_scoring=gtn_scoring(config))
    for name, t in timed.items():
      per.setdefault(name, []).append(t)
    jax.clear_caches()
  steps = {"gtn": config.gtn_steps, "gtn_untrained": config.gtn_steps,
           "real_same_steps": config.gtn_steps,
           "real_9x_steps": config.gtn_steps * config.long_proxy_factor}
  out = {name: {"seconds": float(np.median([t["seconds"] for t in ts])),
                "compile_seconds": float(np.median([t["compile_seconds"] for t in ts])),
                "learner_steps": steps.get(name, 0)}
         for name, ts in per.items()}
  scoring = out[proxies.VALIDATION_SCORING]["seconds"]
  for name in proxies.TRAINING_PROXIES:
    out[name]["training_seconds"] = out[name]["seconds"] - scoring
  for name in proxies.COUNT_PROXIES:
    out[name] = {"seconds": 0.0, "compile_seconds": 0.0, "learner_steps": 0}
  gt_seconds = [r["seconds"] for r in rows if r["val_acc_seed1"] is None]
  out["ground_truth"] = {"seconds": float(np.median(gt_seconds)) if gt_seconds else None,
                         "learner_steps": config.ground_truth_steps,
                         "note": "median wall seconds per one-seed row, compilation included"}
  out["machine"] = f"{jax.default_backend()}:{jax.devices()[0].device_kind}"
  log("proxy costs: " + ", ".join(f"{k} {v['seconds']:.3g} s" for k, v in out.items()
                                  if isinstance(v, dict) and v.get("seconds") is not None))
  rundir.write_json(path, out)
  return out
