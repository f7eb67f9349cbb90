"""Statistics every report uses: rank correlations and bootstrap intervals.

Rank correlations of a constant vector are undefined and come back as nan
rather than raising: a bootstrap resample can be constant by chance, and a
score that is the same for every item is a result to report, not an error.
NaN inputs do raise: a failed evaluation must be mapped to a worst score (or
dropped) by the caller, because silently ranking it is meaningless.
Intervals are percentile bootstraps over items; a paired bootstrap resamples
the same items for both sides, so their difference's interval accounts for
their correlation.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import stats as scipy_stats

Metric = Callable[[np.ndarray, np.ndarray], float]


def as_vectors(scores, truth) -> tuple[np.ndarray, np.ndarray]:
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
  scores, truth = as_vectors(scores, truth)
  if _constant(scores) or _constant(truth):
    return float("nan")
  return float(scipy_stats.spearmanr(scores, truth).statistic)


def kendall(scores, truth) -> float:
  """Kendall's tau-b (tie-corrected); nan if either side is constant."""
  scores, truth = as_vectors(scores, truth)
  if _constant(scores) or _constant(truth):
    return float("nan")
  return float(scipy_stats.kendalltau(scores, truth, variant="b").statistic)


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
  scores, truth = as_vectors(scores, truth)
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
  scores_a, truth = as_vectors(scores_a, truth)
  scores_b, _ = as_vectors(scores_b, truth)
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


def partial_spearman(scores, truth, control) -> float:
  """Spearman's rho of `scores` and `truth` with `control` partialled out:
  the Pearson correlation of their ranks' residuals after a least-squares line
  on the rank of `control` (e.g. a proxy's signal beyond parameter count)."""
  scores, truth = as_vectors(scores, truth)
  control, _ = as_vectors(control, truth)
  ranks = [scipy_stats.rankdata(v) for v in (scores, truth, control)]
  if any(_constant(r) for r in ranks):
    return float("nan")
  design = np.stack([np.ones_like(ranks[2]), ranks[2]], axis=1)
  residuals = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in ranks[:2]]
  if any(np.allclose(r, 0) for r in residuals):
    return float("nan")  # a side is a function of the control's rank alone
  return float(np.corrcoef(*residuals)[0, 1])
