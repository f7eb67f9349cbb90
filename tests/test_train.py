"""Training loop: compiles once, is deterministic, resumes exactly, skips bad updates."""

import functools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gtnjax import (checkpointing, config as gconfig, evaluation, meta, parallel, registry,
                    report, train)


def tiny_config(**overrides):
  c = gconfig.load_config_file(os.path.join(os.path.dirname(__file__), "..", "experiments",
                                            "configs", "digits.py") + ":test")
  c.num_meta_steps = 5
  c.checkpoint_every = 2
  c.eval_seeds = 2
  for k, v in overrides.items():
    c[k] = v
  return c


def read_metrics(workdir):
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  for r in records:
    r.pop("seconds")
  return records


def final_params(workdir, config):
  run = train.prepare(config)
  like = meta.init_state(run.setup, run.optimizer, run.keys()[0])
  ckpt = checkpointing.Checkpointer(str(workdir))
  step, state = ckpt.restore_latest(like)
  ckpt.close()
  return step, state


# An interrupted run resuming to the uninterrupted run's metrics, summary and
# teacher: tests/test_reliability.py (SIGKILL and SIGTERM, through the CLI);
# the resolved conv/pool implementations recorded in config.json:
# tests/test_cli.py::test_train_writes_metrics_summary_and_checkpoints; the
# fallback past a corrupt latest checkpoint:
# tests/test_cli.py::test_corrupt_latest_checkpoint_falls_back_to_previous (it
# copies the CLI tests' run, which xdist's --dist loadfile keeps on one worker).


@pytest.mark.parametrize("field,value", [("conv_impl", "cudnn"), ("pool_impl", "avg")])
def test_unknown_implementation_is_a_config_error_naming_the_choices(field, value):
  with pytest.raises(gconfig.ConfigError, match=f"'{field}'.*choose auto or one of"):
    gconfig.validate(tiny_config(**{field: value}))


@pytest.mark.parametrize("fields,message", [
    (dict(learner="cell:pool"), "'ranking_cells'.*ground-truth CSV"),
    (dict(ranking_weight=1.0), "'ranking_weight'.*learner='cell:pool'"),
    (dict(ranking_weight=-1.0), "'ranking_weight'.*>= 0")])
def test_ranking_aware_fields_are_config_errors_naming_the_fix(fields, message):
  with pytest.raises(gconfig.ConfigError, match=message):
    gconfig.validate(tiny_config(**fields))


def test_a_missing_table_of_labelled_cells_is_refused_before_any_work():
  with pytest.raises(gconfig.ConfigError, match="'ranking_cells'.*no such file"):
    train.prepare(tiny_config(learner="cell:pool", ranking_cells="no/such.csv"))


def test_resolved_impls_reach_the_specs():
  run = train.prepare(tiny_config(conv_impl="lax"))
  assert run.teacher_spec.conv_impl == "lax" and run.teacher_spec.pool_impl == "phases"
  assert all((s.conv_impl, s.pool_impl) == ("lax", "phases") for s in run.setup.learners)
  assert run.learner_spec(run.setup.learners[0].name) == run.setup.learners[0]


@pytest.mark.slow
def test_other_seed_differs(tmp_path):
  # The same seed giving the same metrics and summary, across processes and
  # through a resume: tests/test_reliability.py (its reference vs its rerun).
  # Meta-training alone: the seed reaches the evaluation through the same keys.
  for seed, name in ((0, "a"), (1, "c")):
    train.train(tiny_config(num_meta_steps=2, seed=seed), str(tmp_path / name), progress=False)
  a, c = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "c")
  assert len(a) == len(c) == 2 and a != c


@pytest.mark.slow  # compiles a whole meta-step of the digits test config
def test_meta_step_compiles_once_and_skips_non_finite_updates(monkeypatch):
  assert jnp.zeros(()).dtype == jnp.float32, "float64 leaked out of the tests that need it"
  run = train.prepare(tiny_config())
  init_key, train_key = run.keys()
  x, y = jnp.asarray(run.dataset.train_images), jnp.asarray(run.dataset.train_labels)
  # The step looks meta_step up when it traces: a second trace (a recompile) raises.
  monkeypatch.setattr(meta, "meta_step", chex.assert_max_traces(meta.meta_step, n=1))
  mesh = parallel.make_mesh(1)
  step = meta.make_meta_step(run.setup, run.optimizer, mesh)
  state = parallel.replicate(meta.init_state(run.setup, run.optimizer, init_key), mesh)
  state, metrics = step(state, train_key, x, y)  # a real update first: Adam's moments are non-zero
  assert np.isfinite(float(metrics["meta_loss"])) and int(metrics["skipped"]) == 0

  poisoned = x.at[:].set(jnp.nan)  # every probe is NaN: loss and gradient are NaN
  before = jax.tree.map(np.asarray, (state.teacher_params, state.opt_state))
  state, metrics = step(state, train_key, poisoned, y)
  assert int(metrics["skipped"]) == 1 and int(state.skipped_updates) == 1
  # Neither the parameters nor the optimizer's moments and count moved.
  chex.assert_trees_all_equal(before, jax.tree.map(np.asarray,
                                                   (state.teacher_params, state.opt_state)))
  state, metrics = step(state, train_key, x, y)  # and training goes on
  assert int(metrics["skipped"]) == 0 and int(state.skipped_updates) == 1
  assert int(state.step) == 3


@pytest.mark.slow
def test_consecutive_non_finite_steps_stop_the_run_with_a_checkpoint(tmp_path):
  # An inner lr of 1e30 makes every learner, and so every meta-gradient, non-finite.
  config = tiny_config(init_inner_lr=1e30, max_consecutive_skips=2, num_meta_steps=5)
  with pytest.raises(train.NonFiniteMetaLoss, match="max_consecutive_skips=2"):
    report.train_and_evaluate(config, str(tmp_path), progress=False)
  step, state = final_params(tmp_path, config)
  assert step == 2 and int(state.skipped_updates) == 2
  untouched = train.prepare(config).teacher_spec.init(train.prepare(config).keys()[0])
  for a, b in zip(jax.tree.leaves(untouched), jax.tree.leaves(state.teacher_params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert [r["skipped"] for r in read_metrics(tmp_path)] == [1.0, 1.0]


@pytest.mark.slow
def test_summary_reports_both_baselines_and_reuses_them(tmp_path):
  config = tiny_config(num_meta_steps=2, baseline_dir=str(tmp_path / "baselines"))
  summary = report.train_and_evaluate(config, str(tmp_path / "a"), progress=False)
  learned = summary["real_data_learned_schedule_test_accuracy"]
  assert learned["n"] == config.eval_seeds and 0 <= learned["mean"] <= 1
  assert len(learned["lr"]) == config.inner_steps and learned["meta_steps"] == 2
  curve = summary["real_data_test_accuracy"]["steps_curve"]
  assert curve[0]["steps"] == config.inner_steps
  assert curve[0]["mean"] == summary["real_data_test_accuracy"]["mean"]
  # Another teacher with the same data, learner, T and B reuses both baselines.
  baseline_metrics = os.path.join(learned["workdir"], "metrics.jsonl")
  before = os.stat(baseline_metrics).st_mtime_ns
  other = report.train_and_evaluate(tiny_config(num_meta_steps=2, baseline_dir=str(tmp_path / "baselines"),
                                  curriculum="shuffled_batch"), str(tmp_path / "b"),
                      progress=False)
  assert os.stat(baseline_metrics).st_mtime_ns == before
  for field in ("real_data_test_accuracy", "real_data_learned_schedule_test_accuracy"):
    assert other[field] == summary[field]


@pytest.mark.slow
def test_learning_curve_trains_on_the_batches_evaluate_teacher_draws(monkeypatch):
  """The curve's batches are the teacher's, bit for bit, as `evaluate_teacher`
  computes them (parameters traced, not folded into the program: folding moves
  pixels by ~2e-6 even at this shape), so its last point is the evaluation's."""
  run = train.prepare(tiny_config())
  spec = run.learner_spec("cnn_small")
  params = run.teacher_spec.init(run.keys()[0])
  data = run.dataset
  seen = []
  accuracy_after_each_step = evaluation._accuracy_after_each_step

  def capture(keys, batches, *args, **kwargs):
    seen.append(batches)
    return accuracy_after_each_step(keys, batches, *args, **kwargs)

  monkeypatch.setattr(evaluation, "_accuracy_after_each_step", capture)
  curve = evaluation.learning_curve(
      spec, data, jax.tree_util.Partial(run.teacher_spec.batches, params), seed=0, num_seeds=2)
  assert curve["steps"] == list(range(run.config.inner_steps + 1))
  data_keys, _ = evaluation.seed_data_and_learner_keys(0, 2)
  # What `_teacher_accuracies` computes per seed: params are a jit argument.
  one_seed = jax.jit(lambda p, key: run.teacher_spec.batches(p, key, data.train_images,
                                                              data.train_labels))
  for i, key in enumerate(data_keys):
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[i], seen[0]), one_seed(params, key))
  evaluated = evaluation.evaluate_teacher(run.teacher_spec, params, spec, data, seed=0,
                                          num_seeds=2)
  assert curve["mean"][-1] == float(np.mean(evaluated["values"]))
  # Binding the parameters as constants is refused, not silently folded.
  with pytest.raises(TypeError, match="jax.tree_util.Partial"):
    evaluation.learning_curve(spec, data, functools.partial(run.teacher_spec.batches, params),
                              seed=0, num_seeds=2)
  # The same learners scored on the validation split (what settings are
  # compared on): each value is that learner, trained on its batches, on the
  # validation images; the test images are never read.
  on_validation = evaluation.evaluate_teacher(run.teacher_spec, params, spec, data, seed=0,
                                              num_seeds=2, split="validation")
  one_example = 1 / data.validation_labels.shape[0]
  for key, accuracy in zip(evaluation.seed_keys(0, 2), on_validation["values"]):
    teacher_key, learner_key = jax.random.split(key)
    state = evaluation.train_learner(spec, learner_key, one_seed(params, teacher_key))
    expected = evaluation.split_accuracy(spec, state, data.validation_images,
                                         data.validation_labels)
    assert accuracy == pytest.approx(float(expected), abs=one_example)
  with pytest.raises(ValueError, match="'test' or 'validation'"):
    evaluation.evaluate_teacher(run.teacher_spec, params, spec, data, seed=0, num_seeds=2,
                                split="train")


@pytest.mark.slow
def test_real_data_learning_curve_ends_where_the_evaluation_does():
  run = train.prepare(tiny_config())
  spec = run.learner_spec("cnn_small")
  data = run.dataset
  real = evaluation.evaluate_real_data(spec, data, inner_steps=run.config.inner_steps,
                                       batch_size=run.config.inner_batch_size, lrs=(0.1,),
                                       momenta=(0.5,), seed=0, num_seeds=2, step_multiples=(1, 2))
  real_curve = evaluation.learning_curve(spec, data, functools.partial(
      evaluation.real_batches, num_classes=spec.num_classes, inner_steps=run.config.inner_steps,
      batch_size=run.config.inner_batch_size, lr=0.1, momentum=0.5), seed=0, num_seeds=2)
  assert real_curve["mean"][-1] == float(np.mean(real["values"]))
  assert real["steps_curve"][0]["mean"] == real["mean"]


@pytest.mark.slow
def test_eval_every_logs_test_accuracy_across_a_stop(tmp_path):
  config = tiny_config(num_meta_steps=4, eval_every=2, learned_schedule_baseline=False)
  # Stopped after step 3 (the API's preemption), then resumed from its checkpoint.
  stopped = report.train_and_evaluate(config, str(tmp_path), progress=False, stop_after=3)
  assert stopped == {"preempted": True, "step": 3}
  assert not (tmp_path / "summary.json").exists()
  summary = report.train_and_evaluate(config, str(tmp_path), progress=False)
  logged = {r["step"]: r.get("test_accuracy") for r in read_metrics(tmp_path)}
  assert logged[1] is None and logged[3] is None
  assert 0 <= logged[2] <= 1 and logged[4] == summary["gtn_test_accuracy"]["mean"]


def test_real_data_baseline_is_chosen_on_validation_never_on_test():
  """Scrambling the test labels changes the reported accuracy but neither the
  sweep nor the chosen (lr, momentum); scrambling the validation labels changes
  the sweep. The chosen pair is the sweep's best on validation."""
  import dataclasses

  from gtnjax import data
  digits = data.load("digits")
  spec = registry.make_learner("mlp", digits.train_images.shape[1:], 10)
  settings = dict(inner_steps=4, batch_size=16, lrs=(0.01, 0.3), momenta=(0.5, 0.9),
                  seed=0, num_seeds=2)
  scramble = lambda labels: (labels + 1) % 10
  honest = evaluation.evaluate_real_data(spec, digits, **settings)
  test_scrambled = evaluation.evaluate_real_data(
      spec, dataclasses.replace(digits, test_labels=scramble(digits.test_labels)), **settings)
  validation_scrambled = evaluation.evaluate_real_data(
      spec, dataclasses.replace(digits, validation_labels=scramble(digits.validation_labels)),
      **settings)

  best = max(honest["sweep"], key=lambda s: s["validation_accuracy"])
  assert (honest["lr"], honest["momentum"]) == (best["lr"], best["momentum"])
  assert test_scrambled["sweep"] == honest["sweep"]
  assert (test_scrambled["lr"], test_scrambled["momentum"]) == (honest["lr"], honest["momentum"])
  assert test_scrambled["mean"] < honest["mean"] - 0.1  # the report does read test
  assert validation_scrambled["sweep"] != honest["sweep"]


def test_schedule_meta_lr_gives_the_schedule_its_own_adam_step():
  """Adam moves each parameter about its learning rate per step whatever the
  gradient's size, so over a run a parameter travels at most about the sum of
  its learning rates (the "step budget" of experiments/schedule_travel.py);
  `schedule_meta_lr` sets that sum for the schedule's parameters alone, and
  the learned-schedule baseline (a schedule and nothing else) inherits it."""
  from gtnjax import baselines, teacher
  steps = 6

  def travel(config):
    run = train.prepare(config)
    params = run.setup.teacher.init(run.keys()[0])
    grads = jax.tree.map(jnp.ones_like, params)  # one sign throughout: full Adam steps
    state = run.optimizer.init(params)
    moved = params
    for _ in range(steps):
      updates, state = run.optimizer.update(grads, state, moved)
      moved = optax.apply_updates(moved, updates)
    return {name: float(jnp.max(jnp.abs(jnp.ravel(a - b)))) for name, (a, b) in
            ((name, (jax.tree.leaves(moved[name])[0], jax.tree.leaves(params[name])[0]))
             for name in params)}

  def budget(lr, config):
    decay = optax.cosine_decay_schedule(lr, config.num_meta_steps, config.final_relative_lr)
    return sum(float(decay(step)) for step in range(steps))

  plain = tiny_config(num_meta_steps=10)
  own = tiny_config(num_meta_steps=10, schedule_meta_lr=50 * plain.meta_lr)
  for config in (plain, own):
    moved = travel(config)
    schedule_lr = config.schedule_meta_lr or config.meta_lr
    assert "log_lr" in moved and len(moved) > 2
    for name, distance in moved.items():
      lr = schedule_lr if name in teacher.SCHEDULE_PARAMETERS else config.meta_lr
      np.testing.assert_allclose(distance, budget(lr, config), rtol=1e-3, err_msg=name)
  # Only a non-default value enters the run's key; the baseline gets its own cache entry.
  assert "schedule_meta_lr" not in gconfig.run_key_values(plain)
  assert baselines.learned_schedule_config(own).schedule_meta_lr == own.schedule_meta_lr
  assert baselines.learned_schedule_workdir(own) != baselines.learned_schedule_workdir(plain)


def test_schedule_per_learner_evaluates_each_learner_with_its_own_schedule(tmp_path, monkeypatch):
  """`schedule_per_learner`: one schedule row per meta-training learner; the
  report trains a seen learner with its row and an unseen one with the rows'
  mean, and records each row. (The rows are set by hand, far apart, so that a
  mix-up shows; the meta-loss side: tests/test_meta_gradient.py.)"""
  from gtnjax import baselines
  config = tiny_config(learner="cnn_small,mlp", eval_learners="cnn_small,mlp,cnn",
                       schedule_per_learner=True, learned_schedule_baseline=False)
  run = train.prepare(config)
  params = run.teacher_spec.init(run.keys()[0])
  assert params["log_lr"].shape == (2, config.inner_steps)
  params = {**params, "log_lr": params["log_lr"] + jnp.array([[0.0], [-3.0]])}
  # The real-data baseline is not what this tests: a stand-in, no sweep.
  monkeypatch.setattr(baselines, "constant_schedule", lambda *args, **kwargs: {
      "mean": 0.5, "steps_curve": [{"steps": config.inner_steps, "mean": 0.5}]})
  summary = report.summarise(run, params, progress=False)
  accuracies = {}
  for name, index in (("cnn_small", 0), ("mlp", 1), ("cnn", None)):
    teacher_spec, own = run.teacher_spec.for_schedule(params, index)
    accuracies[name] = evaluation.evaluate_teacher(
        teacher_spec, own, run.learner_spec(name), run.dataset, seed=config.seed,
        num_seeds=config.eval_seeds)
    assert summary["per_learner"][name]["gtn_test_accuracy"] == accuracies[name]
  mlp_with_mean = evaluation.evaluate_teacher(
      *run.teacher_spec.for_schedule(params, None), run.learner_spec("mlp"), run.dataset,
      seed=config.seed, num_seeds=config.eval_seeds)
  assert mlp_with_mean["values"] != accuracies["mlp"]["values"]
  np.testing.assert_allclose(summary["learned_schedule_per_learner"]["mlp"]["lr"],
                             config.init_inner_lr * np.exp(-3.0), rtol=1e-5)
  np.testing.assert_allclose(summary["learned_lr"], config.init_inner_lr * np.exp(-1.5),
                             rtol=1e-5)
