"""Test-session settings.

The persistent XLA compilation cache lets the end-to-end tests (which build
the same jitted meta-step in several processes) compile each program once per
machine rather than once per test.
"""

import os

_CACHE = os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "jax_compilation")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.abspath(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

import pytest  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


# The files that take longest, longest first: with `-n 2 --dist loadfile`
# (the README's command) xdist hands out whole files in collection order (see
# `pytest_configure`), so starting with these keeps one worker from being left
# with a long file at the end while the other idles (test_slurm.py, one test of
# ~3 minutes, ran last otherwise).
_LONGEST_FILES = ("test_slurm.py", "test_cli.py", "test_train.py", "test_nas.py",
                  "test_meta_gradient.py", "test_reliability.py")


def pytest_configure(config):
  # xdist's default sorts files by their number of tests, which puts the
  # one-test test_slurm.py last; keep the order below instead.
  config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
  def rank(item):
    name = os.path.basename(str(item.fspath))
    return _LONGEST_FILES.index(name) if name in _LONGEST_FILES else len(_LONGEST_FILES)
  items.sort(key=rank)  # stable: each file keeps its own order


@pytest.fixture(scope="session")
def repo_root():
  return REPO


@pytest.fixture
def float64():
  """float64 for one test (finite differences need it); every other test runs in
  float32, as users do."""
  import jax
  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
  """One short digits run by `gtnjax train` (the `test` scale of the default
  config, 100 meta-steps, checkpoints at 40, 80 and 100, 4 evaluation seeds),
  trained once per test session and shared: tests that change it copy it.

  Returns (workdir, the finished `subprocess.CompletedProcess`)."""
  import subprocess
  import sys
  workdir = tmp_path_factory.mktemp("digits_run")
  result = subprocess.run(
      [sys.executable, "-m", "gtnjax.cli", "train", "--config",
       "experiments/configs/digits.py:test", "--workdir", str(workdir),
       "--config.num_meta_steps=100", "--config.checkpoint_every=40",
       "--config.eval_seeds=4", "--no-progress"],
      cwd=REPO, capture_output=True, text=True, timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result
