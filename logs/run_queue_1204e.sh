#!/bin/bash
# After run_queue_1204d.sh: Fashion-MNIST T=32 seed 1 (registered 2026-12-04;
# resumes from its checkpoints if interrupted: rerun this line).
cd /work/main
while pgrep -f run_queue_1204d.sh >/dev/null; do sleep 20; done
echo "=== fashion_mnist_t32_s1 $(date)"
TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only fashion_mnist_t32_s1 --code /work/frozen2 --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > logs/gtn_vs_real_data_fashion_mnist_t32_s1.log 2>&1
echo "=== fashion_mnist_t32_s1 done rc=$? $(date)"
