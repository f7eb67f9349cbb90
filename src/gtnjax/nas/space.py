"""The cell search space: NAS-Bench-201-style cells for 28x28 images.

A cell is a 4-node DAG. Node 0 is the cell's input; node j (1..3) is the sum
of one operation applied to every earlier node; node 3 is the cell's output.
Each of the 6 edges picks one of 5 operations, so a cell is an *encoding*: a
tuple of 6 operation indices, edge order `EDGES`. 5^6 = 15,625 encodings.

Different encodings can compute the same function (isomorphic cells, or
edges whose result never reaches the output). `canonical_form` writes the
cell's output as an expression with dead branches removed and the summands
of every node sorted, so two cells get the same `canonical_hash` exactly when
they are the same network up to the order of commutative sums.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Sequence

import numpy as np

OPS = ("none", "skip", "conv1x1", "conv3x3", "avg_pool3x3")
# (from, to) node pairs, in the order the encoding lists them.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_NODES = 4
NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
NUM_ENCODINGS = NUM_OPS ** NUM_EDGES

Encoding = tuple[int, ...]


def validate(encoding: Sequence[int]) -> Encoding:
  """The encoding as a tuple of ints; ValueError naming the rule if malformed."""
  encoding = tuple(int(op) for op in encoding)
  if len(encoding) != NUM_EDGES:
    raise ValueError(f"a cell encoding has {NUM_EDGES} operations (one per edge "
                     f"{EDGES}), got {len(encoding)}: {encoding}")
  for op in encoding:
    if not 0 <= op < NUM_OPS:
      raise ValueError(f"operation index {op} out of range: choose 0..{NUM_OPS - 1} "
                       f"for {OPS}")
  return encoding


def to_string(encoding: Sequence[int]) -> str:
  """'conv3x3-skip-none-...' in edge order: readable and round-trips."""
  return "-".join(OPS[op] for op in validate(encoding))


def from_string(text: str) -> Encoding:
  """Inverse of `to_string`."""
  names = text.strip().split("-")
  unknown = [n for n in names if n not in OPS]
  if unknown:
    raise ValueError(f"unknown operation(s) {unknown} in cell {text!r}: choose from {OPS}")
  return validate(OPS.index(n) for n in names)


def from_index(index: int) -> Encoding:
  """The index-th encoding of the space (base-5 digits, first edge most significant)."""
  if not 0 <= index < NUM_ENCODINGS:
    raise ValueError(f"index {index} out of range [0, {NUM_ENCODINGS})")
  digits = []
  for _ in range(NUM_EDGES):
    index, digit = divmod(index, NUM_OPS)
    digits.append(digit)
  return tuple(reversed(digits))


def to_index(encoding: Sequence[int]) -> int:
  index = 0
  for op in validate(encoding):
    index = index * NUM_OPS + op
  return index


def sample(rng: np.random.Generator) -> Encoding:
  """A uniformly random encoding."""
  return tuple(int(op) for op in rng.integers(0, NUM_OPS, size=NUM_EDGES))


def mutate(encoding: Sequence[int], rng: np.random.Generator) -> Encoding:
  """One edge's operation changed to a different one, uniformly at random."""
  encoding = list(validate(encoding))
  edge = int(rng.integers(NUM_EDGES))
  choices = [op for op in range(NUM_OPS) if op != encoding[edge]]
  encoding[edge] = int(rng.choice(choices))
  return tuple(encoding)


# ------------------------------------------------------------ canonical form
_ZERO = "0"
_SYMBOL = {"conv1x1": "c1", "conv3x3": "c3", "avg_pool3x3": "ap"}


def canonical_form(encoding: Sequence[int]) -> str:
  """The cell's output as an expression of its input "x".

  Rules: `none` contributes nothing; `skip` passes its operand unchanged; an
  operation whose operand is the zero tensor is treated as zero (its output
  would not depend on the cell's input: only a learned constant); a node
  with no non-zero summand is zero; summands are sorted (sums commute) but
  repeated ones are kept (x + x is not x). So a sum is "+(a,b)" and a single
  summand stands for itself.
  """
  encoding = validate(encoding)
  exprs = ["x"]
  for node in range(1, NUM_NODES):
    terms = []
    for (src, dst), op in zip(EDGES, encoding):
      if dst != node or OPS[op] == "none" or exprs[src] == _ZERO:
        continue
      name = OPS[op]
      terms.append(exprs[src] if name == "skip" else f"{_SYMBOL[name]}({exprs[src]})")
    if not terms:
      exprs.append(_ZERO)
    elif len(terms) == 1:
      exprs.append(terms[0])
    else:
      exprs.append("+(" + ",".join(sorted(terms)) + ")")
  return exprs[-1]


def canonical_hash(encoding: Sequence[int]) -> str:
  """16 hex digits of the canonical form's SHA-1: equal for equivalent cells."""
  return hashlib.sha1(canonical_form(encoding).encode()).hexdigest()[:16]


def output_ignores_input(encoding: Sequence[int]) -> bool:
  """True if the cell's output does not depend on its input (no path of
  non-`none` operations from node 0 to node 3): such a network's prediction
  is the same for every image."""
  return canonical_form(encoding) == _ZERO


def live_edges(encoding: Sequence[int]) -> tuple[bool, ...]:
  """Per edge: does its operation lie on an input-to-output path? Edges that
  are `none`, fed by a zero node, or feed a node that never reaches the
  output are dead: their parameters and FLOPs do not affect the prediction
  (beyond a constant)."""
  encoding = validate(encoding)
  reaches_input = [True] + [False] * (NUM_NODES - 1)
  for (src, dst), op in zip(EDGES, encoding):  # edges are in topological order
    if OPS[op] != "none" and reaches_input[src]:
      reaches_input[dst] = True
  reaches_output = [False] * (NUM_NODES - 1) + [True]
  for (src, dst), op in reversed(list(zip(EDGES, encoding))):
    if OPS[op] != "none" and reaches_output[dst]:
      reaches_output[src] = True
  return tuple(OPS[op] != "none" and reaches_input[src] and reaches_output[dst]
               for (src, dst), op in zip(EDGES, encoding))


def conv_depth(encoding: Sequence[int]) -> int:
  """Convolutions on the cell's deepest input-to-output path through live
  edges; -1 when the output ignores the input."""
  depth = {0: 0}
  for (src, dst), op, live in zip(EDGES, validate(encoding), live_edges(encoding)):
    if live and src in depth:  # edges are in topological order
      depth[dst] = max(depth.get(dst, -1), depth[src] + OPS[op].startswith("conv"))
  return depth.get(NUM_NODES - 1, -1)


@functools.cache
def input_dependent_encodings() -> np.ndarray:
  """[M, 6] every encoding whose output depends on its input, in index order
  (the cells a random-cell learner draws from)."""
  table = [from_index(i) for i in range(NUM_ENCODINGS)]
  table = np.array([e for e in table if not output_ignores_input(e)], np.int32)
  table.setflags(write=False)  # cached: one array shared by every caller
  return table


def unique_sample(rng: np.random.Generator, count: int, *,
                  exclude_input_independent: bool = False,
                  exclude_hashes: frozenset[str] = frozenset()) -> list[Encoding]:
  """`count` random encodings with pairwise different canonical hashes, none
  of them in `exclude_hashes`."""
  seen, out = set(exclude_hashes), []
  for _ in range(count * 1000):
    if len(out) == count:
      break
    encoding = sample(rng)
    digest = canonical_hash(encoding)
    if digest in seen or (exclude_input_independent and output_ignores_input(encoding)):
      continue
    seen.add(digest)
    out.append(encoding)
  if len(out) < count:
    raise ValueError(f"could not draw {count} distinct cells; ask for fewer")
  return out


def read_labelled_cells(path: str) -> tuple[list[Encoding], list[float]]:
  """(encodings, labels) of a table with columns `encoding` (`to_string`
  form) and `val_acc_seed0`, e.g. a `gtnjax.nas.ground_truth` table: the
  labelled cells of a ranking-aware teacher (the learner "cell:pool")."""
  import csv
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows or not {"encoding", "val_acc_seed0"} <= set(rows[0]):
    raise ValueError(f"{path} holds no labelled cells: expected a table with columns "
                     "'encoding' and 'val_acc_seed0' (a gtnjax.nas ground-truth table)")
  return ([from_string(r["encoding"]) for r in rows], [float(r["val_acc_seed0"]) for r in rows])
