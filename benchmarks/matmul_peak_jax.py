"""Sustained float32 matmul GFLOP/s of XLA on the default device (the peak
that achieved meta-iteration FLOP/s are compared with).

Usage: python benchmarks/matmul_peak_jax.py [N ...]  (default 2048 4096)
Prints one RESULT JSON line: best and median GFLOP/s per size.
"""
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp


def main():
  sizes = [int(a) for a in sys.argv[1:]] or [2048, 4096]
  out = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend()}
  for n in sizes:
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(10 if n <= 2048 else 5):
      t0 = time.perf_counter()
      jax.block_until_ready(f(a, b))
      times.append(time.perf_counter() - t0)
    flop = 2.0 * n ** 3
    out[str(n)] = {"best_gflops": flop / min(times) / 1e9,
                   "median_gflops": flop / statistics.median(times) / 1e9}
  print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
  main()
