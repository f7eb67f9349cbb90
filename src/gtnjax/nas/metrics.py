"""How well a proxy ranks architectures against their ground-truth accuracy.

Scores are oriented so that higher predicts better (each proxy's sign is
fixed in `gtnjax.nas.proxies`). Intervals are percentile bootstraps over
candidates; a paired bootstrap resamples the same candidates for both
proxies, so their difference's interval accounts for their correlation.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import stats

Metric = Callable[[np.ndarray, np.ndarray], float]


def _arrays(scores, truth) -> tuple[np.ndarray, np.ndarray]:
  scores, truth = np.asarray(scores, float), np.asarray(truth, float)
  if scores.shape != truth.shape or scores.ndim != 1:
    raise ValueError(f"scores {scores.shape} and truth {truth.shape} must be equal-length vectors")
  if np.isnan(scores).any() or np.isnan(truth).any():
    raise ValueError("NaN in scores or ground truth: map failed proxies to a worst score first")
  return scores, truth


def spearman(scores, truth) -> float:
  """Spearman's rho (nan if either side is constant)."""
  scores, truth = _arrays(scores, truth)
  if np.ptp(scores) == 0 or np.ptp(truth) == 0:
    return float("nan")
  return float(stats.spearmanr(scores, truth).statistic)


def kendall(scores, truth) -> float:
  """Kendall's tau-b (nan if either side is constant)."""
  scores, truth = _arrays(scores, truth)
  if np.ptp(scores) == 0 or np.ptp(truth) == 0:
    return float("nan")
  return float(stats.kendalltau(scores, truth).statistic)


def top_half_mask(truth) -> np.ndarray:
  """Candidates at or above the median ground truth (the paper's "top half")."""
  truth = np.asarray(truth, float)
  return truth >= np.median(truth)


def _top(values: np.ndarray, k: int) -> set[int]:
  return set(np.argsort(-values, kind="stable")[:k].tolist())


def precision_at_top(scores, truth, fraction: float = 0.1) -> float:
  """Share of the true top `fraction` that the proxy's top `fraction` finds."""
  scores, truth = _arrays(scores, truth)
  k = max(1, int(round(fraction * len(truth))))
  return len(_top(scores, k) & _top(truth, k)) / k


def bootstrap_interval(metric_fn: Metric, scores, truth, *, num_resamples: int = 1000,
                       seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
  scores, truth = _arrays(scores, truth)
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_resamples):
    idx = rng.integers(0, len(truth), len(truth))
    v = metric_fn(scores[idx], truth[idx])
    if not np.isnan(v):
      values.append(v)
  if not values:
    return (float("nan"), float("nan"))
  alpha = (1 - confidence) / 2
  return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


def paired_bootstrap(metric_fn: Metric, scores_a, scores_b, truth, *,
                     num_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
  """metric(a) - metric(b): the full-data difference, its 95% interval over
  shared resamples, and the share of resamples where a is not better."""
  scores_a, truth = _arrays(scores_a, truth)
  scores_b, _ = _arrays(scores_b, truth)
  rng = np.random.default_rng(seed)
  diffs = []
  for _ in range(num_resamples):
    idx = rng.integers(0, len(truth), len(truth))
    d = metric_fn(scores_a[idx], truth[idx]) - metric_fn(scores_b[idx], truth[idx])
    if not np.isnan(d):
      diffs.append(d)
  full = metric_fn(scores_a, truth) - metric_fn(scores_b, truth)
  if not diffs:
    return {"difference": float(full), "interval": [float("nan")] * 2,
            "p_a_not_better": float("nan")}
  return {"difference": float(full),
          "interval": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
          "p_a_not_better": float(np.mean(np.asarray(diffs) <= 0))}


def picked_accuracy(scores, truth, *, sample_size: int = 100, num_trials: int = 1000,
                    seed: int = 0) -> dict[str, Any]:
  """A search by proxy over random samples of `sample_size` candidates: the
  mean ground truth of the proxy's pick against the best in each sample."""
  scores, truth = _arrays(scores, truth)
  size = min(sample_size, len(truth))
  rng = np.random.default_rng(seed)
  picked, best = [], []
  for _ in range(num_trials):
    idx = rng.choice(len(truth), size, replace=False)
    picked.append(truth[idx[np.argmax(scores[idx])]])
    best.append(truth[idx].max())
  return {"picked_accuracy": float(np.mean(picked)), "best_in_sample": float(np.mean(best)),
          "regret": float(np.mean(best) - np.mean(picked)), "num_trials": num_trials,
          "sample_size": size}


def rank_report(scores, truth, *, num_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
  """Every ranking metric of one proxy, JSON-ready."""
  scores, truth = _arrays(scores, truth)
  top = top_half_mask(truth)
  boot = dict(num_resamples=num_resamples, seed=seed)
  picked = picked_accuracy(scores, truth, seed=seed)
  return {
      "num_candidates": int(len(truth)),
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
