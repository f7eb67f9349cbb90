"""The quickstart notebook runs top to bottom (at its quick scale)."""

import os

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor


def test_quickstart_notebook_executes(repo_root, tmp_path):
  path = os.path.join(repo_root, "notebooks", "quickstart.ipynb")
  notebook = nbformat.read(path, as_version=4)
  os.environ["GTNJAX_NOTEBOOK_QUICK"] = "1"
  ExecutePreprocessor(timeout=900, kernel_name="python3").preprocess(
      notebook, {"metadata": {"path": str(tmp_path)}})
  outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                    for o in cell.get("outputs", []))
  assert "gtn_test_accuracy" in outputs and "learned learning rates" in outputs
