"""Searches driven by a proxy: random search and regularised evolution.

Independent of how an architecture is written: an encoding is any hashable
value, `sample_fn(rng)` draws one, `mutate_fn(encoding, rng)` perturbs one
and `score_fn(encoding)` is the proxy (higher is better). Scores are cached
per encoding, so a repeated candidate costs nothing.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Hashable

import numpy as np

History = list[tuple[Hashable, float]]


def _cached(score_fn: Callable[[Any], float]) -> Callable[[Any], float]:
  cache: dict[Hashable, float] = {}

  def score(encoding):
    if encoding not in cache:
      cache[encoding] = float(score_fn(encoding))
    return cache[encoding]
  return score


def random_search(sample_fn, score_fn, *, num_candidates: int, rng: np.random.Generator
                  ) -> History:
  """`num_candidates` random draws, best first."""
  if num_candidates < 1:
    raise ValueError("num_candidates must be >= 1")
  score = _cached(score_fn)
  history = [(e, score(e)) for e in (sample_fn(rng) for _ in range(num_candidates))]
  return sorted(history, key=lambda h: -h[1])


def regularized_evolution(sample_fn, mutate_fn, score_fn, *, num_candidates: int,
                          population_size: int, tournament_size: int,
                          rng: np.random.Generator) -> History:
  """Aging evolution (Real et al. 2019): mutate the best of a random
  tournament, add the child, drop the oldest; every evaluation, best first."""
  if not 1 <= tournament_size <= population_size:
    raise ValueError(f"need 1 <= tournament_size ({tournament_size}) <= population_size "
                     f"({population_size})")
  if num_candidates < population_size:
    raise ValueError(f"num_candidates ({num_candidates}) must be >= population_size "
                     f"({population_size}): the first population alone costs that many")
  score = _cached(score_fn)
  population = collections.deque()
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
  return sorted(history, key=lambda h: -h[1])


def top_k(history: History, k: int) -> list[Hashable]:
  """The best `k` distinct encodings of a history."""
  out = []
  for e, _ in sorted(history, key=lambda h: -h[1]):
    if e not in out:
      out.append(e)
    if len(out) == k:
      break
  return out
