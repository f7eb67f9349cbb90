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
