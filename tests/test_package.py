"""`import gtnjax` is cheap, its public modules load on first use, and its imports
follow the README's layers."""

import ast
import os
import re
import subprocess
import sys


def test_import_is_lazy_and_modules_load_on_attribute_access():
  code = ("import sys, gtnjax; assert 'jax' not in sys.modules, 'import gtnjax imported jax'; "
          "assert gtnjax.layers.conv2d and gtnjax.train.meta_train and gtnjax.report.train_and_evaluate and gtnjax.ops.conv2d_lax; "
          "assert set(gtnjax.__all__) <= set(dir(gtnjax)); "
          "import pytest; pytest.raises(AttributeError, getattr, gtnjax, 'nope')")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr


def _module_of(path: str, src: str) -> str:
  """The layer-table name of a source file: `train`, `nas.pipeline`; the files
  of the `ops`, `data` and `configs` packages count as their package."""
  parts = os.path.relpath(path, src)[:-3].split(os.sep)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  if parts and parts[0] in ("ops", "data", "configs"):
    parts = parts[:1]
  return ".".join(parts)


def _declared_layers(readme: str) -> dict[str, int]:
  """{module: layer} from the README's layer table (`| 7 | `train`, `baselines` |`)."""
  text = open(readme).read()
  table = text[text.index("| layer | modules"):]
  layers = {}
  for line in table.splitlines()[2:]:
    match = re.match(r"\|\s*(\d+)\s*\|(.*)\|\s*$", line)
    if not match:
      break
    for name in re.findall(r"`([\w.]+)`", match.group(2)):
      layers[name] = int(match.group(1))
  return layers


def _imports(path: str) -> set[str]:
  """The gtnjax modules a file imports, at any depth (function-level ones too)."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gtnjax"):
      found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    elif isinstance(node, ast.Import):
      found |= {a.name for a in node.names if a.name.startswith("gtnjax")}
  return found


def test_every_import_points_down_the_readme_layer_table(repo_root):
  src = os.path.join(repo_root, "src", "gtnjax")
  layers = _declared_layers(os.path.join(repo_root, "README.md"))
  files = [os.path.join(d, f) for d, _, names in os.walk(src) for f in names if f.endswith(".py")]
  modules = {_module_of(f, src) for f in files} - {"", "nas"}  # the package __init__s
  assert not modules - set(layers), (
      f"modules missing from the README's layer table: {sorted(modules - set(layers))}")
  upward = []
  for path in files:
    here = _module_of(path, src)
    if here not in layers:
      continue
    for name in _imports(path):
      target = name[len("gtnjax."):]
      # `from gtnjax.nas import network` names gtnjax.nas.network; `from
      # gtnjax.ops.conv import x` names the ops package.
      while target and target not in layers:
        target = target.rpartition(".")[0]
      if target and target != here and layers[target] >= layers[here]:
        upward.append(f"{here} (layer {layers[here]}) imports {target} "
                      f"(layer {layers[target]})")
  assert not upward, "imports that do not point down the layers:\n" + "\n".join(upward)
