"""gtnjax.nas.metrics and gtnjax.nas.search on hand-computable cases.

Pure numpy/scipy and toy search problems, no JAX: the whole file runs in a
few seconds. Expected values are worked out by hand in the comments, not
recomputed with the function under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gtnjax.nas import metrics, search


# ------------------------------------------------------------------ correlations
def test_perfect_and_reversed_rankings_give_plus_and_minus_one():
  truth = np.array([0.3, 0.9, 0.1, 0.5, 0.7])
  for fn in (metrics.spearman, metrics.kendall):
    assert fn(truth, truth) == pytest.approx(1.0)
    assert fn(-truth, truth) == pytest.approx(-1.0)
    assert fn(np.exp(truth), truth) == pytest.approx(1.0)  # only the order matters


def test_correlations_match_hand_values():
  # Spearman: rank differences (1, 1, 1, 1, 0), 1 - 6 * 4 / (5 * 24) = 0.8.
  assert metrics.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
  # Kendall: 2 of the 10 pairs, (1,2) and (3,4), are discordant: (8 - 2) / 10.
  assert metrics.kendall([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.6)
  # tau-b with a tie in the scores: 2 concordant, 0 discordant, one pair tied
  # in x only: 2 / sqrt((3 - 1) * (3 - 0)). tau-a would give 2 / 3.
  assert metrics.kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_constant_input_is_nan_and_nan_input_raises():
  assert math.isnan(metrics.spearman([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
  assert math.isnan(metrics.kendall([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
  assert math.isnan(metrics.spearman([-np.inf] * 3, [1.0, 2.0, 3.0]))
  # -inf is a legitimate worst score, not an error.
  assert metrics.spearman([-np.inf, 0.0, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="NaN in scores"):
    metrics.spearman([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match="NaN in ground truth"):
    metrics.kendall([1.0, 2.0, 3.0], [1.0, np.nan, 3.0])
  with pytest.raises(ValueError, match="equal-length"):
    metrics.spearman([1.0, 2.0], [1.0, 2.0, 3.0])


# ------------------------------------------------------------ top half, top-k
def test_top_half_is_at_or_above_the_median():
  # median 3
  assert metrics.top_half_mask([5, 1, 4, 2, 3]).tolist() == [True, False, True, False, True]
  # median 2; every tie at the median is kept
  assert metrics.top_half_mask([1, 2, 2, 2]).tolist() == [False, True, True, True]


def test_precision_at_top_on_a_constructed_case():
  truth = np.arange(10.0)            # true top 3: {9, 8, 7}
  scores = truth.copy()
  scores[[7, 0]] = scores[[0, 7]]    # proxy's top 3: {9, 8, 0}
  assert metrics.precision_at_top(scores, truth, fraction=0.3) == pytest.approx(2 / 3)
  assert metrics.precision_at_top(truth, truth, fraction=0.3) == 1.0
  assert metrics.precision_at_top(-truth, truth, fraction=0.3) == 0.0
  # k = max(1, round(0.01 * 10)) = 1: only the single best counts.
  assert metrics.precision_at_top(scores, truth, fraction=0.01) == 1.0
  # Ties go to the lower index: a constant proxy "picks" 0, 1, 2.
  assert metrics.precision_at_top(np.zeros(10), truth[::-1], fraction=0.3) == 1.0
  assert metrics.precision_at_top(np.zeros(10), truth, fraction=0.3) == 0.0
  with pytest.raises(ValueError, match="fraction"):
    metrics.precision_at_top(scores, truth, fraction=0.0)


# ------------------------------------------------------------------ bootstraps
def _noisy_monotone(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  truth = rng.uniform(size=n)
  return truth + 0.2 * rng.normal(size=n), truth


def test_bootstrap_interval_contains_estimate_and_narrows_with_more_data():
  widths = []
  for n in (30, 300):
    scores, truth = _noisy_monotone(n)
    point = metrics.spearman(scores, truth)
    lo, hi = metrics.bootstrap_interval(metrics.spearman, scores, truth, num_resamples=200)
    assert lo < point < hi
    widths.append(hi - lo)
  assert widths[1] < widths[0] / 2  # ~1/sqrt(10) in theory
  scores, truth = _noisy_monotone(30)
  again = metrics.bootstrap_interval(metrics.spearman, scores, truth, num_resamples=200)
  assert again == metrics.bootstrap_interval(metrics.spearman, scores, truth,
                                             num_resamples=200)  # seeded
  narrow = metrics.bootstrap_interval(metrics.spearman, scores, truth, num_resamples=200,
                                      confidence=0.5)
  assert again[0] < narrow[0] < narrow[1] < again[1]
  with pytest.raises(ValueError, match="confidence"):
    metrics.bootstrap_interval(metrics.spearman, scores, truth, confidence=95)


def test_paired_bootstrap_prefers_a_perfect_proxy_to_a_random_one():
  truth = np.random.default_rng(1).uniform(size=60)
  noise = np.random.default_rng(2).normal(size=60)
  paired = metrics.paired_bootstrap(metrics.spearman, truth, noise, truth, num_resamples=200)
  assert paired["difference"] == pytest.approx(1 - metrics.spearman(noise, truth))
  assert 0 < paired["interval"][0] <= paired["difference"] <= paired["interval"][1]
  assert paired["p_a_not_better"] == 0.0
  # The same proxy on both sides: every shared resample differs by exactly 0.
  same = metrics.paired_bootstrap(metrics.spearman, noise, noise, truth, num_resamples=50)
  assert same["difference"] == 0.0 and same["interval"] == [0.0, 0.0]
  assert same["p_a_not_better"] == 1.0


# ----------------------------------------------------------- picked accuracy
def test_picked_accuracy_of_perfect_and_reversed_proxies():
  truth = np.random.default_rng(3).uniform(size=200)
  perfect = metrics.picked_accuracy(truth, truth, sample_size=20, num_trials=100)
  assert perfect["picked_accuracy"] == pytest.approx(perfect["best_in_sample"])
  assert perfect["regret"] == pytest.approx(0.0)
  assert perfect["num_trials"] == 100 and perfect["sample_size"] == 20
  assert not perfect["used_all_candidates"]
  reversed_ = metrics.picked_accuracy(-truth, truth, sample_size=20, num_trials=100)
  assert reversed_["best_in_sample"] == pytest.approx(perfect["best_in_sample"])  # same draws
  assert reversed_["picked_accuracy"] < perfect["picked_accuracy"] - 0.5
  assert reversed_["regret"] > 0.5


def test_picked_accuracy_with_fewer_candidates_than_the_sample_uses_all():
  truth = np.array([0.2, 0.9, 0.5, 0.1])
  scores = np.array([3.0, 1.0, 4.0, 2.0])  # the proxy's pick is candidate 2
  out = metrics.picked_accuracy(scores, truth, sample_size=100, num_trials=5)
  assert out["sample_size"] == 4 and out["used_all_candidates"]
  assert out["picked_accuracy"] == pytest.approx(0.5)
  assert out["best_in_sample"] == pytest.approx(0.9)
  assert out["regret"] == pytest.approx(0.4)


def test_rank_report_is_json_ready_and_uses_the_top_half():
  truth = np.arange(20.0)
  scores = truth.copy()
  scores[:10] = scores[:10][::-1]  # right across halves, reversed within the bottom half
  report = metrics.rank_report(scores, truth, num_resamples=50)
  json.dumps(report, allow_nan=False)
  assert report["num_candidates"] == 20 and report["num_top_half"] == 10
  assert report["spearman_top_half"] == pytest.approx(1.0)
  assert report["kendall_top_half"] == pytest.approx(1.0)
  assert report["spearman_top_half_interval"] == pytest.approx([1.0, 1.0])
  assert report["spearman"] < 1.0
  lo, hi = report["kendall_interval"]
  assert lo <= report["kendall"] <= hi
  assert report["precision_top10pct"] == 1.0
  assert report["picked_accuracy"] == report["best_in_sample"] == 19.0  # all 20, every trial
  assert set(report) >= {"spearman", "spearman_interval", "kendall", "kendall_interval",
                         "spearman_top_half", "spearman_top_half_interval",
                         "kendall_top_half", "precision_top10pct", "picked_accuracy",
                         "best_in_sample", "num_candidates"}


# --------------------------------------------------------------------- search
def _count_ones(e: tuple[int, ...]) -> float:
  return float(sum(v == 1 for v in e))


def _sample6(rng: np.random.Generator) -> tuple[int, ...]:
  return tuple(int(v) for v in rng.integers(0, 5, 6))


def _mutate6(e: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
  i = int(rng.integers(6))
  new = (e[i] + int(rng.integers(1, 5))) % 5  # always a different value
  return e[:i] + (new,) + e[i + 1:]


def test_random_search_finds_the_argmax_of_a_small_space_and_caches():
  space_ = [(i, i % 3) for i in range(8)]
  truth = {e: float((e[0] * 5) % 8) for e in space_}  # unique argmax at (3, 0): 15 % 8 = 7
  calls: list = []

  def score(e):
    calls.append(e)
    return truth[e]

  history = search.random_search(lambda g: space_[int(g.integers(8))], score,
                                 num_candidates=200, rng=np.random.default_rng(0))
  assert len(history) == 200
  assert history[0] == ((3, 0), 7.0)
  assert [s for _, s in history] == sorted((s for _, s in history), reverse=True)
  assert sorted(calls) == sorted(set(calls)) and len(calls) <= 8  # each scored once
  assert search.top_k(history, 2) == [(3, 0), (6, 0)]               # 30 % 8 = 6


def test_regularized_evolution_beats_random_and_counts_evaluations():
  calls, samples, mutations = [], [], []

  def score(e):
    calls.append(e)
    return _count_ones(e)

  def sample(g):
    samples.append(1)
    return _sample6(g)

  def mutate(e, g):
    mutations.append(1)
    return _mutate6(e, g)

  history = search.regularized_evolution(sample, mutate, score, num_candidates=150,
                                         population_size=20, tournament_size=5,
                                         rng=np.random.default_rng(0))
  # Exactly num_candidates evaluations: 20 initial samples and 130 children;
  # score_fn itself runs once per distinct encoding thanks to the cache.
  assert len(history) == 150 and len(samples) == 20 and len(mutations) == 130
  assert len(calls) == len(set(calls)) == len({e for e, _ in history}) <= 150
  # Ones per random encoding ~ Binomial(6, 0.2): median 1, P(>= 4) ~ 1.7%.
  rng = np.random.default_rng(1)
  random_median = np.median([_count_ones(_sample6(rng)) for _ in range(1000)])
  assert random_median == 1.0
  assert history[0][1] >= 4
  assert len(search.top_k(history, 3)) == 3


def test_regularized_evolution_removes_the_oldest_not_the_worst():
  """One excellent initial member: aging drops it after one generation, so it
  parents exactly one child; a remove-the-worst scheme would keep using it."""
  parents, counter = [], iter(range(1000))

  def mutate(e, g):
    parents.append(e)
    return ("child", next(counter))

  init = iter([("init", 0), ("init", 1), ("init", 2)])
  score = lambda e: 100.0 if e == ("init", 0) else (1.0 if e[0] == "child" else 0.0)
  history = search.regularized_evolution(lambda g: next(init), mutate, score,
                                         num_candidates=10, population_size=3,
                                         tournament_size=3, rng=np.random.default_rng(0))
  assert parents.count(("init", 0)) == 1 and parents[0] == ("init", 0)
  assert history[0] == (("init", 0), 100.0) and len(history) == 10


def test_search_argument_validation():
  rng = np.random.default_rng(0)
  kw = dict(num_candidates=10, population_size=5, tournament_size=3, rng=rng)
  with pytest.raises(ValueError, match="tournament_size .* must be >= 1"):
    search.regularized_evolution(_sample6, _mutate6, _count_ones, **{**kw, "tournament_size": 0})
  with pytest.raises(ValueError, match="lower tournament_size or raise population_size"):
    search.regularized_evolution(_sample6, _mutate6, _count_ones, **{**kw, "tournament_size": 6})
  with pytest.raises(ValueError, match="raise num_candidates"):
    search.regularized_evolution(_sample6, _mutate6, _count_ones, **{**kw, "num_candidates": 4})
  with pytest.raises(ValueError, match="num_candidates"):
    search.random_search(_sample6, _count_ones, num_candidates=0, rng=rng)
  with pytest.raises(ValueError, match="NaN"):
    search.random_search(_sample6, lambda e: float("nan"), num_candidates=3, rng=rng)
  history = [(("a",), 3.0), (("a",), 3.0), (("b",), 2.0), (("c",), 1.0)]
  assert search.top_k(history, 2) == [("a",), ("b",)]
  assert search.top_k(history, 10) == [("a",), ("b",), ("c",)]
