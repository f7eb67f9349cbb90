#!/bin/bash
# Issue #22 part 3 (registered 2026-12-04): the population with a pooling
# network at T=32, the mean's gradient. Resumes from its checkpoints if
# interrupted: rerun this script.
cd /work/main
echo "=== mnist_population_cnn_small_mlp_gap_t32_s0 $(date)"
TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only mnist_population_cnn_small_mlp_gap_t32_s0 --code /work/frozen2 --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > logs/gtn_vs_real_data_mnist_population_cnn_small_mlp_gap_t32_s0.log 2>&1
echo "=== mnist_population_cnn_small_mlp_gap_t32_s0 done rc=$? $(date)"
