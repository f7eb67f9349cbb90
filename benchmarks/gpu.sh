#!/usr/bin/env bash
# The same benchmark on one GPU: one command, well under 10 minutes, no downloads.
# Needs a JAX with CUDA already installed (pip package jax[cuda12] or similar).
#
#   bash benchmarks/gpu.sh            # from the repository root
#
# Prints: the XLA matmul peak, the meta-iteration table for T = 8, 32, 64 (library
# convolutions, the GPU default), T = 32 with the CPU-oriented matmul convolutions
# for comparison, the projected wall time of paper-scale meta-training
# (compile + 2000 x the T=32 median), and the per-primitive microbenchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # so peak memory is measurable
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python - <<'PY'
import jax
print("jax", jax.__version__, "devices:", jax.devices())
if jax.default_backend() != "gpu":
    raise SystemExit("no GPU backend: install JAX with CUDA (jax[cuda12]) on this machine")
PY
timeout 420 python benchmarks/run_all.py --no-peer --inner 8 32 64 --iters-override 6
echo "== T=32 with conv2d=gemm, max_pool=phases (the CPU choice) for comparison"
timeout 120 python benchmarks/meta_iteration.py --inner 32 --iters 6 --warmup 1 \
  --conv gemm --pool phases | grep RESULT | python -c '
import json, sys
r = json.loads(sys.stdin.read().split("RESULT ", 1)[1])
print(f"T=32 gemm/phases: median {r[\"median_s\"]*1e3:.1f} ms [{r[\"min_s\"]*1e3:.1f}-{r[\"max_s\"]*1e3:.1f}], compile {r[\"compile_s\"]:.1f} s")'
python - <<'PY'
import glob, json, os
latest = sorted(glob.glob("benchmarks/results/*/results.json"), key=os.path.getmtime)[-1]
r = json.load(open(latest))
for pair in r["pairs"]:
    g = pair["gtnjax"]
    if pair["inner"] == 32 and not g.get("failed"):
        total = g["compile_s"] + 2000 * g["median_s"]
        print(f"paper-scale meta-training (2000 meta-iterations, T=32) projected: "
              f"{total:.0f} s = compile {g['compile_s']:.0f} s + 2000 x {g['median_s']*1e3:.1f} ms "
              f"(target: under 180 s)")
PY
