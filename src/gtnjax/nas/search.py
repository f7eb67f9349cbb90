"""Searches driven by a proxy: random search and regularised evolution.

Independent of how an architecture is written: an encoding is any hashable
value (in `gtnjax.nas.space`, a tuple of 6 ints), `sample_fn(rng)` draws one,
`mutate_fn(encoding, rng)` perturbs one and `score_fn(encoding)` is the proxy
(higher is better). Scores are cached per encoding within one search, so a
repeated candidate costs nothing: a history counts evaluations, while
`score_fn` is called once per distinct encoding.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, Hashable

import numpy as np

History = list[tuple[Hashable, float]]


def _cached(score_fn: Callable[[Any], float]) -> Callable[[Any], float]:
  """score_fn memoised per encoding; a NaN score is an error, not a rank."""
  cache: dict[Hashable, float] = {}

  def score(encoding):
    if encoding not in cache:
      value = float(score_fn(encoding))
      if math.isnan(value):
        raise ValueError(f"score_fn returned NaN for {encoding!r}: map a failed proxy to "
                         "-inf (worst) instead")
      cache[encoding] = value
    return cache[encoding]
  return score


def _best_first(history: History) -> History:
  # Stable: equal scores keep their evaluation order.
  return sorted(history, key=lambda h: -h[1])


def random_search(sample_fn: Callable[[np.random.Generator], Hashable],
                  score_fn: Callable[[Hashable], float], *, num_candidates: int,
                  rng: np.random.Generator) -> History:
  """`num_candidates` random draws as (encoding, score), best first."""
  if num_candidates < 1:
    raise ValueError(f"num_candidates ({num_candidates}) must be >= 1")
  score = _cached(score_fn)
  history = [(e, score(e)) for e in (sample_fn(rng) for _ in range(num_candidates))]
  return _best_first(history)


def regularized_evolution(sample_fn: Callable[[np.random.Generator], Hashable],
                          mutate_fn: Callable[[Hashable, np.random.Generator], Hashable],
                          score_fn: Callable[[Hashable], float], *, num_candidates: int,
                          population_size: int, tournament_size: int,
                          rng: np.random.Generator) -> History:
  """Aging evolution (Real et al. 2019). Start from `population_size` random
  samples; then, until `num_candidates` evaluations (the initial ones
  included), draw `tournament_size` distinct members uniformly, mutate the
  best, add the child and drop the oldest member (not the worst: aging keeps
  a lucky score from dominating forever). Returns every evaluation as
  (encoding, score), best first."""
  if tournament_size < 1:
    raise ValueError(f"tournament_size ({tournament_size}) must be >= 1")
  if tournament_size > population_size:
    raise ValueError(f"tournament_size ({tournament_size}) must be <= population_size "
                     f"({population_size}): lower tournament_size or raise population_size")
  if num_candidates < population_size:
    raise ValueError(f"num_candidates ({num_candidates}) must be >= population_size "
                     f"({population_size}): the first population alone costs that many; "
                     "raise num_candidates or lower population_size")
  score = _cached(score_fn)
  population: collections.deque[tuple[Hashable, float]] = collections.deque()
  history: History = []
  for _ in range(population_size):
    e = sample_fn(rng)
    population.append((e, score(e)))
    history.append(population[-1])
  while len(history) < num_candidates:
    picks = rng.choice(len(population), tournament_size, replace=False)
    parent = max((population[i] for i in picks), key=lambda h: h[1])[0]
    child = mutate_fn(parent, rng)
    population.append((child, score(child)))
    history.append(population[-1])
    population.popleft()
  return _best_first(history)


def top_k(history: History, k: int) -> list[Hashable]:
  """The best `k` distinct encodings of a history (fewer if it has fewer)."""
  if k < 0:
    raise ValueError(f"k ({k}) must be >= 0")
  out: list[Hashable] = []
  seen: set[Hashable] = set()
  for e, _ in _best_first(history):
    if len(out) == k:
      break
    if e not in seen:
      seen.add(e)
      out.append(e)
  return out
