#!/bin/bash
# Issue #22 part 3, for a session that starts with it (about 2 h on 2 cores,
# then ~1 h): the registered per-architecture run at T=32, then Fashion-MNIST
# seed 1 (registered 2026-12-05). Run as the session's first job: a session's
# workdir does not survive into the next, so a run stopped midway is lost.
# Code: a worktree frozen at the commit this script is started from, so edits
# made meanwhile do not change the runs. Logs go under runs/ (ignored).
set -u
cd "$(dirname "$0")/.."
repo=$(pwd)
frozen=${FROZEN:-/tmp/gtnjax_frozen_$(git rev-parse --short HEAD)}
[ -d "$frozen" ] || git worktree add -q --detach "$frozen" HEAD
mkdir -p runs
for name in mnist_population_cnn_small_mlp_gap_schedule_per_learner_t32_s0 \
            fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1; do
  echo "=== $name $(date)"
  TFDS_DATA_DIR=${TFDS_DATA_DIR:-$repo/../shared/tfds} python experiments/gtn_vs_real_data.py \
    --only "$name" --code "$frozen" --workdir-root "$repo/runs/gtn_vs_real_data" \
    --results "$repo/results/gtn_vs_real_data" > "runs/gtn_vs_real_data_$name.log" 2>&1
  echo "=== done rc=$? $(date)"
done
