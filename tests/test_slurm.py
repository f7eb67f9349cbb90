"""The launch scripts under a real scheduler: a one-node SLURM on this machine.

`experiments/launch/local_slurm.sh` installs and starts Debian's SLURM (CI's
.ci/run calls it first; here it is called again, which is harmless). The jobs
run the file a user submits, `slurm_multigpu.sbatch`, with sbatch options and
environment variables in place of its GPU settings, as 2 tasks: 2 JAX
processes with one CPU device each. `multinode_manual.sh` runs as 2 processes
of this machine. One test, so that the slow parts overlap:

  SLURM job (2 tasks)            | manual script (2 processes), meanwhile
  1. SIGKILL of task 1: the job  | U. uninterrupted run to STOP: one jax.distributed
     fails at once, naming it    |    job, population split, one writer, step 1
  2. requeue; scancel --signal=  |    equal to a single-process run (also here)
     TERM: all stop at one step, | P. SIGTERM to process 0 only: both stop at
     one checkpoint, exit 0      |    one step, one checkpoint, exit 0
  3. requeue: resumes, ends      | K. rerun: resumes; SIGKILL of process 1:
     bit-identical to U          |    process 0 fails within the heartbeat
                                 |    timeout, naming it

Skipped, saying why, where SLURM is not installed and cannot be (no apt-get,
not root, no network).
"""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "experiments" / "launch"
NUM_META_STEPS = 1000  # above STOP: no run gets to the (slow) evaluation
STOP = 100             # --stop-after: every run ends here, with a checkpoint
# The smallest meta-step gtnjax train has (digits, distillation, MLP, 2 inner
# steps); population 2, one learner per process. No periodic checkpoints, so
# the only ones are those written on SIGTERM and at STOP.
TRAIN_ARGS = ["--config.teacher=distillation", "--config.learner=mlp",
              "--config.inner_steps=2", "--config.inner_batch_size=4",
              "--config.meta_batch_size=8", f"--config.num_meta_steps={NUM_META_STEPS}",
              f"--config.checkpoint_every={10 * NUM_META_STEPS}", f"--stop-after={STOP}"]
HEARTBEAT_S = 10  # GTNJAX_HEARTBEAT_TIMEOUT_S of these runs
RUN_TIMEOUT_S = 600
CLUSTER_ENV_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "OMPI_", "PMI_", "TPU_", "JAX_COORDINATOR",
                        "JAX_NUM_PROC", "JAX_PROCESS", "KUBERNETES_", "GTNJAX_DISTRIBUTED")


# ------------------------------------------------------------------ helpers
def job_env(workdir, **extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith(CLUSTER_ENV_PREFIXES)}
  env.pop("XLA_FLAGS", None)
  env.update(
      PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")])),
      PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
      JAX_PLATFORMS="cpu", VENV="", VERBOSE="1", CONFIG="experiments/configs/digits.py:test",
      WORKDIR=str(workdir), GTNJAX_HEARTBEAT_TIMEOUT_S=str(HEARTBEAT_S), **extra)
  return env


def lines(workdir):
  path = Path(workdir) / "metrics.jsonl"
  return path.read_text().splitlines() if path.exists() else []


def metrics(workdir):
  return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines(workdir)]


def checkpoints(workdir):
  folder = Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def wait_until(condition, timeout, what, alive=lambda: True):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if condition():
      return
    assert alive(), f"stopped before {what}"
    time.sleep(0.05)
  raise TimeoutError(f"no {what} after {timeout} s")


def restore(workdir, step):
  """A checkpoint's leaves as numpy, by path, whatever devices wrote it."""
  import jax  # noqa: PLC0415
  import orbax.checkpoint as ocp  # noqa: PLC0415
  path = Path(workdir) / "checkpoints" / str(step) / "default"
  checkpointer = ocp.StandardCheckpointer()
  # Saved on a 2-process mesh: restore onto this process's first device.
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                        checkpointer.metadata(path).item_metadata)
  tree = checkpointer.restore(path, target)
  return {jax.tree_util.keystr(p): np.asarray(leaf)
          for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def assert_one_writer(workdir, steps):
  """Process 0 alone wrote metrics.jsonl and TensorBoard: each step once, one events file."""
  assert [m["step"] for m in metrics(workdir)] == list(range(1, steps + 1))
  events = list((Path(workdir) / "tensorboard").glob("events.out.tfevents.*"))
  assert len(events) == 1, events


def assert_joined(output, rank):
  assert f"gtnjax: process {rank} of 2, 1 local / 2 global devices" in output, output[-3000:]


# ------------------------------------------------------------------- SLURM
@pytest.fixture(scope="module")
def slurm():
  """Starts the local cluster (installing it if need be), or skips saying why."""
  script = LAUNCH / "local_slurm.sh"
  if os.geteuid() != 0 and not shutil.which("sbatch"):
    pytest.skip("SLURM is not installed and installing it needs root")
  result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
  if result.returncode != 0:
    pytest.skip(f"no local SLURM: {script.name} failed: {result.stderr.strip()[-500:]}")
  return result.stdout.strip()


def scontrol_job(job):
  out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True,
                       text=True, check=True).stdout
  return dict(re.findall(r"(\w+)=(\S*)", out))


def wait_for_job(job, restarts, timeout=RUN_TIMEOUT_S):
  """The job's fields once its run number `restarts` has ended."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    info = scontrol_job(job)
    if int(info["Restarts"]) == restarts and info["JobState"] in (
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
      return info
    time.sleep(0.1)
  subprocess.run(["scancel", job])
  raise TimeoutError(f"job {job} (run {restarts}) still {info['JobState']} after {timeout} s")


def task_pid(job, rank):
  """The PID of task `rank` of the job's first srun step."""
  out = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True).stdout
  for row in out.splitlines()[1:]:
    pid, _, step, _, global_id = row.split()[:5]
    if step == "0" and global_id == str(rank):
      return int(pid)
  return None


def slurm_chain(workdir, log):
  """Kill, requeue, preempt, requeue: the job's three runs (see module docstring)."""
  report = {}
  submit = subprocess.run(
      ["sbatch", "--parsable", "--job-name=gtnjax-test", "--nodes=1", "--ntasks-per-node=2",
       "--cpus-per-task=1", "--gpus-per-node=0", "--time=30", "--open-mode=append",
       f"--output={log}", str(LAUNCH / "slurm_multigpu.sbatch"), *TRAIN_ARGS],
      cwd=REPO, env=job_env(workdir), capture_output=True, text=True)
  assert submit.returncode == 0, submit.stderr
  job = submit.stdout.strip().split(";")[0]
  running = lambda: scontrol_job(job)["JobState"] in ("PENDING", "RUNNING", "CONFIGURING")
  try:
    # Run 0: task 1 dies mid-run; srun (--kill-on-bad-exit) ends the job.
    wait_until(lambda: len(lines(workdir)) >= 2, RUN_TIMEOUT_S, "meta-step 2 of run 0", running)
    os.kill(task_pid(job, 1), signal.SIGKILL)
    killed_at = time.time()
    info = wait_for_job(job, 0, timeout=60)
    report["failed_after_s"] = time.time() - killed_at
    report["run0"] = info["JobState"], info["ExitCode"]
    report["run0_output"] = Path(log).read_text()

    # Run 1: requeued (after the credential lifetime); SIGTERM mid-run.
    requeued_at = time.time()
    subprocess.run(["scontrol", "requeue", job], check=True)
    # Run 0's metrics.jsonl stays until run 1 starts and truncates it.
    metrics_file = Path(workdir) / "metrics.jsonl"
    wait_until(lambda: metrics_file.stat().st_mtime > requeued_at and len(lines(workdir)) >= 2,
               RUN_TIMEOUT_S, "meta-step 2 of run 1")
    subprocess.run(["scancel", "--signal=TERM", job], check=True)
    info = wait_for_job(job, 1)
    report["run1"] = info["JobState"], info["ExitCode"]
    report["run1_output"] = Path(log).read_text()[len(report["run0_output"]):]
    report["run1_checkpoints"] = checkpoints(workdir)
    report["run1_metrics"] = metrics(workdir)

    # Run 2: requeued again; resumes from the checkpoint and runs to STOP.
    subprocess.run(["scontrol", "requeue", job], check=True)
    info = wait_for_job(job, 2)
    report["run2"] = info["JobState"], info["ExitCode"]
    report["run2_output"] = Path(log).read_text()[
        len(report["run0_output"]) + len(report["run1_output"]):]
  finally:
    subprocess.run(["scancel", job])
  return report


# ----------------------------------------------------------- manual script
_MANUAL_PROCESSES = []  # killed when the test ends, passed or not


@pytest.fixture
def reap_manual_processes():
  yield
  for proc in _MANUAL_PROCESSES:
    if proc.poll() is None:
      proc.kill()


def start_manual(workdir, rank, log, port, **extra):
  env = job_env(workdir, NODE_RANK=str(rank), NUM_NODES="2", COORDINATOR=f"127.0.0.1:{port}",
                LOCAL_DEVICES="1", **extra)
  # The script execs gtnjax, so this PID is the JAX process's.
  proc = subprocess.Popen(["bash", str(LAUNCH / "multinode_manual.sh"), *TRAIN_ARGS], cwd=REPO,
                          env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
  _MANUAL_PROCESSES.append(proc)
  return proc


def free_port():
  import socket  # noqa: PLC0415
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_launch_scripts_under_slurm_and_by_hand(slurm, reap_manual_processes, tmp_path):
  started = time.time()
  slurm_dir, manual_dir, single_dir = (tmp_path / n for n in ("slurm", "manual", "single"))
  slurm_log = tmp_path / "slurm.out"
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    chain = pool.submit(slurm_chain, slurm_dir, slurm_log)

    # The single-process reference, one meta-step of the same config.
    single = subprocess.run(
        [sys.executable, "-m", "gtnjax.cli", "train", "--workdir", str(single_dir),
         "--config", "experiments/configs/digits.py:test", "--no-progress",
         "--config.population=2", *TRAIN_ARGS[:-1], "--stop-after=1"],
        cwd=REPO, env=job_env(single_dir), capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S)
    assert single.returncode == 0, single.stderr[-3000:]

    # U: the manual script, uninterrupted. Each process dumps its compiled
    # programs, to show that each holds half the population.
    port = free_port()
    dumps = [tmp_path / f"hlo{rank}" for rank in range(2)]
    logs = [tmp_path / f"manual{rank}.out" for rank in range(2)]
    procs = [start_manual(manual_dir, rank, logs[rank], port, JAX_ENABLE_COMPILATION_CACHE="false",
                          XLA_FLAGS=f"--xla_dump_to={dumps[rank]} --xla_dump_hlo_module_re=step_fn")
             for rank in range(2)]
    for proc in procs:
      proc.wait(timeout=RUN_TIMEOUT_S)
    outputs = [log.read_text() for log in logs]
    for rank, (proc, output) in enumerate(zip(procs, outputs)):
      assert proc.returncode == 0, output[-3000:]
      assert_joined(output, rank)
      assert f"stopped at meta-step {STOP} with a checkpoint" in output
      # The learners' first kernels, [P, 64, 256]: 1 of the 2 on each device.
      programs = " ".join(p.read_text() for p in dumps[rank].glob("*after_optimizations.txt"))
      assert re.search(r"f32\[1,64,256\]", programs), f"no per-device learner in {dumps[rank]}"
      assert not re.search(r"f32\[2,64,256\]", programs), "a process holds both learners"
    assert_one_writer(manual_dir, STOP)
    assert checkpoints(manual_dir) == [STOP]
    reference = metrics(manual_dir)
    # Step 1 equals the single process's to float rounding (the population
    # mean is summed in another order).
    (one,) = metrics(single_dir)
    for name, value in one.items():
      np.testing.assert_allclose(reference[0][name], value, rtol=1e-5, atol=1e-6, err_msg=name)

    # P: SIGTERM to process 0 alone; process 1 learns of it through
    # any_process, and both stop at the same meta-step with one checkpoint.
    stopped_dir = tmp_path / "manual_stopped"
    port = free_port()
    logs = [tmp_path / f"stopped{rank}.out" for rank in range(2)]
    procs = [start_manual(stopped_dir, rank, logs[rank], port) for rank in range(2)]
    wait_until(lambda: len(lines(stopped_dir)) >= 2, RUN_TIMEOUT_S, "meta-step 2",
               lambda: procs[0].poll() is None and procs[1].poll() is None)
    procs[0].send_signal(signal.SIGTERM)
    for proc in procs:
      proc.wait(timeout=RUN_TIMEOUT_S)
    outputs = [log.read_text() for log in logs]
    stopped = set()
    for proc, output in zip(procs, outputs):
      assert proc.returncode == 0, output[-3000:]
      stopped.update(int(s) for s in re.findall(r"^stopped at meta-step (\d+) with a checkpoint",
                                                output, re.M))
    assert len(stopped) == 1, outputs  # the same step on both
    (manual_step,) = stopped
    assert 2 <= manual_step < STOP, manual_step
    assert checkpoints(stopped_dir) == [manual_step]
    assert [m["step"] for m in metrics(stopped_dir)] == list(range(1, manual_step + 1))

    # K: rerun (it resumes), then process 1 dies; process 0 fails within the
    # heartbeat timeout, naming it.
    port = free_port()
    logs = [tmp_path / f"killed{rank}.out" for rank in range(2)]
    procs = [start_manual(stopped_dir, rank, logs[rank], port) for rank in range(2)]
    wait_until(lambda: len(lines(stopped_dir)) >= manual_step + 2, RUN_TIMEOUT_S,
               f"meta-step {manual_step + 2}",
               lambda: procs[0].poll() is None and procs[1].poll() is None)
    procs[1].send_signal(signal.SIGKILL)
    killed_at = time.time()
    try:
      procs[0].wait(timeout=HEARTBEAT_S + 30)
    except subprocess.TimeoutExpired:
      procs[0].kill()
      pytest.fail(f"process 0 still waits {HEARTBEAT_S + 30} s after process 1 died")
    manual_failed_after = time.time() - killed_at
    survivor = logs[0].read_text()
    assert f"from meta-step {manual_step}" in survivor, survivor[-3000:]
    assert procs[0].returncode != 0, survivor[-3000:]
    assert re.search(r"Task 1 heartbeat timeout|stopped sending heartbeats\):\s*1", survivor), \
        survivor[-3000:]

    report = chain.result(timeout=2 * RUN_TIMEOUT_S)

  # 1. The lost task fails the job at once, and srun names it.
  assert report["run0"][0] == "FAILED", report["run0"]
  assert report["failed_after_s"] < 20, report["failed_after_s"]
  assert re.search(r"srun: error: \S+: task 1: Killed", report["run0_output"]), \
      report["run0_output"][-3000:]
  for rank in range(2):
    assert_joined(report["run0_output"], rank)

  # 2. SIGTERM: both processes stop at the same meta-step, one checkpoint, exit 0.
  assert report["run1"] == ("COMPLETED", "0:0"), report["run1"]
  stopped = [int(s) for s in re.findall(r"^(?:0|1): stopped at meta-step (\d+) with a checkpoint",
                                          report["run1_output"], re.M)]
  ranks = re.findall(r"^(0|1): stopped at meta-step", report["run1_output"], re.M)
  assert sorted(ranks) == ["0", "1"] and len(set(stopped)) == 1, report["run1_output"][-3000:]
  (step,) = set(stopped)
  assert 2 <= step < STOP, step  # a run that finished before the signal proves nothing
  assert report["run1_checkpoints"] == [step]
  assert [m["step"] for m in report["run1_metrics"]] == list(range(1, step + 1))

  # 3. The requeued run resumes there and ends as the uninterrupted run did.
  assert report["run2"] == ("COMPLETED", "0:0"), report["run2"]
  assert f"resuming {slurm_dir} from meta-step {step}" in report["run2_output"]
  assert "SLURM_RESTART_COUNT=2" in report["run2_output"]  # echoed by slurm_multigpu.sbatch
  # One writer: each step once (two would each append their lines).
  assert [m["step"] for m in metrics(slurm_dir)] == list(range(1, STOP + 1))
  assert metrics(slurm_dir) == reference
  assert checkpoints(slurm_dir) == [step, STOP]
  final, expected = restore(slurm_dir, STOP), restore(manual_dir, STOP)
  assert final.keys() == expected.keys()
  for name in expected:
    np.testing.assert_array_equal(final[name], expected[name], err_msg=name)

  print(f"\nSLURM: job failed {report['failed_after_s']:.1f} s after task 1's SIGKILL; "
        f"manual: process 0 failed {manual_failed_after:.1f} s after process 1's; "
        f"whole test {time.time() - started:.0f} s")


def test_heartbeat_timeout_setting():
  from gtnjax import parallel  # noqa: PLC0415
  assert parallel.heartbeat_timeout_s({}) == parallel.DEFAULT_HEARTBEAT_TIMEOUT_S == 30
  assert parallel.heartbeat_timeout_s({parallel.HEARTBEAT_TIMEOUT_ENV_VAR: "7"}) == 7
  for bad in ("0", "-3", "ten"):
    with pytest.raises(ValueError, match="GTNJAX_HEARTBEAT_TIMEOUT_S.*whole number"):
      parallel.heartbeat_timeout_s({parallel.HEARTBEAT_TIMEOUT_ENV_VAR: bad})
