"""Why gtnjax's default meta learning rate is 0.001, and why the generator's output
layer gets a data-dependent init (the two numbers quoted in RESULTS.md).

    python experiments/meta_lr_study.py            # ~5 minutes on 2 CPU cores

Writes results/meta_lr_study/result.json (what it prints), so the numbers
quoted in config.py and generator.py have their file.

1. Fraction of the untrained generator's pixels on tanh's flat tails (|x| > 1.9)
   on digits, with Kaiming init alone and with the data-dependent output init.
2. Mean probe accuracy per block of 10 meta-steps over 100 meta-steps of
   `digits.py:test` with T=8, meta-batch 64, initial inner lr 0.1, for Adam
   meta learning rates 0.02 (the paper's), 0.003 and 0.001.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import config as gconfig, generator, meta, parallel, rundir, train

CONFIG = "experiments/configs/digits.py:test"


def saturation(run, data_dependent: bool) -> float:
  spec = run.teacher_spec
  params = spec.init(run.keys()[0])
  if not data_dependent:
    gen_key = jax.random.split(run.keys()[0])[0]
    params["generator"] = generator.init_generator(
        gen_key, spec.noise_size + spec.num_classes, spec.image_shape)
  x = spec.batches(params, jax.random.key(1)).x
  return float(jnp.mean(jnp.abs(x) > 1.9))


def probe_accuracy_curve(meta_lr: float, steps: int = 100) -> list[float]:
  config = gconfig.apply_overrides(gconfig.load_config_file(CONFIG), {
      "inner_steps": "8", "meta_batch_size": "64", "init_inner_lr": "0.1",
      "meta_lr": str(meta_lr), "num_meta_steps": str(steps)})
  run = train.prepare(config)
  init_key, train_key = run.keys()
  step, mesh = train.make_step_fn(run)
  state, x, y = parallel.replicate((meta.init_state(run.setup, run.optimizer, init_key),
                                    run.dataset.train_images, run.dataset.train_labels), mesh)
  accuracies = []
  for _ in range(steps):
    state, metrics = step(state, train_key, x, y)
    accuracies.append(float(metrics["meta_accuracy"]))
  return [round(float(np.mean(accuracies[i:i + 10])), 3) for i in range(0, steps, 10)]


def main():
  start = time.time()
  run = train.prepare(gconfig.load_config_file(CONFIG))
  result = {"saturated_fraction": {"kaiming": saturation(run, False),
                                   "data_dependent": saturation(run, True)},
            "probe_accuracy_per_10_meta_steps": {}}
  print(f"untrained generator pixels with |x| > 1.9: Kaiming init "
        f"{result['saturated_fraction']['kaiming']:.2f}, data-dependent output init "
        f"{result['saturated_fraction']['data_dependent']:.2f}", flush=True)
  for meta_lr in (0.02, 0.003, 0.001):
    curve = probe_accuracy_curve(meta_lr)
    result["probe_accuracy_per_10_meta_steps"][str(meta_lr)] = curve
    print(f"meta_lr {meta_lr}: mean probe accuracy per 10 meta-steps {curve}", flush=True)
  result.update(config=CONFIG, wall_seconds=round(time.time() - start, 1),
                machine=f"{jax.default_backend()}: {os.cpu_count()} CPU cores")
  out = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "results",
                     "meta_lr_study")
  os.makedirs(out, exist_ok=True)
  rundir.write_json(os.path.join(out, "result.json"), result)


if __name__ == "__main__":
  main()
