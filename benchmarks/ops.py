"""Per-primitive microbenchmarks: forward, first and second derivative.

For each primitive f at the shapes the paper-setting learner and generator
use, and for each implementation in gtnjax.layers, times (median of --reps
runs, each jitted and compiled beforehand):

  fwd   f(args)
  d1    value and gradient of L = sum(f(args) * c) w.r.t. every array arg
        (the inner step's backward pass)
  d2    gradient w.r.t. the args of sum_i <dL/d arg_i, u_i> (reverse over
        reverse, a Hessian-vector product with c held fixed)
  d2v   gradient w.r.t. the args *and the cotangent c* of
        sum_i <vjp_c(f)_i, u_i>: what the meta-gradient does to every layer
        of the inner step, since there c depends on the teacher too. For a
        bilinear op (conv, matmul) its floor is 6 forward matmuls' worth.

Ratios are to the same implementation's forward. Usage:
  python benchmarks/ops.py [--reps 7] [--quick] [--json out.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp

from gtnjax import layers


def _time(fn, args, reps):
  out = fn(*args)
  jax.block_until_ready(out)
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times), min(times), max(times)


def derivative_fns(f, num_args):
  def loss(args, c):
    return jnp.sum(f(*args) * c)

  fwd = jax.jit(lambda *a: f(*a))
  d1 = jax.jit(lambda args, c: jax.value_and_grad(loss)(args, c))

  def hvp_scalar(args, c, u):
    grads = jax.grad(loss)(args, c)
    return sum(jnp.vdot(g, ui) for g, ui in zip(grads, u))

  d2 = jax.jit(jax.grad(hvp_scalar))

  def vjp_scalar(args, c, u):
    _, pullback = jax.vjp(f, *args)
    grads = pullback(c)
    return sum(jnp.vdot(g, ui) for g, ui in zip(grads, u))

  d2v = jax.jit(jax.grad(vjp_scalar, argnums=(0, 1)))
  return fwd, d1, d2, d2v


def flops_of(fn, *args):
  try:
    cost = fn.lower(*args).compile().cost_analysis()
    if isinstance(cost, list):
      cost = cost[0]
    return float(cost.get("flops", float("nan")))
  except Exception:  # cost analysis is best effort
    return float("nan")


def cases(quick: bool):
  b = 128
  conv = [
      ("conv learner1 28x28 1->64", (b, 28, 28, 1), (3, 3, 1, 64)),
      ("conv learner2 14x14 64->128", (b, 14, 14, 64), (3, 3, 64, 128)),
      ("conv gen1 14x14 128->64", (b, 14, 14, 128), (3, 3, 128, 64)),
      ("conv gen2 28x28 64->1", (b, 28, 28, 64), (3, 3, 64, 1)),
  ]
  pool = [("max_pool 3/2 28x28x64", (b, 28, 28, 64)), ("max_pool 3/2 14x14x128", (b, 14, 14, 128))]
  if quick:
    conv, pool = conv[1:2], pool[:1]
  out = []
  for name, xs, ks in conv:
    for impl in layers.CONV_IMPLS:
      out.append((name, impl, functools.partial(layers.conv2d, impl=impl), (xs, ks)))
  for name, xs in pool:
    for impl in layers.POOL_IMPLS:
      out.append((name, impl, functools.partial(layers.max_pool, impl=impl), (xs,)))
  # The generator's upsample-then-conv layers: the phase form against
  # upsampling and convolving at full resolution ("upsample+conv").
  upsample = [("upsample_conv gen1 7x7 128->64", (b, 7, 7, 128), (3, 3, 128, 64)),
              ("upsample_conv gen2 14x14 64->1", (b, 14, 14, 64), (3, 3, 64, 1))]
  for name, xs, ks in ([] if quick else upsample):
    for impl in ("gemm", "lax"):
      out.append((name, impl, functools.partial(layers.upsample_conv2d, impl=impl), (xs, ks)))
    out.append((name, "upsample+conv",
                lambda x, k: layers.conv2d(layers.upsample_nearest(x), k, impl="gemm"), (xs, ks)))
  out.append(("weight_norm 6272x256", "jnp", layers.weight_norm, ((6272, 256), (256,))))
  out.append(("weight_norm 1024x6272", "jnp", layers.weight_norm, ((1024, 6272), (6272,))))
  out.append(("mean_only_bn 14x14x128", "jnp",
              lambda h, bias: layers.mean_only_batch_norm(h, bias)[0], ((b, 14, 14, 128), (128,))))
  out.append(("batch_norm 128x6272", "jnp", layers.batch_norm, ((b, 6272), (6272,), (6272,))))
  out.append(("batch_norm 14x14x64", "jnp", layers.batch_norm, ((b, 28, 28, 64), (64,), (64,))))
  out.append(("dense 6272->256", "jnp", layers.dense, ((b, 6272), (6272, 256))))
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--reps", type=int, default=7)
  ap.add_argument("--quick", action="store_true", help="one conv and one pool shape")
  ap.add_argument("--json", default=None)
  args = ap.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()})")
  header = (f"{'primitive':30s} {'impl':15s} {'fwd ms':>8s} {'d1 ms':>8s} {'d2 ms':>8s} "
            f"{'d2v ms':>8s} {'d1/f':>6s} {'d2/f':>6s} {'d2v/f':>6s} {'fwd GF/s':>8s}")
  print(header)
  rows = []
  key = jax.random.key(0)
  for name, impl, f, shapes in cases(args.quick):
    keys = jax.random.split(key, len(shapes) + 1)
    arrays = tuple(jax.random.normal(k, s) + (1.0 if len(s) == 1 else 0.0)
                   for k, s in zip(keys, shapes))
    fwd, d1, d2, d2v = derivative_fns(f, len(arrays))
    y = fwd(*arrays)
    c = jax.random.normal(keys[-1], y.shape)
    u = tuple(jax.random.normal(k, a.shape) for k, a in zip(jax.random.split(keys[-1], len(arrays)), arrays))
    t_f = _time(fwd, arrays, args.reps)
    t_1 = _time(d1, (arrays, c), args.reps)
    t_2 = _time(d2, (arrays, c, u), args.reps)
    t_2v = _time(d2v, (arrays, c, u), args.reps)
    flops = flops_of(fwd, *arrays)
    row = {"primitive": name, "impl": impl, "fwd_ms": 1e3 * t_f[0], "d1_ms": 1e3 * t_1[0],
           "d2_ms": 1e3 * t_2[0], "d2v_ms": 1e3 * t_2v[0],
           "fwd_spread_ms": [1e3 * t_f[1], 1e3 * t_f[2]],
           "d2v_spread_ms": [1e3 * t_2v[1], 1e3 * t_2v[2]], "fwd_flops": flops}
    rows.append(row)
    print(f"{name:30s} {impl:15s} {row['fwd_ms']:8.2f} {row['d1_ms']:8.2f} {row['d2_ms']:8.2f} "
          f"{row['d2v_ms']:8.2f} {t_1[0] / t_f[0]:6.1f} {t_2[0] / t_f[0]:6.1f} "
          f"{t_2v[0] / t_f[0]:6.1f} {flops / t_f[0] / 1e9:8.1f}", flush=True)
  if args.json:
    with open(args.json, "w") as fh:
      json.dump(rows, fh, indent=1)


if __name__ == "__main__":
  main()
