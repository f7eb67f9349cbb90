"""The `gtnjax` command end to end on the embedded digits data, and its errors."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gtnjax import cli

DIGITS_TEST = "experiments/configs/digits.py:test"


def gtnjax(*args, cwd, env_extra=None, timeout=900):
  env = dict(os.environ, **(env_extra or {}))
  return subprocess.run([sys.executable, "-m", "gtnjax.cli", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- bad input
BAD_TRAIN_ARGS = [
    (["--config.no_such_field=1"], "no such config field"),
    (["--config.inner_stpes=4"], "did you mean inner_steps"),
    (["--config.inner_steps=0"], "'inner_steps'"),
    (["--config.inner_steps=-3"], "positive integer"),
    (["--config.inner_steps=2.5"], "expected an integer"),
    (["--config.meta_lr=fast"], "expected a number"),
    (["--config.soft_labels=maybe"], "expected true or false"),
    (["--config.learner=resnet9000"], "unknown learner"),
    (["--config.eval_learners=cnn,nope"], "unknown learner"),
    (["--config.curriculum=backwards"], "unknown curriculum"),
    (["--config.teacher=oracle"], "unknown teacher"),
    (["--config.remat=sometimes"], "unknown policy"),
    (["--config.conv_impl=cudnn"], "choose auto or one of"),
    (["--config.probe_every=3"], "must divide inner_steps"),
    (["--config.final_relative_lr=2"], "final_relative_lr"),
    (["--config.curriculum=none", "--config.soft_labels=true"], "soft_labels"),
    (["--config.dataset=not_a_dataset"], "not_a_dataset"),
    (["--config.population=0"], "'population'"),
    (["--config.baseline_momenta=1.5"], "baseline_momenta"),
]


@pytest.mark.parametrize("extra,message", BAD_TRAIN_ARGS)
def test_bad_train_input_exits_2_with_one_line(tmp_path, repo_root, extra, message):
  workdir = tmp_path / "run"
  result = gtnjax("train", "--config", DIGITS_TEST, "--workdir", str(workdir), *extra,
                  cwd=repo_root)
  assert result.returncode == 2, result.stderr
  assert message in result.stderr
  assert "Traceback" not in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  # Refused before training: nothing was checkpointed. (No wall-clock bound:
  # on a loaded machine one would be flaky.)
  assert not (workdir / "checkpoints").exists()


def test_missing_tfds_dataset_names_the_fix(tmp_path, repo_root):
  result = gtnjax("train", "--config", "experiments/configs/mnist.py:cpu", "--workdir",
                  str(tmp_path / "run"), cwd=repo_root,
                  env_extra={"TFDS_DATA_DIR": str(tmp_path / "empty")})
  assert result.returncode == 2
  assert "TFDS_DATA_DIR" in result.stderr and "Traceback" not in result.stderr


def test_missing_config_file_and_bad_arg(tmp_path, repo_root):
  result = gtnjax("train", "--config", "nope.py", "--workdir", str(tmp_path), cwd=repo_root)
  assert result.returncode == 2 and "no file" in result.stderr
  result = gtnjax("train", "--config", "experiments/configs/mnist.py:huge", "--workdir",
                  str(tmp_path), cwd=repo_root)
  assert result.returncode == 2 and "unknown argument" in result.stderr


BAD_COMMANDS = [
    (["train", "--config", DIGITS_TEST, "--stop-after", "0"], "--stop-after"),
    (["train", "--config", DIGITS_TEST, "--config.inner_steps"], "needs a value"),
    (["evaluate", "--seeds", "0"], "--seeds"),
    (["evaluate", "--learner", "transformer"], "unknown"),
    (["export", "--out", "curriculum.txt"], ".npz"),
    (["export", "--out", "/no/such/folder/c.npz"], "does not exist"),
    (["samples", "--out", "samples.jpg"], ".png"),
    (["evaluate", "--config.seed=3"], "only apply to `gtnjax train`"),
]


@pytest.mark.parametrize("command,message", BAD_COMMANDS)
def test_bad_command_flags(tmp_path, repo_root, command, message):
  result = gtnjax(*command, "--workdir", str(tmp_path / "run"), cwd=repo_root)
  assert result.returncode == 2, result.stderr
  assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_unreadable_checkpoints_are_an_error_not_a_restart(trained, tmp_path, repo_root):
  # A copy of the end-to-end run (below), so no second training is paid for.
  workdir = tmp_path / "run"
  shutil.copytree(trained[0], workdir)
  saved = sorted(os.listdir(workdir / "checkpoints"))
  assert saved, "the end-to-end run saved no checkpoint"
  for root, _, files in os.walk(workdir / "checkpoints"):
    for name in files:
      if not name.startswith("_") and "commit" not in name:
        with open(os.path.join(root, name), "wb") as f:
          f.write(b"\0")
  result = gtnjax("evaluate", "--workdir", str(workdir), cwd=repo_root)
  assert result.returncode == 2 and "new --workdir" in result.stderr
  assert "Traceback" not in result.stderr
  assert sorted(os.listdir(workdir / "corrupt_checkpoints")) == saved  # kept, not deleted


@pytest.mark.slow
def test_workdir_without_run(tmp_path, repo_root):
  for command in (["evaluate"], ["export", "--out", str(tmp_path / "x.npz")],
                  ["samples", "--out", str(tmp_path / "x.png")],
                  ["plot", "--out", str(tmp_path / "x.png")]):
    result = gtnjax(*command, "--workdir", str(tmp_path / "nothing"), cwd=repo_root)
    assert result.returncode == 2, (command, result.stderr)
    assert "train" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------- end to end
@pytest.fixture
def trained(digits_run):
  """The session's short digits run (tests/conftest.py); tests that change it copy it."""
  return digits_run


@pytest.mark.slow
def test_train_writes_metrics_summary_and_checkpoints(trained):
  workdir, result = trained
  assert "GTN test accuracy" in result.stdout
  records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in records] == list(range(1, 101))
  for key in ("step", "meta_loss", "meta_accuracy", "grad_norm", "seconds"):
    assert all(np.isfinite(r[key]) for r in records), key
  summary = json.load(open(workdir / "summary.json"))
  for key in ("dataset", "learner", "inner_steps", "meta_steps", "wall_seconds"):
    assert key in summary
  for key in ("gtn_test_accuracy", "gtn_validation_accuracy", "real_data_test_accuracy"):
    assert set(summary[key]) >= {"mean", "std", "n"} and summary[key]["n"] == 4
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [40, 80, 100]
  assert os.listdir(workdir / "tensorboard")
  # The config asked for "auto" implementations; the record says what ran
  # (these tests run on CPU), and a rerun accepts its own record
  # (test_changed_config_on_existing_workdir_is_refused, tests/test_reliability.py).
  recorded = json.load(open(workdir / "config.json"))
  assert (recorded["conv_impl"], recorded["pool_impl"]) == ("gemm", "phases")


@pytest.mark.slow
def test_meta_training_beats_the_untrained_teacher(trained):
  # Measured on this config (100 meta-steps, T=8, B=16, cnn_small, 4 seeds) on a
  # 2-core machine: untrained teacher 0.126, trained 0.371 (real data 0.555).
  # The margin asserted leaves room for seed and platform variation.
  summary = json.load(open(trained[0] / "summary.json"))
  gtn = summary["gtn_test_accuracy"]["mean"]
  untrained = summary["untrained_teacher_test_accuracy"]["mean"]
  assert gtn > untrained + 0.15, (gtn, untrained)


@pytest.mark.slow
def test_evaluate_export_samples_plot(trained, tmp_path, repo_root):
  workdir, _ = trained
  result = gtnjax("evaluate", "--workdir", str(workdir), "--learner", "mlp", "--seeds", "2",
                  "--tune-schedule", cwd=repo_root)
  assert result.returncode == 0, result.stderr[-2000:]
  evaluation = json.loads(result.stdout)
  assert evaluation["learner"] == "mlp" and evaluation["gtn_test_accuracy"]["n"] == 2
  _check_tuned_schedule(workdir, evaluation)

  out = tmp_path / "curriculum.npz"
  assert gtnjax("export", "--workdir", str(workdir), "--out", str(out),
                cwd=repo_root).returncode == 0
  arrays = np.load(out)
  assert arrays["x"].shape == (8, 16, 8, 8, 1) and arrays["x"].dtype == np.float32
  assert arrays["y"].shape == (8, 16, 10) and arrays["y"].dtype == np.float32
  assert arrays["lr"].shape == (8,) and arrays["momentum"].shape == (8,)
  assert arrays["mean"].shape == (1,) and arrays["std"].shape == (1,)
  assert str(arrays["dataset"]) == "digits" and str(arrays["learner"]) == "cnn_small"

  _check_export_reproduces_the_first_fresh_learner(workdir, arrays)

  for command in ("samples", "plot"):
    png = tmp_path / f"{command}.png"
    result = gtnjax(command, "--workdir", str(workdir), "--out", str(png), cwd=repo_root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _check_tuned_schedule(workdir, evaluation):
  """The tuned-schedule evaluation picks the best setting of its sweep on
  validation; its sweep holds the learned schedule unchanged (scale 1, learned
  momenta), which reproduces the untuned GTN accuracy exactly."""
  import jax.numpy as jnp

  from gtnjax import evaluation as ev, train

  tuned = evaluation["gtn_tuned_schedule_test_accuracy"]
  sweep = tuned["sweep"]
  assert len(sweep) == len(ev.SCHEDULE_LR_SCALES) * len(ev.SCHEDULE_MOMENTA) and tuned["n"] == 2
  best = max(sweep, key=lambda s: s["validation_accuracy"])
  assert (tuned["lr_scale"], tuned["momentum"]) == (best["lr_scale"], best["momentum"])
  assert len({s["validation_accuracy"] for s in sweep}) > 1  # the knobs change training
  run, params, _ = train.load_teacher(str(workdir))
  data = run.dataset
  learned = ev._teacher_accuracies(
      params, ev.seed_keys(run.config.seed, 2), data.train_images, data.train_labels,
      data.test_images, data.test_labels, 1.0, jnp.nan, spec=run.learner_spec("mlp"),
      teacher_spec=run.teacher_spec)
  assert [float(a) for a in learned] == evaluation["gtn_test_accuracy"]["values"]


def _check_export_reproduces_the_first_fresh_learner(workdir, arrays):
  """A training loop written from the README alone (PyTorch-form SGD with momentum on
  the exported x, y, lr, momentum; test images mapped by the README's rule from the raw
  scikit-learn pixels) reproduces the accuracy of the first fresh learner of the run's
  evaluation. Only the network (init and forward) comes from gtnjax."""
  import jax
  import jax.numpy as jnp
  from sklearn.datasets import load_digits

  from gtnjax import evaluation, inner_loop, train

  run, _, _ = train.load_teacher(str(workdir))
  spec = run.learner_spec(str(arrays["learner"]))
  _, learner_keys = evaluation.seed_data_and_learner_keys(run.config.seed, 1)
  params = inner_loop.init_state(spec, learner_keys[0]).params
  velocity = jax.tree.map(jnp.zeros_like, params)

  def loss(params, x, y):
    logits, means = spec.apply(params, x)
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), -1)), means

  means = None
  for x, y, lr, momentum in zip(arrays["x"], arrays["y"], arrays["lr"], arrays["momentum"]):
    (_, means), grads = jax.value_and_grad(loss, has_aux=True)(params, x, y)
    velocity = jax.tree.map(lambda v, g: momentum * v + g, velocity, grads)
    params = jax.tree.map(lambda p, v: p - lr * v, params, velocity)

  digits = load_digits()  # the docstring of gtnjax.data.digits gives the test rows
  test_rows = np.random.default_rng(0).permutation(len(digits.target))[-300:]
  images = (digits.images[test_rows, :, :, None] / 16.0 - arrays["mean"]) / arrays["std"]
  logits, _ = spec.apply(params, jnp.asarray(images, jnp.float32), means)
  accuracy = float(np.mean(np.argmax(logits, -1) == digits.target[test_rows]))
  summary = json.load(open(workdir / "summary.json"))
  first_learner = summary["gtn_test_accuracy"]["values"][0]
  # Equal up to float reassociation: at most one test image may flip.
  assert abs(accuracy - first_learner) <= 1 / 300 + 1e-9, (accuracy, first_learner)
  assert accuracy > 0.2, accuracy  # a trained learner, not chance (the fixture's is ~0.37)


@pytest.mark.slow
def test_corrupt_latest_checkpoint_falls_back_to_previous(trained, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained[0], workdir)  # the session's run, checkpoints 40, 80, 100
  ckpt_dir = workdir / "checkpoints"
  assert sorted(int(s) for s in os.listdir(ckpt_dir)) == [40, 80, 100]
  # Corrupt every data file of step 100.
  for root, _, files in os.walk(ckpt_dir / "100"):
    for name in files:
      if not name.startswith("_") and "commit" not in name:
        with open(os.path.join(root, name), "wb") as f:
          f.write(b"garbage")
  from gtnjax import train
  _, _, step = train.load_teacher(str(workdir))
  assert step == 80
  assert os.listdir(workdir / "corrupt_checkpoints") == ["100"]  # moved aside, not deleted


@pytest.mark.slow
def test_changed_config_on_existing_workdir_is_refused(trained, repo_root):
  workdir, _ = trained
  result = gtnjax("train", "--config", DIGITS_TEST, "--workdir", str(workdir),
                  "--config.num_meta_steps=100", "--config.seed=7", cwd=repo_root)
  assert result.returncode == 2 and "different config" in result.stderr
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [40, 80, 100]


def test_override_parsing():
  rest, overrides = cli._split_overrides(["train", "--config.a=1", "--config.b", "2", "--x"])
  assert rest == ["train", "--x"] and overrides == {"a": "1", "b": "2"}


def test_dashed_and_underscored_flags_mean_the_same():
  """Flags are documented with dashes; the underscore spelling is accepted too."""
  parser = cli._parser()
  dashed = parser.parse_args(["train", "--workdir", "w", "--stop-after", "3", "--no-progress",
                              "--coordinator-address", "h:1", "--num-processes", "2",
                              "--process-id", "1"])
  underscored = parser.parse_args(["train", "--workdir", "w", "--stop_after", "3",
                                   "--no_progress", "--coordinator_address", "h:1",
                                   "--num_processes", "2", "--process_id", "1"])
  assert vars(dashed) == vars(underscored)
  assert (dashed.stop_after, dashed.no_progress, dashed.coordinator_address,
          dashed.num_processes, dashed.process_id) == (3, True, "h:1", 2, 1)
  nas = parser.parse_args(["nas", "--workdir", "w", "--ground_truth", "g.csv",
                           "--no-ground-truth-training"])
  assert nas.ground_truth == "g.csv" and nas.no_ground_truth_training
