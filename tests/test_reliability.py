"""A run killed (SIGKILL) or preempted (SIGTERM) mid-training and restarted with
the same command ends exactly where an uninterrupted run does."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ARGS = ["--config", "experiments/configs/digits.py:test", "--config.num_meta_steps=12",
        "--config.checkpoint_every=3", "--config.eval_seeds=2", "--no-progress"]


def start(workdir, repo_root, verbose=False):
  return subprocess.Popen([sys.executable, "-m", "gtnjax.cli", *(["--verbose"] * verbose),
                           "train", "--workdir",
                           str(workdir), *ARGS], cwd=repo_root, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def wait_for_lines(workdir, count, process, timeout=600):
  path = workdir / "metrics.jsonl"
  deadline = time.time() + timeout
  while time.time() < deadline:
    if path.exists() and sum(1 for _ in open(path)) >= count:
      return
    assert process.poll() is None, process.communicate()
    time.sleep(0.05)
  raise TimeoutError(f"{path} never reached {count} lines")


def metrics(workdir):
  records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.slow
def test_sigkill_then_rerun_matches_uninterrupted(tmp_path, repo_root):
  reference = tmp_path / "reference"
  done = start(reference, repo_root)
  out, err = done.communicate(timeout=900)
  assert done.returncode == 0, err[-3000:]

  killed = tmp_path / "killed"
  process = start(killed, repo_root)
  wait_for_lines(killed, 5, process)  # mid-way between the checkpoints at 3 and 6
  process.send_signal(signal.SIGKILL)
  process.wait()
  # A run that finished (or stopped by itself) before the kill proves nothing.
  assert process.returncode == -signal.SIGKILL
  assert not (killed / "summary.json").exists()
  checkpointed = max(int(s) for s in os.listdir(killed / "checkpoints") if s.isdigit())
  assert 3 <= checkpointed < 12
  before = open(killed / "metrics.jsonl", "rb").read().splitlines(keepends=True)
  # A kill mid-write can leave a torn last line; the rerun drops it with the
  # other lines past the checkpoint.
  with open(killed / "metrics.jsonl", "a") as f:
    f.write('{"step": 11, "meta_lo')

  rerun = start(killed, repo_root, verbose=True)
  out, err = rerun.communicate(timeout=900)
  assert rerun.returncode == 0, err[-3000:]
  # It resumed from the checkpoint and trained only the remaining meta-steps ...
  assert f"from meta-step {checkpointed}" in err, err[-3000:]
  after = open(killed / "metrics.jsonl", "rb").read().splitlines(keepends=True)
  # ... keeping the lines up to the checkpoint byte for byte, timings included.
  assert after[:checkpointed] == before[:checkpointed]
  assert len(after) == 12

  assert metrics(killed) == metrics(reference)
  a, b = (json.load(open(d / "summary.json")) for d in (reference, killed))
  assert a["gtn_test_accuracy"] == b["gtn_test_accuracy"]
  assert a["real_data_test_accuracy"] == b["real_data_test_accuracy"]
  # the teacher's parameters are compared bit for bit through their curriculum export
  for d in (reference, killed):
    result = subprocess.run([sys.executable, "-m", "gtnjax.cli", "export", "--workdir", str(d),
                             "--out", str(d / "curriculum.npz")], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
  x, y = (np.load(d / "curriculum.npz") for d in (reference, killed))
  for key in ("x", "y", "lr", "momentum"):
    np.testing.assert_array_equal(x[key], y[key])


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path, repo_root):
  workdir = tmp_path / "preempted"
  process = start(workdir, repo_root)
  wait_for_lines(workdir, 4, process)
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=300)
  assert process.returncode == 0, err[-3000:]
  assert "rerun the same command to resume" in out
  steps = sorted(int(s) for s in os.listdir(workdir / "checkpoints"))
  last = steps[-1]
  assert last >= 4 and last < 12  # saved where it stopped, not at a periodic step only
  assert len(metrics(workdir)) == last
  rerun = start(workdir, repo_root)
  out, err = rerun.communicate(timeout=900)
  assert rerun.returncode == 0, err[-3000:]
  assert [r["step"] for r in metrics(workdir)] == list(range(1, 13))
