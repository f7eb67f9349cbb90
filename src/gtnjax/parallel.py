"""Scale-out: the learner population sharded over devices, and over hosts.

One meta-step trains P learners per architecture on the same curriculum. They
are independent until their probe losses are averaged, so the population axis
is the natural one to split: each device trains P / D learners, and the
gradient of the mean meta-loss is summed over devices by one all-reduce. The
teacher's parameters and optimizer state are small and replicated; every
device runs the generator (one curriculum per meta-step, shared by all
learners) and its backward pass, rather than receiving its output: that work is
not divided, so the speed-up falls short of D when the generator costs as much
as P / D learners' unrolls.

Layout on a 1-D mesh with axis "population" over all (global) devices:

  state (teacher params, optimizer state, counters)  replicated
  population keys [A, P]                             P(None, "population")
  learner weights, inner loop, probe losses [P]      sharded along P (GSPMD)
  probe batches [T/k, M, ...]                        drawn split along M, then
                                                     all-gathered: every learner
                                                     is scored on all M images
  train_images [N, H, W, C], train_labels [N]        replicated (default), or
                                                     split along N with
                                                     data="sharded"

The random numbers are those of the single-device step: the keys are made
exactly as in `meta.meta_loss` and only then constrained, and JAX's
partitionable threefry draws the same bits whatever the sharding. Results
match the single-device step to float rounding (the population mean is summed
in a different order).

Splitting the probe batch's M axis does not divide any compute on a 1-D mesh
(each device already scores only its own P / D learners, each on all M
images); it splits the gather of the probe images out of the training set,
which is what reads the data. With `data="sharded"` each device holds N / D
training images and each process reads only its own share from disk
(`process_share`, `global_data`); the gathers then fetch rows from whichever
device holds them. Small data sets (MNIST: 190 MB as float32, CIFAR-10: 600 MB)
are simplest replicated: every process loads the whole set.

Multi-host: call `initialize_distributed()` first thing, before any other JAX
call. Every process then runs the same program on the same arguments (same
config, same seed, same step): the jitted step is one global computation over
all processes' devices. Orbax saves the replicated state collectively (every
process calls `save`; the primary writes) and restores it onto the mesh with
`abstract_state`.

API used by the training loop:

  parallel.initialize_distributed(coordinator_address, num_processes, process_id)
  mesh = parallel.make_mesh()                        # 1-D, axis "population"
  parallel.check_population(setup.population, setup.meta_batch_size, mesh)
  step_fn = meta.make_meta_step(setup, optimizer, mesh)
  state = parallel.replicate(meta.init_state(setup, optimizer, key), mesh)
  images, labels = parallel.replicate((images, labels), mesh)
  state, metrics = step_fn(state, key, images, labels)   # as on a 1-device mesh
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "population"

# Set to 1 to call jax.distributed.initialize() (auto-detection) where this
# module's own detection finds no cluster, e.g. on a multi-host Cloud TPU VM
# whose workers are known only to the metadata server.
FORCE_ENV_VAR = "GTNJAX_DISTRIBUTED"

# Seconds without a heartbeat after which JAX's coordinator declares a process
# dead and stops every other one with an error naming it ("Task 1 heartbeat
# timeout ... The following tasks are unhealthy (stopped sending heartbeats):
# 1"). Where no launcher kills the survivors (multinode_manual.sh; srun does,
# with --kill-on-bad-exit), this is how long they take to fail once a process
# dies: each survivor's collective fails at once (the peer's socket closes),
# but its exit then waits at JAX's shutdown barrier for the lost process.
# JAX's default is 100 s; heartbeats come from a background thread, so a busy
# or compiling process keeps sending them.
HEARTBEAT_TIMEOUT_ENV_VAR = "GTNJAX_HEARTBEAT_TIMEOUT_S"
DEFAULT_HEARTBEAT_TIMEOUT_S = 30


def heartbeat_timeout_s(environ: Mapping[str, str] | None = None) -> int:
  """The heartbeat timeout: $GTNJAX_HEARTBEAT_TIMEOUT_S, else 30 s."""
  env = os.environ if environ is None else environ
  value = env.get(HEARTBEAT_TIMEOUT_ENV_VAR, "")
  if not value:
    return DEFAULT_HEARTBEAT_TIMEOUT_S
  try:
    seconds = int(value)
  except ValueError:
    seconds = 0
  if seconds < 1:
    raise ValueError(f"{HEARTBEAT_TIMEOUT_ENV_VAR}={value!r}: set it to a whole number of "
                     "seconds >= 1, or unset it for the default "
                     f"({DEFAULT_HEARTBEAT_TIMEOUT_S} s)")
  return seconds


# ------------------------------------------------------------------- hosts
def detect_cluster(environ: Mapping[str, str] | None = None) -> str | None:
  """Which multi-process launcher started this process, if any.

  Only launchers that started more than one process count: a one-task SLURM
  job or a single `mpirun -n 1` runs as a plain single process.

  Why not leave detection to `jax.distributed.initialize()`: it does detect
  these clusters, but only inside the call, with no public way to ask first,
  and with no cluster it raises ("coordinator_address should be defined",
  checked with jax 0.10) while on a one-task SLURM job it starts a coordinator
  service for one process. So this decides *whether* to call it; the call
  itself still reads every address, count and rank from the environment.

  Args:
    environ: the environment to inspect (default `os.environ`).

  Returns:
    "explicit" (JAX_COORDINATOR_ADDRESS set), "forced" (GTNJAX_DISTRIBUTED=1),
    "slurm", "ompi", "tpu", "kubernetes", or None for a single process.
  """
  env = os.environ if environ is None else environ

  def count(name):
    try:
      return int(env.get(name, "1"))
    except ValueError:
      return 1

  if env.get("JAX_COORDINATOR_ADDRESS"):
    return "explicit"
  if env.get(FORCE_ENV_VAR, "").lower() in ("1", "true", "yes"):
    return "forced"
  slurm_vars = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
                "SLURM_LOCALID")
  if all(v in env for v in slurm_vars) and count("SLURM_NTASKS") > 1:
    return "slurm"
  if "OMPI_MCA_orte_hnp_uri" in env and count("OMPI_COMM_WORLD_SIZE") > 1:
    return "ompi"
  hosts = env.get("TPU_PROCESS_ADDRESSES") or env.get("TPU_WORKER_HOSTNAMES") or ""
  if len([h for h in hosts.split(",") if h]) > 1:
    return "tpu"
  if "KUBERNETES_SERVICE_HOST" in env and "JOB_COMPLETION_INDEX" in env:
    return "kubernetes"  # an indexed Job; needs `pip install jax[k8s]`
  return None


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
  """Joins this process to a multi-process JAX run, or does nothing.

  Call it before any other JAX call (it must precede backend initialisation).
  With any argument given, or a cluster detected by `detect_cluster`, it calls
  `jax.distributed.initialize`, which fills in whatever is left unset from the
  environment (SLURM, Open MPI, Cloud TPU, Kubernetes, or the variables
  JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID). Otherwise this
  is a single-process run and nothing happens. If a process of the run dies,
  the others stop within `heartbeat_timeout_s()` with an error naming it.

  Args:
    coordinator_address: "host:port" of process 0's coordinator service.
    num_processes: total number of processes.
    process_id: this process's index in [0, num_processes).

  Returns:
    True if the run is multi-process (initialised now or before).

  Raises:
    ValueError: explicit arguments that cannot describe a run.
  """
  if jax.distributed.is_initialized():
    return True
  explicit = (coordinator_address, num_processes, process_id)
  if any(a is not None for a in explicit):
    if num_processes is not None and num_processes < 1:
      raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if (process_id is not None and num_processes is not None
        and not 0 <= process_id < num_processes):
      raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    if num_processes == 1 and coordinator_address is None:
      return False
  else:
    cluster = detect_cluster()
    if cluster is None:
      return False
    logging.info("gtnjax: multi-process run detected (%s)", cluster)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id,
                             heartbeat_timeout_seconds=heartbeat_timeout_s())
  logging.info("gtnjax: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return True


def is_main_process() -> bool:
  """True on the process that logs and writes non-collective files."""
  return jax.process_index() == 0


# ------------------------------------------------------------------ devices
def make_mesh(num_devices: int | None = None, devices: list | None = None) -> Mesh:
  """A 1-D mesh with axis "population" over the first `num_devices` devices.

  The axis type is Auto: the meta-step is written for one device and
  partitioned by GSPMD from a few sharding constraints, rather than with
  explicit per-array shardings (jax.make_mesh's default since JAX 0.8).

  Args:
    num_devices: default all global devices (every process's); a smaller
      number is for tests on one process.
    devices: the devices to take them from (default `jax.devices()`).
  """
  devices = jax.devices() if devices is None else list(devices)
  if num_devices is not None:
    if not 1 <= num_devices <= len(devices):
      raise ValueError(f"num_devices={num_devices}, but {len(devices)} devices are visible")
    devices = devices[:num_devices]
  return jax.make_mesh((len(devices),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def _size(mesh: Mesh | int) -> int:
  return mesh if isinstance(mesh, int) else mesh.shape[AXIS]


def check_population(population: int, meta_batch_size: int | None,
                     mesh: Mesh | int) -> None:
  """Raises ValueError (naming the fix) unless D devices split the work evenly.

  Args:
    population: learners per architecture per meta-step (config `population`).
    meta_batch_size: images per probe batch (config `meta_batch_size`); None
      skips its check.
    mesh: the mesh, or its number of devices D.
  """
  if isinstance(meta_batch_size, Mesh):
    raise TypeError("check_population(population, meta_batch_size, mesh): "
                    "meta_batch_size comes before the mesh")
  d = _size(mesh)
  for field, value in (("population", population), ("meta_batch_size", meta_batch_size)):
    if value is not None and value % d:
      below, above = value // d * d, -(-value // d) * d
      options = f"{above}" if below == 0 else f"{below} or {above}"
      raise ValueError(
          f"{field}={value} cannot be split over {d} devices: set --config.{field} to a "
          f"multiple of {d} (e.g. {options}), or run on a number of devices that "
          f"divides {value}")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (example) axis split over the mesh."""
  return NamedSharding(mesh, P(AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Every leaf (arrays, numpy arrays, PRNG keys) on every device of the mesh.

  Multi-process: every process must pass the same values (same seed, same
  data; not checked), and each copies its own to its local devices, with no
  communication. Place the training set once with this rather than passing
  numpy arrays to the step, which would copy them to the devices every call.
  """
  sharding = replicated(mesh)
  multiprocess = jax.process_count() > 1

  def place(x):
    if isinstance(x, jax.Array):
      if x.committed and x.sharding == sharding:
        return x
      if not multiprocess or not x.is_fully_addressable:
        return jax.device_put(x, sharding)
      if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(place(np.asarray(jax.random.key_data(x))),
                                        impl=jax.random.key_impl(x))
    if not multiprocess:
      return jax.device_put(x, sharding)
    # device_put would refuse a local jax.Array for a global sharding, and for
    # host data would all-gather it to check it is the same everywhere.
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(place, tree)


def abstract_state(tree: Any, mesh: Mesh) -> Any:
  """ShapeDtypeStructs with replicated shardings: the target of an Orbax restore.

  `tree` may be concrete arrays or the output of `jax.eval_shape`.
  """
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      tree)


# --------------------------------------------------------------------- data
def usable_examples(num_examples: int, mesh: Mesh | int) -> int:
  """The largest multiple of D not above num_examples (sharded data only)."""
  return num_examples - num_examples % _size(mesh)


def process_share(num_examples: int, mesh: Mesh) -> slice:
  """The rows of the training set this process reads when data="sharded".

  Rows beyond `usable_examples` (fewer than D) are dropped by every process,
  so that N splits evenly over the devices.

  Raises:
    ValueError: the mesh does not give this process a contiguous block of rows
      (never for `make_mesh` on CPU and GPU, where devices are grouped by
      process).
  """
  n = usable_examples(num_examples, mesh)
  rows = sorted((idx[0].start or 0, idx[0].stop if idx[0].stop is not None else n)
                for idx in data_sharding(mesh).addressable_devices_indices_map((n,)).values())
  for (_, stop), (start, _) in zip(rows, rows[1:]):
    if stop != start:
      raise ValueError("this mesh interleaves processes' devices, so a process's share of "
                       "the data is not one block: use data='replicated'")
  return slice(rows[0][0], rows[-1][1])


def global_data(local_images: np.ndarray, local_labels: np.ndarray, mesh: Mesh,
                num_examples: int) -> tuple[jax.Array, jax.Array]:
  """Global [N', ...] arrays split along N from each process's own share.

  Args:
    local_images: this process's rows, `images[process_share(num_examples, mesh)]`.
    local_labels: the same rows' labels.
    mesh: from `make_mesh`.
    num_examples: N of the whole training set (before `usable_examples`).

  Returns:
    (train_images, train_labels) for `meta.make_meta_step(..., data="sharded")`.
  """
  n = usable_examples(num_examples, mesh)
  share = process_share(num_examples, mesh)
  if local_images.shape[0] != share.stop - share.start or local_labels.shape[0] != local_images.shape[0]:
    raise ValueError(f"this process must pass rows {share.start}:{share.stop} of the training "
                     f"set, got {local_images.shape[0]} images and {local_labels.shape[0]} labels")
  sharding = data_sharding(mesh)
  images = jax.make_array_from_process_local_data(sharding, np.asarray(local_images),
                                                  (n, *local_images.shape[1:]))
  labels = jax.make_array_from_process_local_data(sharding, np.asarray(local_labels), (n,))
  return images, labels


# --------------------------------------------------------------- meta-step
class Placement(NamedTuple):
  """Where `meta_loss` lays out its batched arrays (`placement` builds one
  for a mesh). It changes where the work runs, never the numbers drawn.

  Attributes:
    population_keys: sharding of the [A, P] learner keys; everything vmapped
      over them (learner init, the unrolled inner loop, the probe losses and
      their gradients) follows it.
    probes: shardings the probe batches are constrained to, in turn (drawn
      split, then gathered to every device).
  """
  population_keys: jax.sharding.Sharding
  probes: tuple[jax.sharding.Sharding, ...]


def placement(mesh: Mesh) -> Placement:
  """The `Placement` that lays the meta-loss out on `mesh`."""
  # Each device gathers M / D probe rows from the training set, then the rows
  # are all-gathered: every learner is scored on all M.
  return Placement(population_keys=NamedSharding(mesh, P(None, AXIS)),  # keys [A, P]
                        probes=(NamedSharding(mesh, P(None, AXIS)),  # [T/k, M, ...]
                                replicated(mesh)))
