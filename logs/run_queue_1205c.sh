#!/bin/bash
# After run_queue_1205b.sh: the registered per-learner-schedule population run
# (needs schedule_per_learner: worktree /work/frozen4). Resumes from its
# checkpoints if interrupted: rerun this script.
cd /work/main
while pgrep -f run_queue_1205b.sh >/dev/null; do sleep 20; done
echo "=== mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0 $(date)"
TFDS_DATA_DIR=/work/shared/tfds python experiments/gtn_vs_real_data.py --only mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0 --code /work/frozen4 --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data > logs/gtn_vs_real_data_mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0.log 2>&1
echo "=== mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0 done rc=$? $(date)"
