"""Times gtnjax meta-iterations at the paper's MNIST setting, in this process.

One JSON line (prefixed RESULT) with: compile seconds, XLA cost-analysis
FLOPs of one meta-iteration, the per-iteration seconds (median, min, max of
--iters after --warmup), peak RSS of the process, and the implementation
choices. benchmarks/run_all.py runs it as a subprocess per configuration, so
that each peak RSS belongs to one configuration.

Paper setting (arXiv 1912.07768, MNIST CGTN): generator teacher with the
full learned curriculum, T inner steps of batch 128, learner
conv64-pool-conv128-pool-fc256-fc10, a real-data probe of 128 after every
inner step (probe_every=1), Adam on the teacher. Data are random arrays
shaped like normalised MNIST, as in the PyTorch peer: timing does not depend
on pixel values.

Usage:
  python benchmarks/meta_iteration.py --inner 32 --iters 5 --warmup 1 [--remat step]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time


def rss_kib(field: str) -> int:
  with open("/proc/self/status") as fh:
    for line in fh:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  return -1


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--inner", type=int, default=32, help="T, inner steps")
  ap.add_argument("--iters", type=int, default=5, help="meta-iterations run in all")
  ap.add_argument("--warmup", type=int, default=1, help="of which untimed")
  ap.add_argument("--remat", default="block", help="inner_loop.REMAT_POLICIES")
  ap.add_argument("--batch", type=int, default=128)
  ap.add_argument("--learner", default="cnn")
  ap.add_argument("--conv", default="auto", help="auto (per backend) or layers.CONV_IMPLS")
  ap.add_argument("--pool", default="auto", help="auto (per backend) or layers.POOL_IMPLS")
  ap.add_argument("--generator-chunk", type=int, default=None)
  ap.add_argument("--out", default=None)
  args = ap.parse_args()

  import jax
  import jax.numpy as jnp

  from gtnjax import layers, learners, meta, teacher

  # Resolved here so that the RESULT line records what ran.
  conv = layers.resolve_impl("conv2d", args.conv)
  pool = layers.resolve_impl("max_pool", args.pool)
  t = args.inner
  extra = {} if args.generator_chunk is None else {"generator_chunk": args.generator_chunk}
  tspec = teacher.TeacherSpec(kind="generator", curriculum="full", image_shape=(28, 28, 1),
                              num_classes=10, inner_steps=t, batch_size=args.batch,
                              conv_impl=conv, pool_impl=pool, **extra)
  lspec = learners.make_learner(args.learner, (28, 28, 1), 10, conv_impl=conv, pool_impl=pool)
  setup = meta.MetaSetup(tspec, (lspec,), population=1, meta_batch_size=128,
                         probe_every=1, remat=args.remat)
  optimizer = meta.make_optimizer(0.02, 2000, 0.1, grad_clip=0.0)
  step = meta.make_meta_step(setup, optimizer)

  key = jax.random.key(0)
  data_key, init_key, run_key = jax.random.split(key, 3)
  # 4 T batches of normalised-MNIST-shaped noise, like the peer's pool.
  n = 4 * t * 128
  images = (jax.random.uniform(data_key, (n, 28, 28, 1)) - 0.1307) / 0.3081
  labels = jax.random.randint(data_key, (n,), 0, 10)
  state = meta.init_state(setup, optimizer, init_key)

  rss_before = rss_kib("VmRSS")
  t0 = time.perf_counter()
  lowered = step.lower(state, run_key, images, labels)
  compiled = lowered.compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  if isinstance(cost, list):
    cost = cost[0]
  flops = float(cost.get("flops", float("nan"))) if cost else float("nan")

  times, losses = [], []
  for i in range(args.iters):
    t0 = time.perf_counter()
    state, metrics = compiled(state, run_key, images, labels)
    loss = float(metrics["meta_loss"])  # blocks until the step is done
    times.append(time.perf_counter() - t0)
    losses.append(loss)
    print(json.dumps({"iteration": i, "seconds": times[-1], "meta_loss": loss,
                      "rss_mib": rss_kib("VmRSS") / 1024}), flush=True)
  timed = times[args.warmup:] or times
  res = {
      "impl": "gtnjax", "jax": jax.__version__, "backend": jax.default_backend(),
      "device": jax.devices()[0].device_kind, "inner": t, "remat": args.remat,
      "conv": conv, "pool": pool,
      "generator_chunk": tspec.generator_chunk,
      "n_timed": len(timed), "median_s": statistics.median(timed), "min_s": min(timed),
      "max_s": max(timed), "warmup_s": times[:args.warmup], "compile_s": compile_s,
      "flops": flops, "rss_before_loop_mib": rss_before / 1024,
      "peak_rss_mib": rss_kib("VmHWM") / 1024,
      "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "losses": losses,
  }
  print("RESULT " + json.dumps(res), flush=True)
  if args.out:
    with open(args.out, "w") as fh:
      json.dump(res, fh, indent=1)


if __name__ == "__main__":
  sys.exit(main())
