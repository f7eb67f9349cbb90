"""The GTN-NAS ground truth: train every candidate of the NAS config on real data.

    TFDS_DATA_DIR=../shared/tfds python experiments/nas_ground_truth.py \
        --config experiments/configs/nas_fmnist.py [--minutes 120]

Appends one row per candidate to results/nas_fmnist/ground_truth.csv (or
--out) and resumes after the last row: run it again until all candidates
are done, committing the CSV after each part. On CPU each candidate is its
own compiled program; on a GPU candidates train as vmapped populations of
`population_chunk` (same table, same keys).
"""

from __future__ import annotations

import argparse
import os
import sys

# XLA:CPU's backend optimisation level 1 halves compile time of a cell
# network's training program (~20 s -> ~10 s) at an unchanged step time, and
# every candidate is a new program on CPU (BENCHMARKS.md). Set before JAX starts.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_backend_optimization_level=1").strip()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default=os.path.join(REPO, "experiments", "configs",
                                                       "nas_fmnist.py"))
  parser.add_argument("--out", default=os.path.join(REPO, "results", "nas_fmnist",
                                                    "ground_truth.csv"))
  parser.add_argument("--minutes", type=float, default=None,
                      help="stop (between candidates) after this long; rerun to go on")
  args = parser.parse_args(argv)

  from gtnjax import data
  from gtnjax.nas import config as nas_config
  from gtnjax.nas import ground_truth
  config = nas_config.load(args.config)
  dataset = data.load(config.dataset)
  rows = ground_truth.run(config, dataset, args.out,
                          time_limit_s=None if args.minutes is None else 60 * args.minutes)
  print(f"{len(rows)} of {config.num_candidates} candidates in {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
