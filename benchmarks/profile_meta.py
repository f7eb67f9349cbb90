"""Where a gtnjax meta-iteration spends its time, op by op (XLA:CPU thunks).

Runs one warm meta-iteration under jax.profiler, then prints the slowest
compiled ops (fusions, dots) with their shapes from the optimised HLO, and
totals per op category. A diagnostic, not a benchmark.

Usage: python benchmarks/profile_meta.py --inner 2 [--top 30] [--remat block]
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile

import jax
import jax.numpy as jnp

from gtnjax import learners, meta, teacher


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--inner", type=int, default=2)
  ap.add_argument("--remat", default="block")
  ap.add_argument("--top", type=int, default=30)
  args = ap.parse_args()
  t = args.inner
  tspec = teacher.TeacherSpec(kind="generator", curriculum="full", image_shape=(28, 28, 1),
                              num_classes=10, inner_steps=t, batch_size=128)
  lspec = learners.make_learner("cnn", (28, 28, 1), 10)
  setup = meta.MetaSetup(tspec, (lspec,), population=1, meta_batch_size=128,
                         probe_every=1, remat=args.remat)
  opt = meta.make_optimizer(0.02, 2000, 0.1, 0.0)
  key = jax.random.key(0)
  images = jax.random.normal(key, (4 * t * 128, 28, 28, 1))
  labels = jnp.zeros((4 * t * 128,), jnp.int32)
  state = meta.init_state(setup, opt, key)
  compiled = meta.make_meta_step(setup, opt).lower(state, key, images, labels).compile()
  shapes = {}
  for line in compiled.as_text().splitlines():
    m = re.match(r"\s*(?:ROOT )?%(\S+) = (\S+) (\S+)\(", line)
    if m:
      shapes[m.group(1)] = f"{m.group(2)} {m.group(3)}"
  state, m = compiled(state, key, images, labels)
  jax.block_until_ready(m)
  logdir = tempfile.mkdtemp()
  jax.profiler.start_trace(logdir, create_perfetto_trace=True)
  state, m = compiled(state, key, images, labels)
  jax.block_until_ready(m)
  jax.profiler.stop_trace()
  trace = sorted(glob.glob(f"{logdir}/**/*.trace.json.gz", recursive=True))[-1]
  events = json.load(gzip.open(trace))
  events = events["traceEvents"] if isinstance(events, dict) else events
  total, count = collections.Counter(), collections.Counter()
  for e in events:
    if e.get("ph") == "X" and e["name"] in shapes:
      total[e["name"]] += e.get("dur", 0)
      count[e["name"]] += 1
  by_kind = collections.Counter()
  for name, dur in total.items():
    kind = re.sub(r"\.\d+$", "", name)
    kind = "dot (ynn/eigen)" if ("ynn" in kind or "dot" in kind or "xnn" in kind) else kind
    by_kind[kind] += dur
  print(f"ops total {sum(total.values()) / 1e3:.0f} ms")
  for kind, dur in by_kind.most_common(15):
    print(f"  {dur / 1e3:9.1f} ms  {kind}")
  print("slowest ops:")
  for name, dur in total.most_common(args.top):
    print(f"  {dur / 1e3:9.1f} ms  x{count[name]:<4d} {name:32s} {shapes[name][:90]}")


if __name__ == "__main__":
  main()
