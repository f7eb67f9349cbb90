"""The notebooks run top to bottom (at their quick scale), and what they print
is what the run they train wrote. The curriculum notebook looks at the
quickstart notebook's run (the same quick digits config), so one teacher is
trained for both."""

import json
import os
import re

import nbformat
import numpy as np
import pytest
from nbconvert.preprocessors import ExecutePreprocessor

pytestmark = pytest.mark.slow


def execute(repo_root, name, cwd, **env):
  """(the notebook's printed text) after running notebooks/NAME.ipynb in `cwd`
  with `env` added to the kernel's environment."""
  notebook = nbformat.read(os.path.join(repo_root, "notebooks", f"{name}.ipynb"), as_version=4)
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("GTNJAX_NOTEBOOK_QUICK", "1")
    patch.delenv("GTNJAX_CURRICULUM_WORKDIR", raising=False)
    for key, value in env.items():
      patch.setenv(key, value)
    ExecutePreprocessor(timeout=900, kernel_name="python3").preprocess(
        notebook, {"metadata": {"path": str(cwd)}})
  return "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for o in cell.get("outputs", []))


@pytest.fixture(scope="module")
def quickstart(repo_root, tmp_path_factory):
  """(printed text, the workdir the quickstart notebook trained): its
  `tempfile.mkdtemp` lands in a TMPDIR of the test's own."""
  tmp = tmp_path_factory.mktemp("quickstart")
  text = execute(repo_root, "quickstart", tmp, TMPDIR=str(tmp))
  (workdir,) = [tmp / d for d in os.listdir(tmp) if d.startswith("gtnjax_")]
  return text, workdir


def printed_lrs(text):
  (lrs,) = re.findall(r"learned learning rates \[([^\]]*)\]", text)
  return [float(v) for v in lrs.split()]


def test_quickstart_prints_its_runs_results(quickstart):
  text, workdir = quickstart
  summary = json.load(open(workdir / "summary.json"))
  assert summary["inner_steps"] == 8 and summary["meta_steps"] == 60  # the QUICK scale
  assert len(open(workdir / "metrics.jsonl").readlines()) == 60
  for key in ("gtn_test_accuracy", "untrained_teacher_test_accuracy",
              "real_data_test_accuracy", "real_data_learned_schedule_test_accuracy"):
    value = summary[key]
    assert f"{key:42s} {value['mean']:.3f} ± {value['std']:.3f}" in text
  # 60 meta-steps already teach something.
  assert (summary["gtn_test_accuracy"]["mean"]
          > summary["untrained_teacher_test_accuracy"]["mean"])
  arrays = np.load(workdir / "curriculum.npz")
  assert len(printed_lrs(text)) == 8
  np.testing.assert_allclose(printed_lrs(text), arrays["lr"], rtol=0, atol=0.0005 + 1e-6)


def test_curriculum_curves_end_at_the_runs_evaluations(repo_root, quickstart, tmp_path):
  quick_text, workdir = quickstart
  text = execute(repo_root, "curriculum", tmp_path, GTNJAX_CURRICULUM_WORKDIR=str(workdir))
  assert f"{workdir}: digits, T=8, meta-step 60" in text
  assert printed_lrs(text) == printed_lrs(quick_text)  # the same teacher
  curves = {}
  for label in ("GTN", "real data, best constant lr", "real data, learned schedule"):
    (line,) = re.findall(rf"^{re.escape(label)} +((?:[0-9.]+ ?)+)$", text, re.MULTILINE)
    curves[label] = line.split()
    assert len(curves[label]) == 9, (label, line)  # before and after each of T=8 steps
  # Step 0: the same untrained learners whatever they will be trained on.
  assert len({c[0] for c in curves.values()}) == 1
  # Step T: the learners the run's summary evaluated, on the same batches.
  summary = json.load(open(workdir / "summary.json"))
  for label, key in (("GTN", "gtn_test_accuracy"),
                     ("real data, best constant lr", "real_data_test_accuracy"),
                     ("real data, learned schedule",
                      "real_data_learned_schedule_test_accuracy")):
    assert curves[label][-1] == f"{summary[key]['mean']:.3f}", label


def test_nas_notebook_executes(repo_root, tmp_path):
  # Reads the committed results/nas_fmnist study; no training.
  text = execute(repo_root, "nas", tmp_path)
  for expected in ("isomorphic cells share a hash: True", "test-retest Spearman",
                   "evolution picks"):
    assert expected in text
