#!/bin/bash
# Several multi-GPU machines without a scheduler: start this on every machine,
# with NODE_RANK 0..NUM_NODES-1 and the first machine's address.
#
#   NODE_RANK=0 NUM_NODES=2 COORDINATOR=10.0.0.1:12355 ./experiments/launch/multinode_manual.sh
#   NODE_RANK=1 NUM_NODES=2 COORDINATOR=10.0.0.1:12355 ./experiments/launch/multinode_manual.sh
#
# One process per machine, using all its GPUs. A single multi-GPU machine needs
# none of this: `gtnjax train ...` uses every local GPU by itself.
#
# Settings (environment): CONFIG, WORKDIR, LOCAL_DEVICES (devices per process;
# default: the GPUs nvidia-smi lists), VERBOSE=1 (log at INFO level). Extra
# arguments go to `gtnjax train`. tests/test_slurm.py runs two CPU processes
# of one machine with it:
#   NODE_RANK=0 NUM_NODES=2 COORDINATOR=127.0.0.1:12355 LOCAL_DEVICES=1 \
#     CONFIG=experiments/configs/digits.py:test WORKDIR=/tmp/run ./multinode_manual.sh
#
# SIGTERM to every process stops them at the same meta-step with one
# checkpoint; rerun the same commands to resume. If one process dies, the
# others fail with an error rather than wait for it.
set -euo pipefail
: "${NODE_RANK:?}" "${NUM_NODES:?}" "${COORDINATOR:?host:port of the NODE_RANK=0 machine}"
CONFIG=${CONFIG:-experiments/configs/mnist.py:paper}
WORKDIR=${WORKDIR:-/shared/gtnjax/runs/mnist_manual}   # the same shared path on every machine
export TFDS_DATA_DIR=${TFDS_DATA_DIR:-/shared/tensorflow_datasets}
export XLA_PYTHON_CLIENT_PREALLOCATE=false
LOCAL_DEVICES=${LOCAL_DEVICES:-$(nvidia-smi -L | wc -l)}

exec gtnjax ${VERBOSE:+--verbose} train --config "$CONFIG" --workdir "$WORKDIR" \
  --coordinator-address "$COORDINATOR" --num-processes "$NUM_NODES" --process-id "$NODE_RANK" \
  --config.population=$((NUM_NODES * LOCAL_DEVICES)) --no-progress "$@"
