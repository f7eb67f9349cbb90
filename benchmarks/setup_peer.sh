#!/usr/bin/env bash
# Creates benchmarks/.venv-peer with the CPU build of torch 2.13 that the
# PyTorch peer (../shared/peers/gtn_torch_peer.py) needs. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peer"
if [ ! -x "$venv/bin/python" ]; then
  python -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
# On these machines the default index gives a CPU build of torch 2.13.
"$venv/bin/pip" install --quiet torch==2.13.0 numpy
"$venv/bin/python" -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"
