"""Throughput of NAS cell networks on real-data training (first call = compile + run).

    python benchmarks/nas_throughput.py [--channels 8] [--steps 300] [--batch 128] \
        [--conv auto|gemm|lax] [--masked]

Set XLA_FLAGS=--xla_backend_optimization_level=N before running to compare
compile times. Synthetic data of Fashion-MNIST's shape (50k train, 2 x 10k eval).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax.nas import network, space, training

CELLS = ("conv3x3-conv3x3-conv3x3-conv3x3-conv3x3-conv3x3",
         "skip-conv1x1-avg_pool3x3-conv3x3-skip-none")


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--channels", type=int, default=8)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--conv", default="auto")
  parser.add_argument("--masked", action="store_true",
                      help="one masked program, 2 candidates vmapped")
  args = parser.parse_args()
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(50000, 28, 28, 1)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, 10, 50000).astype(np.int32))
  evals = ((x[:10000], y[:10000]), (x[10000:20000], y[10000:20000]))
  cells = [None] if args.masked else [space.from_string(c) for c in CELLS]
  for cell in cells:
    spec = network.make(cell, (28, 28, 1), 10, channels=args.channels, conv_impl=args.conv)
    population = 2 if args.masked else 1
    encodings = jnp.array([space.from_string(CELLS[i % 2]) for i in range(population)])
    times = []
    for call in range(2):
      keys = jax.random.split(jax.random.key(call), population)
      t0 = time.perf_counter()
      training.train_and_score(spec, keys, encodings, x, y, evals, num_steps=args.steps,
                               batch_size=args.batch, peak_lr=0.05).block_until_ready()
      times.append(time.perf_counter() - t0)
    print(f"{spec.name} conv={args.conv}: first call {times[0]:.1f} s, second {times[1]:.1f} s, "
          f"{args.steps * population / times[1]:.1f} steps/s per candidate", flush=True)


if __name__ == "__main__":
  main()
