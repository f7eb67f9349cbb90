"""Per-architecture meta-gradients of a population (issue #22, part 3 diagnosis).

    TFDS_DATA_DIR=../shared/tfds python experiments/population_gradients.py \
        --learners cnn_small,mlp,cnn_small_gap --out results/population_gradients/mnist_t8_init

The population's meta-loss is the mean of each architecture's loss, so its
gradient is the mean of each architecture's gradient. If one architecture's
gradient is much smaller than the others', or points against them, the teacher
serves the others and that architecture is left behind. For the teacher at
initialisation (or a trained one, `--workdir`), this measures, over several
meta-step keys, each architecture's meta-gradient norm (before clipping), the
cosine between every pair, and each one's share of the mean gradient's
direction. Writes OUT/gradients.json and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import config as gconfig
from gtnjax import meta, train

import runner


def _flat(tree) -> jax.Array:
  return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def gradient_functions(run: train.Run) -> dict:
  """{architecture: jitted key -> its meta-gradient} at fixed teacher params;
  the curriculum and probes of a key are the same for every architecture."""
  functions = {}
  for spec in run.setup.learners:
    setup = dataclasses.replace(run.setup, learners=(spec,))
    loss = lambda p, k, s=setup: meta.meta_loss(
        p, s, k, run.dataset.train_images, run.dataset.train_labels)[0]
    functions[spec.name] = jax.jit(jax.grad(loss))
  return functions


def summarise(per_key: list[dict[str, np.ndarray]]) -> dict:
  names = list(per_key[0])
  cosine = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
  norms = {n: [float(np.linalg.norm(g[n])) for g in per_key] for n in names}
  pairs = {f"{a}|{b}": [cosine(g[a], g[b]) for g in per_key]
           for a, b in itertools.combinations(names, 2)}
  # Each architecture's component along the population's mean gradient: the
  # part of the update that its loss drives.
  share = {n: [] for n in names}
  for g in per_key:
    mean = np.mean([g[n] for n in names], axis=0)
    unit = mean / (np.linalg.norm(mean) + 1e-30)
    for n in names:
      share[n].append(float(g[n] @ unit / len(names) / (np.linalg.norm(mean) + 1e-30)))
  median = lambda v: float(np.median(v))
  return {"norm": norms, "cosine": pairs, "share_of_mean_gradient": share,
          "median": {"norm": {n: median(v) for n, v in norms.items()},
                     "cosine": {p: median(v) for p, v in pairs.items()},
                     "share_of_mean_gradient": {n: median(v) for n, v in share.items()}}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
  parser.add_argument("--config", default=os.path.join(runner.CONFIGS, "mnist.py") + ":cpu")
  parser.add_argument("--learners", default="cnn_small,mlp,cnn_small_gap")
  parser.add_argument("--inner-steps", type=int, default=8)
  parser.add_argument("--workdir", default="", help="a trained teacher (its config is used)")
  parser.add_argument("--keys", type=int, default=5, help="meta-step keys to average over")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  start = time.time()
  if args.workdir:
    run, params, step = train.load_teacher(args.workdir)
    source = f"{args.workdir} at meta-step {step}"
  else:
    config = gconfig.load_config_file(args.config)
    config.learner, config.inner_steps = args.learners, args.inner_steps
    run = train.prepare(config)
    params = meta.init_state(run.setup, run.optimizer, run.keys()[0]).teacher_params
    source = f"{args.config} learner={args.learners} inner_steps={args.inner_steps}, initial teacher"
  keys = jax.random.split(run.keys()[1], args.keys)
  functions = gradient_functions(run)
  result = summarise([{name: np.asarray(_flat(f(params, k))) for name, f in functions.items()}
                      for k in keys])
  result.update(source=source, keys=args.keys, seconds=round(time.time() - start, 1),
                population=run.setup.population)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "gradients.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(source)
  for name, value in result["median"]["norm"].items():
    print(f"  {name:16s} norm {value:9.3f}  share of the mean gradient "
          f"{result['median']['share_of_mean_gradient'][name]:+.3f}")
  for pair, value in result["median"]["cosine"].items():
    print(f"  cosine {pair:30s} {value:+.3f}")
  print(f"  ({result['seconds']} s; medians over {args.keys} keys)")


if __name__ == "__main__":
  main()
