#!/bin/bash
# Several multi-GPU machines without a scheduler: start this on every machine,
# with NODE_RANK 0..NUM_NODES-1 and the first machine's address.
#
#   NODE_RANK=0 NUM_NODES=2 COORDINATOR=10.0.0.1:12355 ./experiments/launch/multinode_manual.sh
#   NODE_RANK=1 NUM_NODES=2 COORDINATOR=10.0.0.1:12355 ./experiments/launch/multinode_manual.sh
#
# One process per machine, using all its GPUs. A single multi-GPU machine needs
# none of this: `gtnjax train ...` uses every local GPU by itself.
set -euo pipefail
: "${NODE_RANK:?}" "${NUM_NODES:?}" "${COORDINATOR:?host:port of the NODE_RANK=0 machine}"
CONFIG=${CONFIG:-experiments/configs/mnist.py:paper}
WORKDIR=${WORKDIR:-/shared/gtnjax/runs/mnist_manual}   # the same shared path on every machine
export TFDS_DATA_DIR=${TFDS_DATA_DIR:-/shared/tensorflow_datasets}
export XLA_PYTHON_CLIENT_PREALLOCATE=false
GPUS=$(nvidia-smi -L | wc -l)

exec gtnjax train --config "$CONFIG" --workdir "$WORKDIR" \
  --coordinator-address "$COORDINATOR" --num-processes "$NUM_NODES" --process-id "$NODE_RANK" \
  --config.population=$((NUM_NODES * GPUS)) --no-progress "$@"
