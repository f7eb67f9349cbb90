#!/bin/bash
# Prepares what a bare accelerator machine without network or
# tensorflow-datasets needs for `experiments/accelerator_paper_mnist.py`
# (Python 3.12, JAX, flax, optax, chex and orbax already installed there):
#   .whl/           wheels of the two pure-Python packages it lacks
#   .device_cache/  the decoded MNIST cache that gtnjax.data falls back to
# Both folders are git-ignored; carry them with the run (see the script's docstring).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp -d .whl "ml_collections>=1.0" "tensorboardX>=2.6"
mkdir -p .device_cache
GTNJAX_CACHE_DIR="$PWD/.device_cache" python3 -c "from gtnjax import data; data.load('mnist')"
ls -la .whl .device_cache
