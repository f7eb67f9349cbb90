#!/bin/bash
# Session 2026-12-04 (seventh): MNIST T=32 seed 1 (interrupted last session,
# restarted from scratch: no checkpoint had been written), then the T=32
# curriculum ablation registered last session.
cd /work/main
export TFDS_DATA_DIR=/work/shared/tfds
echo "=== mnist_t32_s1 $(date)"
python experiments/gtn_vs_real_data.py --only mnist_t32_s1 --code /work/frozen2 --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > logs/gtn_vs_real_data_mnist_t32_s1.log 2>&1
echo "=== mnist_t32_s1 done rc=$? $(date)"
for run in curriculum_none_t32_s0 curriculum_none_t32_s1; do
  echo "=== $run $(date)"
  python experiments/ablations.py --only $run --code /work/frozen2 --workdir-root /work/main/runs/ablations --results /work/main/results/ablations > logs/ablations_$run.log 2>&1
  echo "=== $run done rc=$? $(date)"
done
