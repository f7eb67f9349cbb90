"""How well a proxy ranks architectures against their ground-truth accuracy.

Scores are oriented so that higher predicts better (each proxy's sign is
fixed in `gtnjax.nas.proxies`). The correlations and bootstrap intervals are
the general ones of `gtnjax.stats`; this module adds what is particular to
ranking architectures (the top half, precision at the top, the accuracy a
search would pick) and the report that combines them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gtnjax.stats import (Metric, as_vectors, bootstrap_interval, kendall,  # noqa: F401
                          paired_bootstrap, partial_spearman, spearman)


def top_half_mask(truth) -> np.ndarray:
  """Candidates at or above the median ground truth: the paper's "top half"
  of architectures, on which it reports Spearman 0.5582 for GTN. Ties at the
  median are all kept, so the subset can be a little over half."""
  truth = np.asarray(truth, float)
  if truth.ndim != 1 or truth.size == 0 or np.isnan(truth).any():
    raise ValueError("truth must be a non-empty vector without NaN")
  return truth >= np.median(truth)


def _top(values: np.ndarray, k: int) -> set[int]:
  """Indices of the k largest values; ties go to the lower index (stable)."""
  return set(np.argsort(-values, kind="stable")[:k].tolist())


def precision_at_top(scores, truth, fraction: float = 0.1) -> float:
  """Share of the true top `fraction` that the proxy's top `fraction` finds:
  |top-k by score & top-k by truth| / k with k = max(1, round(fraction * n))."""
  scores, truth = as_vectors(scores, truth)
  if not 0 < fraction <= 1:
    raise ValueError(f"fraction {fraction} must be in (0, 1]")
  k = max(1, int(round(fraction * len(truth))))
  return len(_top(scores, k) & _top(truth, k)) / k


def picked_accuracy(scores, truth, *, sample_size: int = 100, num_trials: int = 1000,
                    seed: int = 0) -> dict[str, Any]:
  """A search by proxy over random samples: draw `sample_size` candidates
  without replacement, take the one the proxy scores highest (the first in
  draw order on ties), and average over `num_trials` draws its ground truth
  (`picked_accuracy`), the best ground truth in the sample
  (`best_in_sample`) and their difference (`regret`, >= 0). With fewer than
  `sample_size` candidates every trial uses all of them: the returned
  `sample_size` is the size used and `used_all_candidates` says so."""
  scores, truth = as_vectors(scores, truth)
  if sample_size < 1 or num_trials < 1:
    raise ValueError(f"sample_size ({sample_size}) and num_trials ({num_trials}) must be >= 1")
  size = min(sample_size, len(truth))
  rng = np.random.default_rng(seed)
  picked, best = np.empty(num_trials), np.empty(num_trials)
  for t in range(num_trials):
    idx = rng.choice(len(truth), size, replace=False)
    picked[t] = truth[idx[np.argmax(scores[idx])]]
    best[t] = truth[idx].max()
  return {"picked_accuracy": float(picked.mean()), "best_in_sample": float(best.mean()),
          "regret": float((best - picked).mean()), "num_trials": int(num_trials),
          "sample_size": int(size), "used_all_candidates": bool(size == len(truth))}


def rank_report(scores, truth, *, num_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
  """Every ranking metric of one proxy as plain Python numbers (JSON-ready;
  an undefined correlation is float nan). The top-half metrics and their
  interval use only the candidates in `top_half_mask(truth)`, resampled
  among themselves. `picked_accuracy` uses its default sample size."""
  scores, truth = as_vectors(scores, truth)
  top = top_half_mask(truth)
  boot = dict(num_resamples=num_resamples, seed=seed)
  picked = picked_accuracy(scores, truth, seed=seed)
  return {
      "num_candidates": int(len(truth)),
      "num_top_half": int(top.sum()),
      "spearman": spearman(scores, truth),
      "spearman_interval": list(bootstrap_interval(spearman, scores, truth, **boot)),
      "kendall": kendall(scores, truth),
      "kendall_interval": list(bootstrap_interval(kendall, scores, truth, **boot)),
      "spearman_top_half": spearman(scores[top], truth[top]),
      "spearman_top_half_interval": list(bootstrap_interval(spearman, scores[top], truth[top],
                                                            **boot)),
      "kendall_top_half": kendall(scores[top], truth[top]),
      "precision_top10pct": precision_at_top(scores, truth, 0.1),
      "picked_accuracy": picked["picked_accuracy"],
      "best_in_sample": picked["best_in_sample"],
  }
