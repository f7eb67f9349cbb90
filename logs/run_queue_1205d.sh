#!/bin/bash
# The registered confirmation seed of the per-architecture schedule (issue #22
# part 3), started at the end of the 2026-12-04 session; it resumes from its
# checkpoints: rerun this script. Code: worktree /work/frozen4 (dc13cc2, the
# same behaviour as HEAD for this run). Its log goes under runs/ (ignored) so
# a stop mid-run leaves the tree clean.
cd /work/main
echo "=== mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1 $(date)"
TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1 --code /work/frozen4 --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > runs/gtn_vs_real_data_schedule_per_learner_s1.log 2>&1
echo "=== done rc=$? $(date)"
