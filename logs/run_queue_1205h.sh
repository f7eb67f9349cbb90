#!/bin/bash
# Issue #22 part 3 (2026-12-05, eleventh session): a fourth MNIST seed of one
# schedule per architecture judged on 20 learners, then a second Fashion-MNIST
# seed, both registered before they ran. Code: worktree /work/frozen6 (the
# registering commit). Logs go under runs/ (ignored).
cd /work/main
for name in mnist_population_cnn_small_mlp_gap_schedule_per_learner_s3 \
            fashion_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1; do
  echo "=== $name $(date)"
  TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only "$name" \
    --code /work/frozen6 --workdir-root /work/main/runs/gtn_vs_real_data \
    --results /work/main/results/gtn_vs_real_data > "runs/gtn_vs_real_data_$name.log" 2>&1
  echo "=== done rc=$? $(date)"
done
