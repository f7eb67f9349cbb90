#!/bin/bash
# Issue #22 part 3 (2026-12-05, tenth session): the third seed of one schedule
# per architecture, then the same on Fashion-MNIST, both registered before they
# ran (commit after 72a370f). Each resumes from its checkpoints: rerun this
# script. Code: worktree /work/frozen5 (0ab0641; gtnjax/ as at HEAD). Logs go
# under runs/ (ignored) so a stop mid-run leaves the tree clean.
cd /work/main
for name in mnist_population_cnn_small_mlp_gap_schedule_per_learner_s2 \
            fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0; do
  echo "=== $name $(date)"
  TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only "$name" \
    --code /work/frozen5 --workdir-root /work/main/runs/gtn_vs_real_data \
    --results /work/main/results/gtn_vs_real_data > "runs/gtn_vs_real_data_$name.log" 2>&1
  echo "=== done rc=$? $(date)"
done
