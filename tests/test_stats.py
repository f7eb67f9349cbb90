"""gtnjax.stats: partial Spearman against its closed form (the general
correlations and bootstraps are exercised in tests/test_nas_metrics.py)."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gtnjax import stats


def _closed_form(x, y, z):
  """First-order partial correlation of the ranks: (r_xy - r_xz r_yz) /
  sqrt((1 - r_xz^2)(1 - r_yz^2))."""
  rx, ry, rz = (scipy_stats.rankdata(v) for v in (x, y, z))
  r = np.corrcoef([rx, ry, rz])
  return (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partial_spearman_matches_the_closed_form(seed):
  rng = np.random.default_rng(seed)
  size = rng.normal(size=60)
  truth = size + rng.normal(size=60)
  scores = size + 0.5 * truth + rng.normal(size=60)
  assert stats.partial_spearman(scores, truth, size) == pytest.approx(
      _closed_form(scores, truth, size), abs=1e-10)


def test_partial_spearman_sees_no_signal_beyond_the_control():
  # A score that is a monotone function of the control alone carries nothing
  # beyond it, however well it correlates with the truth.
  rng = np.random.default_rng(0)
  size = rng.normal(size=80)
  truth = size + 0.3 * rng.normal(size=80)
  assert stats.spearman(np.exp(size), truth) > 0.8
  assert np.isnan(stats.partial_spearman(np.exp(size), truth, size))
  extra = rng.normal(size=80)
  assert stats.partial_spearman(size + extra, truth + 3 * extra, size) > 0.5


def test_partial_spearman_refuses_nan_and_unequal_lengths():
  with pytest.raises(ValueError, match="NaN"):
    stats.partial_spearman([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
  with pytest.raises(ValueError, match="equal-length"):
    stats.partial_spearman([1.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
