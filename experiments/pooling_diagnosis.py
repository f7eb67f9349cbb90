"""Can a global-pooling network read GTN data at all? (issue #22, part 3 diagnosis)

    TFDS_DATA_DIR=../shared/tfds python experiments/pooling_diagnosis.py \
        --workdir runs/gtn_vs_real_data/mnist_t32_s0 --out results/pooling_diagnosis/mnist_t32_s0

A teacher meta-trained on `cnn_small` leaves the global-average-pooling
networks near chance after its T steps, while T real steps teach them. Two
explanations predict different things when the same T*B images are trained on
for many epochs (constant lr and momentum, the best of a small grid on the
validation split):
  - the images are fine, only too few steps: a pooling network then fits
    them and its validation accuracy rises towards what as many real images
    give it;
  - the class information is in a form a pooling network cannot use (e.g.
    where on the image a pattern lies, which global pooling discards): it may
    fit the images, but its validation accuracy stays far below the real
    images'.
For each learner: validation accuracy after the teacher's own T steps, and
after E epochs over its T*B images and over T*B real training images; and the
accuracy on the training images themselves (fit). 3 fresh learners each.
Writes OUT/diagnosis.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import evaluation, inner_loop, train
from gtnjax.teacher import InnerBatches, draw_rows

GRID = ((0.03, 0.9), (0.1, 0.5), (0.1, 0.9), (0.3, 0.5))


def epochs_of(images, targets, epochs: int, batch_size: int, lr: float, momentum: float,
              key) -> InnerBatches:
  """`epochs` shuffled passes over (images, targets) as inner batches."""
  n = images.shape[0]
  order = jnp.concatenate([jax.random.permutation(k, n) for k in jax.random.split(key, epochs)])
  steps = order.size // batch_size
  order = order[:steps * batch_size].reshape(steps, batch_size)
  return InnerBatches(images[order], targets[order], jnp.full((steps,), lr),
                      jnp.full((steps,), momentum))


train_learner = jax.jit(evaluation.train_learner, static_argnums=0)


def accuracy(spec, state, images, labels) -> float:
  return float(inner_loop.evaluate(spec, state, images, labels)[1])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
  parser.add_argument("--workdir", required=True, help="a trained GTN teacher")
  parser.add_argument("--learners", default="cnn_small,cnn_small_gap,cnn_gap")
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  start = time.time()
  run, params, step = train.load_teacher(args.workdir)
  tspec, data = run.teacher_spec, run.dataset
  val_images, val_labels = data.validation_images, data.validation_labels
  result = {"workdir": args.workdir, "meta_step": step, "epochs": args.epochs,
            "grid": GRID, "seeds": args.seeds, "learners": {}}
  for name in args.learners.split(","):
    spec = run.learner_spec(name)
    rows = {"teacher_T_steps": [], "gtn_fit": [], "gtn_epochs": [], "real_fit": [],
            "real_epochs": []}
    for seed in range(args.seeds):
      teacher_key, learner_key, real_key, order_key = jax.random.split(jax.random.key(seed), 4)
      batches = tspec.batches(params, teacher_key, data.train_images, data.train_labels)
      state = train_learner(spec, learner_key, batches)
      rows["teacher_T_steps"].append(accuracy(spec, state, val_images, val_labels))
      gtn_x = batches.x.reshape(-1, *batches.x.shape[2:])
      gtn_y = batches.y.reshape(-1, batches.y.shape[-1])
      real_x, real_labels = draw_rows(real_key, data.train_images, data.train_labels,
                                      (gtn_x.shape[0],))
      real_y = jax.nn.one_hot(real_labels, spec.num_classes)
      for kind, (x, y) in (("gtn", (gtn_x, gtn_y)), ("real", (real_x, real_y))):
        best = None
        for lr, momentum in GRID:
          trained = train_learner(spec, learner_key, epochs_of(
              x, y, args.epochs, tspec.batch_size, lr, momentum, order_key))
          score = accuracy(spec, trained, val_images, val_labels)
          if best is None or score > best[0]:
            best = (score, accuracy(spec, trained, x, jnp.argmax(y, -1)), lr, momentum)
        rows[f"{kind}_epochs"].append(best[0])
        rows[f"{kind}_fit"].append(best[1])
    result["learners"][name] = {k: {"mean": float(np.mean(v)), "values": v}
                                for k, v in rows.items()}
    print(name, {k: round(float(np.mean(v)), 3) for k, v in rows.items()}, flush=True)
  result["seconds"] = round(time.time() - start, 1)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "diagnosis.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(f"({result['seconds']} s)")


if __name__ == "__main__":
  main()
