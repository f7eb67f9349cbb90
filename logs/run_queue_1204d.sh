#!/bin/bash
# After run_queue_1204c.sh: the Fashion-MNIST T=32 few-step curves (seed 0).
cd /work/main
while pgrep -f run_queue_1204c.sh >/dev/null; do sleep 20; done
echo "=== curves_fashion_mnist_t32 $(date)"
TFDS_DATA_DIR=/work/shared/tfds python experiments/few_step_curves.py --runs runs/gtn_vs_real_data/fashion_mnist_t32_s0 --out results/curves_fashion_mnist_t32 > logs/curves_fashion_mnist_t32.log 2>&1
echo "=== curves_fashion_mnist_t32 done rc=$? $(date)"
