"""GTN-NAS with candidates that compile once (issue #21 part 1), side by side.

    TFDS_DATA_DIR=../shared/tfds python benchmarks/nas_compile_once.py [--candidates 4]

Two measurements at `experiments/configs/nas_fmnist.py` scale (Fashion-MNIST,
C=8, 16 GTN steps of B=32, 144 real-data steps of B=32, 10k validation
images, a 64-image zero-cost batch), in one process so the two forms of each
see the same machine:

1. **Every proxy of a new candidate** (the 5 zero-cost ones and the 4
   training ones), wall seconds per candidate, compilation included:
   - static: one program per architecture (the form of the committed study;
     caches are cleared per candidate as `gtnjax nas` did, so each pays its
     compilation);
   - compile-once: the masked network with the cell as an array argument,
     compiled on one warm-up candidate first; the timed candidates are new.
   Target: compile-once <= 3 s per candidate.
2. **One teacher meta-step** (population 4): the fixed-cell teacher (a static
   cell), the random-cell teacher ("cell:random", masked) with its
   population vmapped (the only form before), and with its population run
   one after another (`lax.map`, now the CPU default). Target: random-cell
   <= 2x fixed-cell. Median of --steps after one compiling step.

The teacher is at its initialisation: timing does not depend on its values.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import jax
import jax.numpy as jnp

from gtnjax import meta, parallel, train
from gtnjax.nas import config as nas_config, ground_truth, network, proxies
from gtnjax.nas.scoring import proxy_key

TEACHER_CELL = "conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"


def _score_all(spec, encoding, run, teacher_params, config, data, key):
  train_x, train_y, val_x, val_y = data
  x = train_x[:config.proxy_batch_size]
  y = train_y[:config.proxy_batch_size]
  zero = proxies.zero_cost_scores(spec, encoding, key, x, y)
  trained = proxies.training_scores(
      spec, encoding, run.teacher_spec, teacher_params, teacher_params, key, *data, 0.1, 0.1,
      proxies=proxies.TRAINING_PROXIES, gtn_steps=config.gtn_steps,
      long_steps=config.gtn_steps * config.long_proxy_factor,
      batch_size=config.teacher.inner_batch_size)
  return jax.block_until_ready({**zero, **trained})


def time_proxies(config, run, candidates, warmup):
  teacher_params = run.teacher_spec.init(run.keys()[0])
  d = run.dataset
  data = tuple(map(jnp.asarray, (d.train_images, d.train_labels, d.validation_images,
                                 d.validation_labels)))
  shape, classes = d.image_shape, d.num_classes
  common = dict(channels=config.channels, cells_per_stage=config.cells_per_stage,
                weight_norm=config.teacher.weight_norm)
  static_s, once_s, scores = [], [], []
  for enc in candidates:
    jax.clear_caches()
    spec = network.make(enc, shape, classes, **common)
    t0 = time.perf_counter()
    static_scores = _score_all(spec, None, run, teacher_params, config, data, proxy_key(0))
    static_s.append(time.perf_counter() - t0)
    scores.append(static_scores)
  jax.clear_caches()
  masked = network.make(None, shape, classes, **common)
  t0 = time.perf_counter()
  _score_all(masked, jnp.array(warmup), run, teacher_params, config, data, proxy_key(0))
  first = time.perf_counter() - t0
  largest_gap = 0.0
  for enc, want in zip(candidates, scores):
    t0 = time.perf_counter()
    got = _score_all(masked, jnp.array(enc), run, teacher_params, config, data, proxy_key(0))
    once_s.append(time.perf_counter() - t0)
    for name in ("gtn", "real_same_steps", "real_9x_steps"):
      largest_gap = max(largest_gap, abs(float(got[name]) - float(want[name])))
  return {"static_seconds": static_s, "compile_once_seconds": once_s,
          "compile_once_first_call_seconds": first,
          "largest_training_proxy_difference": largest_gap}


@dataclasses.dataclass(frozen=True)
class _VmappedCells(network.CellNetworkSpec):
  """The random-cell learner with its population vmapped (the form before)."""

  @property
  def vmap_population(self) -> bool:
    return True


def time_meta_steps(config, learner_name, num_steps, vmapped=False):
  teacher_config = config.teacher.copy_and_resolve_references()
  teacher_config.learner = learner_name
  run = train.prepare(teacher_config)
  if vmapped:
    fields = {f.name: getattr(run.setup.learners[0], f.name)
              for f in dataclasses.fields(network.CellNetworkSpec)}
    run.setup = dataclasses.replace(run.setup, learners=(_VmappedCells(**fields),))
  step_fn, mesh = train.make_step_fn(run)
  init_key, train_key = run.keys()
  state, images, labels = parallel.replicate(
      (meta.init_state(run.setup, run.optimizer, init_key), run.dataset.train_images,
       run.dataset.train_labels), mesh)
  times = []
  for _ in range(num_steps + 1):
    t0 = time.perf_counter()
    state, metrics = step_fn(state, train_key, images, labels)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  return {"compile_and_first_seconds": times[0], "median_seconds": statistics.median(times[1:])}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="experiments/configs/nas_fmnist.py")
  parser.add_argument("--candidates", type=int, default=4)
  parser.add_argument("--steps", type=int, default=3, help="timed meta-steps per teacher")
  parser.add_argument("--out", default=None, help="also write the result as JSON here")
  args = parser.parse_args()
  config = nas_config.load(args.config)
  rows = ground_truth.candidates(config)
  candidates = [tuple(e) for e in rows[1:1 + args.candidates]]
  run = train.prepare(config.teacher)
  result = {"machine": f"{jax.default_backend()}:{jax.devices()[0].device_kind}",
            "proxies": time_proxies(config, run, candidates, warmup=tuple(rows[0])),
            "meta_step": {
                "fixed_cell": time_meta_steps(config, f"cell:{TEACHER_CELL}", args.steps),
                "random_cell_vmapped": time_meta_steps(config, "cell:random", args.steps,
                                                       vmapped=True),
                "random_cell_one_after_another": time_meta_steps(config, "cell:random",
                                                                 args.steps)}}
  p = result["proxies"]
  p["static_median"] = statistics.median(p["static_seconds"])
  p["compile_once_median"] = statistics.median(p["compile_once_seconds"])
  m = result["meta_step"]
  m["random_over_fixed_vmapped"] = (m["random_cell_vmapped"]["median_seconds"]
                                    / m["fixed_cell"]["median_seconds"])
  m["random_over_fixed_one_after_another"] = (
      m["random_cell_one_after_another"]["median_seconds"] / m["fixed_cell"]["median_seconds"])
  print("RESULT " + json.dumps(result))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
