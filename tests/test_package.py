"""`import gtnjax` is cheap and its public modules load on first use."""

import subprocess
import sys


def test_import_is_lazy_and_modules_load_on_attribute_access():
  code = ("import sys, gtnjax; assert 'jax' not in sys.modules, 'import gtnjax imported jax'; "
          "assert gtnjax.layers.conv2d and gtnjax.train.train and gtnjax.ops.conv2d_lax; "
          "assert set(gtnjax.__all__) <= set(dir(gtnjax)); "
          "import pytest; pytest.raises(AttributeError, getattr, gtnjax, 'nope')")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
