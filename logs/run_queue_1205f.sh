#!/bin/bash
# After logs/run_queue_1205e.sh (issue #22 part 2, 2026-12-05): the first part
# of the `paper` MNIST config in the time left of the session. A SIGTERM to its
# `gtnjax.cli train` process stops it with a checkpoint and the part's files
# are still copied to results/paper_mnist/; rerun to resume.
cd /work/main
while pgrep -f run_queue_1205e.sh > /dev/null; do sleep 30; done
echo "=== paper MNIST part $(date)"
TFDS_DATA_DIR=/work/shared/tfds python experiments/paper_mnist_in_parts.py --meta-steps 100 > runs/paper_mnist_part.log 2>&1
echo "=== done rc=$? $(date)"
