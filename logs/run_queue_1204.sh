#!/bin/bash
# Session 2026-12-04 evening: after fashion_mnist_t32_s0 (pid given as $1)
# finishes, the part-3 diagnosis (what runs next depends on it).
cd /work/main
while kill -0 "$1" 2>/dev/null; do sleep 20; done
echo "=== fashion_mnist_t32_s0 process ended $(date)"
for run in mnist_alone_cnn_small_gap_s0; do
  echo "=== $run $(date)"
  TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only $run --code /work/frozen --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > logs/gtn_vs_real_data_$run.log 2>&1
  echo "=== $run done rc=$? $(date)"
done
