#!/bin/bash
# After the part-3 diagnosis run (queue_1204), the balanced population run
# (code with population_gradient: /work/frozen2).
cd /work/main
while pgrep -f run_queue_1204.sh >/dev/null; do sleep 20; done
for run in mnist_population_cnn_small_mlp_gap_balanced_s0; do
  echo "=== $run $(date)"
  TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only $run --code /work/frozen2 --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > logs/gtn_vs_real_data_$run.log 2>&1
  echo "=== $run done rc=$? $(date)"
done
