"""gtnjax.parallel: the sharded meta-step equals the single-device one.

JAX fixes its device count when it starts, so the runs on 8 fake CPU devices
(one process) and on 2 processes x 2 devices (CPU collectives over gloo) are
subprocesses running tests/_parallel_worker.py; a plain `pytest tests/` needs
no flags. The checks that need no devices run here.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gtnjax import parallel

WORKER = Path(__file__).with_name("_parallel_worker.py")
TIMEOUT_S = 300
# Launchers the workers must not see, or they would try to join a cluster.
CLUSTER_ENV_PREFIXES = ("SLURM_", "OMPI_", "PMI_", "TPU_", "JAX_COORDINATOR", "JAX_NUM_PROC",
                        "JAX_PROCESS", "KUBERNETES_", parallel.FORCE_ENV_VAR)


def worker_env():
  env = {k: v for k, v in os.environ.items() if not k.startswith(CLUSTER_ENV_PREFIXES)}
  env.pop("XLA_FLAGS", None)
  env.pop("JAX_ENABLE_X64", None)
  return env


def start_worker(*args):
  return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], env=worker_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc):
  try:
    output, _ = proc.communicate(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    proc.kill()
    output, _ = proc.communicate()
    pytest.fail(f"worker timed out after {TIMEOUT_S} s:\n{output[-5000:]}")
  assert proc.returncode == 0, f"worker failed:\n{output[-5000:]}"


def load(path):
  with np.load(path) as data:
    return dict(data)


def assert_close(expected, actual, prefix_expected, prefix_actual, rtol=1e-5, atol=1e-6):
  names = sorted(k[len(prefix_expected):] for k in expected if k.startswith(prefix_expected))
  assert names, f"nothing under {prefix_expected}"
  for name in names:
    np.testing.assert_allclose(actual[prefix_actual + name], expected[prefix_expected + name],
                               rtol=rtol, atol=atol, err_msg=name)
  return names


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
  """One process, 8 fake devices: the single-device reference and the sharded run."""
  out = tmp_path_factory.mktemp("parallel") / "eight.npz"
  finish(start_worker("--devices", 8, "--out", out))
  return load(out)


@pytest.mark.slow  # worker processes, each compiling meta-steps
def test_sharded_step_matches_single_device(eight_devices):
  r = eight_devices
  names = assert_close(r, r, "ref/", "sharded/")
  assert any("pixels" in n for n in names) and any("meta_loss" in n for n in names)
  # Two meta-steps, one compilation; one learner per device in the program.
  assert int(r["compiles"]) == 1
  assert r["local_population"].tolist() == [1]
  assert bool(r["state_replicated"])


def free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # worker processes, each compiling meta-steps
def test_two_processes_match_one_process(eight_devices, tmp_path):
  """2 processes x 2 devices, each reading half the data, Orbax saving collectively."""
  address = f"localhost:{free_port()}"
  outs = [tmp_path / f"process{i}.npz" for i in range(2)]
  procs = [start_worker("--devices", 2, "--num_processes", 2, "--process_id", i,
                        "--coordinator_address", address, "--data", "sharded",
                        "--checkpoint_dir", tmp_path / "checkpoints", "--no_reference",
                        "--out", outs[i]) for i in range(2)]
  for proc in procs:
    finish(proc)
  results = [load(out) for out in outs]
  for i, r in enumerate(results):
    assert (int(r["process_index"]), int(r["process_count"]), int(r["device_count"])) == (i, 2, 4)
    assert r["share"].tolist() == [24 * i, 24 * (i + 1)]  # each read its own half
    assert r["local_population"].tolist() == [2]
    assert int(r["compiles"]) == 1 and bool(r["state_replicated"])
    # Same metrics and teacher as one process on one device.
    assert_close(eight_devices, r, "ref/", "sharded/")
    # The collectively written checkpoint restores the state exactly, and the
    # run continues from it as it would have without stopping.
    assert_close(r, r, "sharded/state", "restored/state", rtol=0, atol=0)
    assert_close(r, r, "live/", "resumed/", rtol=0, atol=0)
  assert_close(results[0], results[1], "sharded/", "sharded/", rtol=0, atol=0)


# ------------------------------------------------------------ no devices needed
def test_check_population_names_the_fix():
  parallel.check_population(16, 128, 8)
  with pytest.raises(ValueError, match=r"population=10 .* 8 devices.*--config.population.* 8 or 16"):
    parallel.check_population(10, None, 8)
  with pytest.raises(ValueError, match=r"meta_batch_size=100 .*--config.meta_batch_size"):
    parallel.check_population(16, 100, 8)
  with pytest.raises(ValueError, match=r"population=3 .*e\.g\. 4\)"):
    parallel.check_population(3, 4, 4)


@pytest.mark.parametrize("env,expected", [
    ({}, None),
    ({"SLURM_JOB_ID": "1", "SLURM_STEP_NODELIST": "n1", "SLURM_NTASKS": "1",
      "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}, None),   # one task: single process
    ({"SLURM_JOB_ID": "1", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "8",
      "SLURM_PROCID": "3", "SLURM_LOCALID": "3"}, "slurm"),
    ({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "8"}, None),    # salloc shell, not an srun step
    ({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "4"}, "ompi"),
    ({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({"TPU_WORKER_HOSTNAMES": "w0,w1,w2,w3"}, "tpu"),
    ({"TPU_WORKER_HOSTNAMES": "localhost"}, None),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "JOB_COMPLETION_INDEX": "0"}, "kubernetes"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, None),
    ({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}, "explicit"),
    ({parallel.FORCE_ENV_VAR: "1"}, "forced"),
])
def test_detect_cluster(env, expected):
  assert parallel.detect_cluster(env) == expected


def test_single_process_initialisation_is_a_no_op(monkeypatch):
  for name in list(os.environ):
    if name.startswith(CLUSTER_ENV_PREFIXES):
      monkeypatch.delenv(name)
  assert parallel.initialize_distributed() is False
  assert parallel.initialize_distributed(num_processes=1) is False
  with pytest.raises(ValueError, match="process_id"):
    parallel.initialize_distributed(num_processes=2, process_id=2)


def test_mesh_and_data_share_on_one_device():
  mesh = parallel.make_mesh()
  assert mesh.axis_names == (parallel.AXIS,)
  assert parallel.usable_examples(50, 8) == 48
  n = mesh.shape[parallel.AXIS]
  assert parallel.process_share(50, mesh) == slice(0, 50 - 50 % n)
  with pytest.raises(ValueError, match="num_devices"):
    parallel.make_mesh(num_devices=10_000)
