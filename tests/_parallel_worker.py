"""Worker for tests/test_parallel.py: runs meta-steps on fake CPU devices.

The number of CPU devices is fixed when JAX starts, so each configuration runs
in its own process, started by the test with this script:

  python tests/_parallel_worker.py --devices 8 --out r.npz
      one process, 8 devices: the single-device step (meta.make_meta_step, on
      device 0) and the sharded step (meta.make_meta_step on a mesh of all devices), both
      saved to r.npz.
  python tests/_parallel_worker.py --devices 2 --num_processes 2 --process_id I
      --coordinator_address localhost:PORT --data sharded --checkpoint_dir D
      --no_reference --out rI.npz
      process I of 2 (4 global devices); each process reads its own share of the
      training set, saves the state with Orbax collectively and restores it.

Saved arrays: "ref/<name>" and "sharded/<name>" for every metric of every step
and every leaf of the final state; the test compares them.
"""

import argparse
import os
import re
import sys


def parse_args():
  parser = argparse.ArgumentParser()
  parser.add_argument("--devices", type=int, required=True, help="local CPU devices")
  parser.add_argument("--num_processes", type=int, default=None)
  parser.add_argument("--process_id", type=int, default=None)
  parser.add_argument("--coordinator_address", default=None)
  parser.add_argument("--data", choices=("replicated", "sharded"), default="replicated")
  parser.add_argument("--teacher", default="distillation")
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--checkpoint_dir", default=None)
  parser.add_argument("--no_reference", action="store_true",
                      help="skip the single-device run (the test has it from another run)")
  parser.add_argument("--out", required=True)
  return parser.parse_args()


ARGS = parse_args()
# Must precede the first import of jax.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + f" --xla_force_host_platform_device_count={ARGS.devices}")
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

from gtnjax import parallel  # noqa: E402

parallel.initialize_distributed(ARGS.coordinator_address, ARGS.num_processes, ARGS.process_id)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from gtnjax import learners, meta, teacher  # noqa: E402

SHAPE = (8, 8, 1)
CLASSES = 3
NUM_EXAMPLES = 48  # a multiple of 4 and 8, so every layout uses the same rows


def tiny_setup(kind):
  tspec = teacher.TeacherSpec(kind=kind, curriculum="full", image_shape=SHAPE,
                              num_classes=CLASSES, inner_steps=2, batch_size=6, noise_size=4,
                              init_lr=0.1, generator_chunk=1)
  lspec = learners.LearnerSpec(name="tiny", input_shape=SHAPE, num_classes=CLASSES,
                               conv_widths=(3,), hidden_widths=(5,))
  return meta.MetaSetup(tspec, (lspec,), population=8, meta_batch_size=8, probe_every=1)


def dataset():
  """The whole training set; every process can make it (the test's stand-in for disk)."""
  rng = np.random.default_rng(0)
  images = rng.standard_normal((NUM_EXAMPLES, *SHAPE)).astype(np.float32)
  labels = (np.arange(NUM_EXAMPLES) % CLASSES).astype(np.int32)
  return images, labels


def local_value(x):
  """A replicated (possibly multi-process) array as numpy."""
  return np.asarray(x.addressable_data(0))


def run(step_fn, state, key, images, labels, steps):
  metrics = []
  for _ in range(steps):
    state, m = step_fn(state, key, images, labels)
    metrics.append(m)
  return state, metrics


def record(out, prefix, state, metrics):
  for i, m in enumerate(metrics):
    for name, value in m.items():
      out[f"{prefix}/step{i}/{name}"] = local_value(value)
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    out[f"{prefix}/state{jax.tree_util.keystr(path)}"] = local_value(leaf)


def main():
  setup = tiny_setup(ARGS.teacher)
  # Plain SGD: Adam's normalisation would turn rounding-level gradient
  # differences on near-zero entries into lr-sized parameter differences.
  optimizer = optax.chain(optax.clip_by_global_norm(10.0), optax.sgd(0.05))
  init_key, run_key = jax.random.split(jax.random.key(0))
  images, labels = dataset()
  out = {}

  if not ARGS.no_reference:
    # Single-device reference: meta.make_meta_step on this process's first device.
    device = jax.local_devices()[0]
    ref_state = jax.device_put(meta.init_state(setup, optimizer, init_key), device)
    ref_state, ref_metrics = run(meta.make_meta_step(setup, optimizer), ref_state,
                                 jax.device_put(run_key, device),
                                 *jax.device_put((images, labels), device), ARGS.steps)
    record(out, "ref", ref_state, ref_metrics)

  # Sharded over every device of every process.
  mesh = parallel.make_mesh()
  traces = []  # how often the sharded step traces meta.meta_step (its compiles)
  def counted_meta_step(*args, **kwargs):
    traces.append(1)
    return original_meta_step(*args, **kwargs)
  original_meta_step, meta.meta_step = meta.meta_step, counted_meta_step
  step_fn = meta.make_meta_step(setup, optimizer, mesh, data=ARGS.data)
  state = parallel.replicate(meta.init_state(setup, optimizer, init_key), mesh)
  key = parallel.replicate(run_key, mesh)
  if ARGS.data == "sharded":
    share = parallel.process_share(NUM_EXAMPLES, mesh)
    out["share"] = np.array([share.start, share.stop])
    # Only this process's rows leave "disk".
    train_images, train_labels = parallel.global_data(images[share], labels[share], mesh,
                                                      NUM_EXAMPLES)
  else:
    train_images, train_labels = parallel.replicate((images, labels), mesh)
  compiled = step_fn.lower(state, key, train_images, train_labels).compile().as_text()
  # Per-device population: the leading dim of the learners' [P_local, 3, 3, 1, 3]
  # conv kernels in the partitioned program (8 if the population were not split).
  local = {int(m) for m in re.findall(r"f32\[(\d+),3,3,1,3\]", compiled)}
  out["local_population"] = np.array(sorted(local))
  state, metrics = run(step_fn, state, key, train_images, train_labels, ARGS.steps)
  out["compiles"] = np.array(len(traces))
  out["state_replicated"] = np.array(all(
      leaf.sharding.is_fully_replicated and leaf.sharding.mesh == mesh
      for leaf in jax.tree.leaves(state)))
  record(out, "sharded", state, metrics)

  if ARGS.checkpoint_dir:
    import orbax.checkpoint as ocp  # noqa: PLC0415 (only the multi-process run needs it)
    with ocp.CheckpointManager(ARGS.checkpoint_dir) as manager:
      manager.save(ARGS.steps, args=ocp.args.StandardSave(state))
      manager.wait_until_finished()
    with ocp.CheckpointManager(ARGS.checkpoint_dir) as manager:
      restored = manager.restore(
          manager.latest_step(),
          args=ocp.args.StandardRestore(parallel.abstract_state(state, mesh)))
    record(out, "restored", restored, [])
    # The restored state continues the run: one more step from it must equal
    # one more step from the live state.
    _, (after_restore,) = run(step_fn, restored, key, train_images, train_labels, 1)
    _, (after_live,) = run(step_fn, state, key, train_images, train_labels, 1)
    for name in after_live:
      out[f"resumed/{name}"] = local_value(after_restore[name])
      out[f"live/{name}"] = local_value(after_live[name])

  out["process_index"] = np.array(jax.process_index())
  out["process_count"] = np.array(jax.process_count())
  out["device_count"] = np.array(jax.device_count())
  np.savez(ARGS.out, **out)
  print(f"process {jax.process_index()}: wrote {ARGS.out}", file=sys.stderr)


if __name__ == "__main__":
  main()
