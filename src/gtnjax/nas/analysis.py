"""Stage 5 of `gtnjax nas`: how well each proxy ranks the ground truth.

Rank metrics with bootstrap intervals, paired bootstraps of the GTN proxy
against every other proxy, the ground truth's test-retest ceiling, random
search and regularised evolution driven by each proxy over the table, and
the proxies-vs-ground-truth figure.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from gtnjax import rundir
from gtnjax.nas import metrics, search, space


def analyse(config, rows, scores, costs, workdir: str,
            log: Callable[[str], None] = print) -> dict[str, Any]:
  """WORKDIR/summary.json and WORKDIR/proxies_vs_ground_truth.png for the
  candidates of `rows` (ground truth) that `scores` (index -> proxies) has;
  `costs` from `scoring.proxy_costs`. Returns the summary."""
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
  rundir.write_json(os.path.join(workdir, "summary.json"), summary)
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
