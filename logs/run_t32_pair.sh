#!/bin/bash
# Session 2026-12-04 evening: the registered T=32 runs, one after another.
cd /work/main
for run in fashion_mnist_t32_s0 mnist_t32_s1; do
  echo "=== $run $(date)"
  TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only $run --code /work/frozen --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data
  echo "=== $run done rc=$? $(date)"
done
