"""`gtnjax nas`: ground truth, teacher, proxies, rankings and searches, resumably.

Stages, each of which resumes where it stopped (rerun the same command):
  1. ground truth  `ground_truth.run` fills the table (default
                   WORKDIR/ground_truth.csv; `ground_truth=` another, e.g. the
                   committed results/nas_fmnist/ground_truth.csv), or with
                   `train_ground_truth=False` uses only the rows it has;
  2. teacher       `gtnjax train` of `config.teacher` in WORKDIR/teacher;
  3. real lr       the real-data proxies' peak lr, chosen on validation for
                   the teacher's fixed learner (WORKDIR/real_proxy_lr.json);
  4. proxies       every proxy of every candidate, a row each in
                   WORKDIR/proxies.csv (the teacher-free ones computed once
                   per setting and shared by runs through a cache,
                   `teacher_free_cache_path`), then their costs timed on a
                   few candidates (WORKDIR/proxy_costs.json);
  5. analysis      rank metrics with bootstrap intervals, paired bootstraps
                   of gtn against every other proxy, the test-retest ceiling,
                   searches; WORKDIR/summary.json and
                   WORKDIR/proxies_vs_ground_truth.png.
The ground-truth score is validation accuracy of seed 0 (the test split
appears only in the reported accuracy of searched architectures).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import data, evaluation, preemption, report, train
from gtnjax.data import cache as data_cache
from gtnjax.nas import config as nas_config
from gtnjax.nas import ground_truth, metrics, network, proxies, search, space, training

PROXY_KEY_SALT = 0x9A5
REAL_LR_CHOICES = (0.02, 0.05, 0.1, 0.2)


def _write_json(path: str, value) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(value, f, indent=1)
  os.replace(tmp, path)


def proxy_key(index: int) -> jax.Array:
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
  _write_json(path, out)
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
# The code the teacher-free proxies run: an edit to any of it starts a new cache.
# This module is among them: its proxy keys, proxy batches and candidate specs.
_TEACHER_FREE_SOURCES = ("nas/pipeline.py", "nas/network.py", "nas/proxies.py",
                         "nas/training.py", "nas/space.py", "inner_loop.py", "layers.py",
                         "evaluation.py", "ops/conv.py", "ops/pool.py")  # in the package


def teacher_free_cache_path(config, dataset, real_lr) -> str:
  """The cache file of the teacher-free proxies for these settings: keyed by
  everything they depend on (data, network shape, steps, batches, lrs, keys,
  backend and the source of the code that computes them)."""
  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  source = hashlib.sha256()
  for name in _TEACHER_FREE_SOURCES:
    with open(os.path.join(package, *name.split("/")), "rb") as f:
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


def compute_proxies(config, rows, teacher_run, teacher_params, untrained_params, dataset,
                    real_lr, workdir, log) -> dict[int, dict[str, Any]]:
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
      enc = space.from_string(row["encoding"])
      spec, encoding = candidate_network(config, enc, dataset)
      key = proxy_key(row["index"])
      hit = cached.get((row["index"], row["encoding"]))
      if hit is not None:
        scores = dict(hit)
        to_train = tuple(p for p in proxies.TRAINING_PROXIES if p not in scores)
      else:
        batch_x, batch_y = _proxy_batch(config, key, train_x, train_y)
        scores = {k: float(v) for k, v in proxies.zero_cost_scores(
            spec, encoding, key, batch_x, batch_y).items()}
        to_train = proxies.TRAINING_PROXIES
      trained = proxies.training_scores(
          spec, encoding, teacher_run.teacher_spec, teacher_params, untrained_params, key, train_x,
          train_y, val_x, val_y, real_lr["real_same_steps"], real_lr["real_9x_steps"],
          proxies=to_train, gtn_steps=config.gtn_steps,
          long_steps=config.gtn_steps * config.long_proxy_factor,
          batch_size=config.teacher.inner_batch_size, gtn_scoring=gtn_scoring(config))
      scores.update({k: float(v) for k, v in trained.items()})
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
                      weight_norm=config.teacher.weight_norm)
  return spec, (jnp.asarray(enc, jnp.int32) if masked else None)


def _proxy_batch(config, key, train_x, train_y):
  idx = jax.random.choice(jax.random.fold_in(key, 1), train_x.shape[0],
                          (config.proxy_batch_size,), replace=False)
  return train_x[idx], train_y[idx]


def proxy_costs(config, rows, teacher_run, teacher_params, untrained_params, dataset, real_lr,
                workdir, log) -> dict[str, Any]:
  """Seconds per candidate of each proxy alone (median over `cost_candidates`
  candidates, each the median of 3 compiled runs), cached. A training proxy's
  `training_seconds` is its `seconds` less the validation scoring it ends
  with (the same work for all four, timed alone as `validation_scoring`)."""
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
        spec, encoding, teacher_run.teacher_spec, teacher_params, untrained_params, key,
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
  _write_json(path, out)
  return out


def analyse(config, rows, scores, costs, workdir, log) -> dict[str, Any]:
  rows = [r for r in rows if r["index"] in scores]
  truth = np.array([r["val_acc_seed0"] for r in rows])
  test = {r["index"]: r["test_acc_seed0"] for r in rows}
  names = [p for p in config.proxies]
  table = {p: np.array([scores[r["index"]][p] for r in rows]) for p in names}
  summary: dict[str, Any] = {
      "num_candidates": len(rows), "num_candidates_planned": config.num_candidates,
      "ground_truth_metric": "validation accuracy, seed 0",
      "ground_truth_steps": config.ground_truth_steps, "gtn_steps": config.gtn_steps,
      "real_9x_steps": config.gtn_steps * config.long_proxy_factor,
      "picked_sample_size": min(config.picked_sample_size, len(rows)), "proxies": {}}
  retest = [r for r in rows if r["val_acc_seed1"] is not None]
  if len(retest) >= 3:
    a = np.array([r["val_acc_seed0"] for r in retest])
    b = np.array([r["val_acc_seed1"] for r in retest])
    summary["test_retest"] = {
        "num_candidates": len(retest), "spearman": metrics.spearman(a, b),
        "spearman_interval": list(metrics.bootstrap_interval(
            metrics.spearman, a, b, num_resamples=config.bootstrap_resamples)),
        "kendall": metrics.kendall(a, b)}
  rng = np.random.default_rng(0)
  for p in names:
    report = metrics.rank_report(table[p], truth, num_resamples=config.bootstrap_resamples)
    picked = metrics.picked_accuracy(table[p], truth, sample_size=config.picked_sample_size,
                                     seed=0)
    cost = costs.get(p, {})
    entry = {**report, "picked_accuracy": picked["picked_accuracy"],
             "best_in_sample": picked["best_in_sample"],
             "proxy_seconds": cost.get("seconds"),
             "proxy_training_seconds": cost.get("training_seconds", cost.get("seconds")),
             "proxy_compile_seconds": cost.get("compile_seconds"),
             "learner_steps": cost.get("learner_steps")}
    if p != "gtn" and "gtn" in table:
      entry["gtn_minus_this_spearman"] = metrics.paired_bootstrap(
          metrics.spearman, table["gtn"], table[p], truth,
          num_resamples=config.bootstrap_resamples)
    summary["proxies"][p] = entry
  summary["search"] = _searches(config, rows, table, truth, test, rng)
  summary["costs"] = costs
  _write_json(os.path.join(workdir, "summary.json"), summary)
  _plot(table, truth, summary, os.path.join(workdir, "proxies_vs_ground_truth.png"))
  for p in names:
    e = summary["proxies"][p]
    log(f"{p:16s} spearman {e['spearman']:+.3f} [{e['spearman_interval'][0]:+.3f}, "
        f"{e['spearman_interval'][1]:+.3f}]  top-half {e['spearman_top_half']:+.3f}  "
        f"P@10% {e['precision_top10pct']:.2f}  picked {e['picked_accuracy']:.4f}")
  return summary


def _searches(config, rows, table, truth, test, rng) -> dict[str, Any]:
  """Random search and regularised evolution driven by each proxy, over the
  ground-truth table as the pool (a mutation moves to a random table member
  at the smallest Hamming distance from a one-edge mutation), then the top-k
  by proxy "trained on real data": their ground-truth rows."""
  encs = [space.from_string(r["encoding"]) for r in rows]
  by_enc = {e: i for i, e in enumerate(encs)}
  pool = np.array(encs)
  out = {}
  for p, scores in table.items():
    score_fn = lambda e, s=scores: float(s[by_enc[e]])
    sample_fn = lambda g: encs[int(g.integers(len(encs)))]

    def mutate_fn(e, g):
      target = np.array(space.mutate(e, g))
      dist = (pool != target).sum(1)
      dist[by_enc[e]] = 99  # move somewhere
      near = np.flatnonzero(dist == dist.min())
      return encs[int(g.choice(near))]

    budget = min(config.search_budget, len(encs))
    result = {}
    for name, history in (
        ("random", search.random_search(sample_fn, score_fn, num_candidates=budget,
                                        rng=np.random.default_rng(1))),
        ("evolution", search.regularized_evolution(
            sample_fn, mutate_fn, score_fn, num_candidates=budget,
            population_size=min(config.population_size, budget),
            tournament_size=min(config.tournament_size, config.population_size, budget),
            rng=np.random.default_rng(1)))):
      top = search.top_k(history, config.top_k)
      best = max(top, key=lambda e: truth[by_enc[e]])
      result[name] = {"top_k": [space.to_string(e) for e in top],
                      "top_k_validation": [float(truth[by_enc[e]]) for e in top],
                      "chosen": space.to_string(best),
                      "chosen_validation": float(truth[by_enc[best]]),
                      "chosen_test": float(test[rows[by_enc[best]]["index"]])}
    out[p] = result
  out["best_in_table_validation"] = float(truth.max())
  return out


def _plot(table, truth, summary, path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(table)
  cols = 4
  fig, axes = plt.subplots(-(-len(names) // cols), cols, figsize=(4 * cols, 3.2 * -(-len(names) // cols)))
  for ax, p in zip(np.ravel(axes), names):
    s = table[p]
    s = np.sign(s) * np.log10(1 + np.abs(s)) if p in ("synflow", "params", "flops", "snip",
                                                      "grad_norm") else s
    ax.scatter(s, truth, s=8, alpha=0.6)
    e = summary["proxies"][p]
    ax.set_title(f"{p}: rho {e['spearman']:+.2f}", fontsize=10)
    ax.set_xlabel("proxy score" + (" (signed log10)" if p in ("synflow", "params", "flops",
                                                              "snip", "grad_norm") else ""))
    ax.set_ylabel("ground-truth val. acc.")
  for ax in np.ravel(axes)[len(names):]:
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run(config, workdir: str, *, ground_truth_path: str | None = None,
        train_ground_truth: bool = True, progress: bool = True,
        log: Callable[[str], None] = print) -> dict[str, Any]:
  """Every stage of GTN-NAS in `workdir`; returns the summary."""
  nas_config.validate(config)
  os.makedirs(workdir, exist_ok=True)
  data.check_available(config.dataset)
  dataset = data.load(config.dataset)
  path = ground_truth_path or os.path.join(workdir, "ground_truth.csv")
  if train_ground_truth:
    rows = ground_truth.run(config, dataset, path, log=log)
  else:
    rows = ground_truth.read_table(path)
  if len(rows) < 2:
    raise nas_config.NasConfigError(
        f"{path} has {len(rows)} ground-truth rows; train them first "
        "(experiments/nas_ground_truth.py) or let gtnjax nas train them")
  teacher_dir = os.path.join(workdir, "teacher")
  if not os.path.exists(os.path.join(teacher_dir, "summary.json")):  # else finished
    result = report.train_and_evaluate(config.teacher, teacher_dir, progress=progress)
    if result.get("preempted"):
      raise preemption.Preempted(result["step"])
  teacher_run, teacher_params, _ = train.load_teacher(teacher_dir)
  untrained_params = teacher_run.teacher_spec.init(teacher_run.keys()[0])
  real_lr = choose_real_lr(config, teacher_run, dataset, workdir, log)
  scores = compute_proxies(config, rows, teacher_run, teacher_params, untrained_params,
                           dataset, real_lr, workdir, log)
  costs = proxy_costs(config, rows, teacher_run, teacher_params, untrained_params, dataset,
                      real_lr, workdir, log)
  summary = analyse(config, rows, scores, costs, workdir, log)
  summary["real_proxy_lr"] = real_lr
  with open(os.path.join(teacher_dir, "summary.json")) as f:
    summary["teacher"] = {k: v for k, v in json.load(f).items()
                          if k in ("gtn_test_accuracy", "real_data_test_accuracy", "learner")}
  _write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
