"""How well a proxy ranks architectures against their ground-truth accuracy.

Scores are oriented so that higher predicts better (each proxy's sign is
fixed in `gtnjax.nas.proxies`). Intervals are percentile bootstraps over
candidates; a paired bootstrap resamples the same candidates for both
proxies, so their difference's interval accounts for their correlation.

Rank correlations of a constant vector are undefined and come back as nan
rather than raising: a bootstrap resample can be constant by chance, and a
proxy that scores every candidate alike is a result to report, not an error.
NaN inputs do raise: a failed proxy evaluation must be mapped to a worst
score (or dropped) by the caller, because silently ranking it is meaningless.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import stats

Metric = Callable[[np.ndarray, np.ndarray], float]


def _arrays(scores, truth) -> tuple[np.ndarray, np.ndarray]:
  """Both sides as float vectors of one length, without NaN."""
  scores, truth = np.asarray(scores, float), np.asarray(truth, float)
  if scores.shape != truth.shape or scores.ndim != 1:
    raise ValueError(f"scores {scores.shape} and truth {truth.shape} must be equal-length "
                     "vectors")
  if scores.size == 0:
    raise ValueError("no candidates: scores and truth are empty")
  for name, values in (("scores", scores), ("ground truth", truth)):
    bad = int(np.isnan(values).sum())
    if bad:
      raise ValueError(f"NaN in {name} ({bad} of {values.size}): map failed proxies to a "
                       "worst score, or drop those candidates, first")
  return scores, truth


def _constant(values: np.ndarray) -> bool:
  # Not np.ptp: ptp of all -inf is nan, and -inf is a legitimate worst score.
  return bool(np.all(values == values[0]))


def spearman(scores, truth) -> float:
  """Spearman's rho, average ranks for ties; nan if either side is constant."""
  scores, truth = _arrays(scores, truth)
  if _constant(scores) or _constant(truth):
    return float("nan")
  return float(stats.spearmanr(scores, truth).statistic)


def kendall(scores, truth) -> float:
  """Kendall's tau-b (tie-corrected); nan if either side is constant."""
  scores, truth = _arrays(scores, truth)
  if _constant(scores) or _constant(truth):
    return float("nan")
  return float(stats.kendalltau(scores, truth, variant="b").statistic)


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
  scores, truth = _arrays(scores, truth)
  if not 0 < fraction <= 1:
    raise ValueError(f"fraction {fraction} must be in (0, 1]")
  k = max(1, int(round(fraction * len(truth))))
  return len(_top(scores, k) & _top(truth, k)) / k


def _check_resampling(num_resamples: int, confidence: float = 0.95) -> None:
  if num_resamples < 1:
    raise ValueError(f"num_resamples {num_resamples} must be >= 1")
  if not 0 < confidence < 1:
    raise ValueError(f"confidence {confidence} must be in (0, 1), e.g. 0.95")


def _percentiles(values: list[float], confidence: float) -> tuple[float, float]:
  if not values:
    return (float("nan"), float("nan"))
  alpha = (1 - confidence) / 2
  return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


def bootstrap_interval(metric_fn: Metric, scores, truth, *, num_resamples: int = 1000,
                       seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
  """Percentile interval of `metric_fn(scores, truth)` over resamples of the
  candidates with replacement. Resamples where the metric is nan (a constant
  resample) are skipped; (nan, nan) if all of them are."""
  scores, truth = _arrays(scores, truth)
  _check_resampling(num_resamples, confidence)
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_resamples):
    idx = rng.integers(0, len(truth), len(truth))
    v = metric_fn(scores[idx], truth[idx])
    if not np.isnan(v):
      values.append(v)
  return _percentiles(values, confidence)


def paired_bootstrap(metric_fn: Metric, scores_a, scores_b, truth, *,
                     num_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
  """Is proxy a better than proxy b? `difference` is metric(a) - metric(b) on
  all candidates, `interval` its 95% percentile interval over resamples that
  share their candidate indices between a and b, and `p_a_not_better` the
  share of (non-nan) resamples where the difference is <= 0."""
  scores_a, truth = _arrays(scores_a, truth)
  scores_b, _ = _arrays(scores_b, truth)
  _check_resampling(num_resamples)
  rng = np.random.default_rng(seed)
  diffs = []
  for _ in range(num_resamples):
    idx = rng.integers(0, len(truth), len(truth))
    d = metric_fn(scores_a[idx], truth[idx]) - metric_fn(scores_b[idx], truth[idx])
    if not np.isnan(d):
      diffs.append(d)
  full = metric_fn(scores_a, truth) - metric_fn(scores_b, truth)
  return {"difference": float(full),
          "interval": list(_percentiles(diffs, 0.95)),
          "p_a_not_better": float(np.mean(np.asarray(diffs) <= 0)) if diffs else float("nan")}


def picked_accuracy(scores, truth, *, sample_size: int = 100, num_trials: int = 1000,
                    seed: int = 0) -> dict[str, Any]:
  """A search by proxy over random samples: draw `sample_size` candidates
  without replacement, take the one the proxy scores highest (the first in
  draw order on ties), and average over `num_trials` draws its ground truth
  (`picked_accuracy`), the best ground truth in the sample
  (`best_in_sample`) and their difference (`regret`, >= 0). With fewer than
  `sample_size` candidates every trial uses all of them: the returned
  `sample_size` is the size used and `used_all_candidates` says so."""
  scores, truth = _arrays(scores, truth)
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
  scores, truth = _arrays(scores, truth)
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
