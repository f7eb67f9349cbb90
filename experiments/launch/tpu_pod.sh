#!/bin/bash
# Meta-train a GTN on a Cloud TPU pod slice (e.g. v5litepod-16: 4 hosts x 4 chips).
#
#   TPU=my-tpu ZONE=us-west4-a BUCKET=gs://my-bucket ./experiments/launch/tpu_pod.sh
#
# The same command runs on every host (--worker=all); each host is one JAX
# process. Cloud TPU VMs name their workers only in the metadata server, so
# GTNJAX_DISTRIBUTED=1 tells gtnjax.parallel.initialize_distributed() to call
# jax.distributed.initialize(), which finds the coordinator, process count and
# rank there. To resume, run this script again with the same WORKDIR.
set -euo pipefail

: "${TPU:?set TPU to the TPU VM name}" "${ZONE:?set ZONE}" "${BUCKET:?set BUCKET (gs://...)}"
CONFIG=${CONFIG:-experiments/configs/mnist.py:paper}
WORKDIR=${WORKDIR:-$BUCKET/gtnjax/runs/mnist_tpu}
POPULATION=${POPULATION:-16}   # a multiple of the slice's chip count
REPO_URL=${REPO_URL:-https://github.com/OWNER/gtnjax.git}   # your copy of this repository

# One-time setup on every host (safe to repeat).
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "
  set -e
  [ -d gtnjax ] || git clone $REPO_URL gtnjax
  python3 -m venv ~/venv && . ~/venv/bin/activate
  pip install -q -U 'jax[tpu]' && pip install -q -e ./gtnjax
"

# tfds data: copy the prepared array_record files to every host's disk (small
# sets) or mount shared storage; TFDS_DATA_DIR must point at them on every host.
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "
  set -e
  mkdir -p ~/tensorflow_datasets && gsutil -m -q rsync -r $BUCKET/tensorflow_datasets ~/tensorflow_datasets
  . ~/venv/bin/activate && cd gtnjax
  export TFDS_DATA_DIR=~/tensorflow_datasets GTNJAX_DISTRIBUTED=1
  gtnjax train --config $CONFIG --workdir $WORKDIR --config.population=$POPULATION --no-progress ${*:-}
"
