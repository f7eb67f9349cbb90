"""The notebooks run top to bottom (at their quick scale)."""

import os

import nbformat
import pytest
from nbconvert.preprocessors import ExecutePreprocessor


@pytest.mark.parametrize("name,expected", [
    ("quickstart", ("gtn_test_accuracy", "real_data_learned_schedule_test_accuracy",
                    "learned learning rates")),
    ("curriculum", ("learned momenta", "GTN", "real data, learned schedule")),
    # Reads the committed results/nas_fmnist study; no training.
    ("nas", ("isomorphic cells share a hash: True", "test-retest Spearman", "evolution picks")),
])
def test_notebook_executes(repo_root, tmp_path, name, expected):
  path = os.path.join(repo_root, "notebooks", f"{name}.ipynb")
  notebook = nbformat.read(path, as_version=4)
  os.environ["GTNJAX_NOTEBOOK_QUICK"] = "1"
  os.environ.pop("GTNJAX_CURRICULUM_WORKDIR", None)
  ExecutePreprocessor(timeout=900, kernel_name="python3").preprocess(
      notebook, {"metadata": {"path": str(tmp_path)}})
  outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                    for o in cell.get("outputs", []))
  for text in expected:
    assert text in outputs
