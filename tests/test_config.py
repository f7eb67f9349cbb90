"""gtnjax.config: field declarations, committed configs, and the cache keys they make."""

import glob
import json
import os

import pytest

from gtnjax import baselines, config as gconfig


def test_every_committed_run_config_loads_and_validates(repo_root):
  paths = sorted(glob.glob(os.path.join(repo_root, "results", "**", "config.json"),
                           recursive=True))
  assert len(paths) >= 30  # the committed runs (35 when this test was written)
  for path in paths:
    with open(path) as f:
      saved = json.load(f)
    config = gconfig.from_json(json.dumps(saved))
    gconfig.validate(config)
    # Every recorded field survives the round trip (no field was renamed away).
    for field, value in saved.items():
      loaded = config[field]
      assert (list(loaded) if isinstance(loaded, tuple) else loaded) == value, (path, field)


def test_declared_roles_keep_the_cache_keys_of_runs_made_before_the_declarations(repo_root):
  # Keys computed by the code before the fields declared their roles (the
  # hand-kept lists of gtnjax 0.1.0 at commit 0babcd1): caches and baseline
  # workdirs made then must still be found, so a role moved to another field
  # fails here.
  config = gconfig.load_config_file(
      os.path.join(repo_root, "experiments", "configs", "mnist.py") + ":cpu")
  constant = baselines.cache_key("constant", {
      **gconfig.key_values(config, gconfig.CONSTANT),  # as baselines.constant_schedule
      "learner": "cnn_small", "num_seeds": 5, "step_multiples": baselines.STEP_MULTIPLES})
  assert constant == "constant-c0dcd911b4d8d9f1"
  assert os.path.basename(baselines.learned_schedule_workdir(config)) == (
      "learned_schedule-952d1945d92ff9f9")


def test_learned_schedule_baseline_resets_exactly_the_teacher_fields():
  config = gconfig.default_config()
  config.curriculum, config.soft_labels, config.noise_size = "shuffled_all", True, 64
  config.inner_steps, config.meta_lr = 4, 0.01
  baseline = baselines.learned_schedule_config(config)
  defaults = gconfig.default_config()
  assert baseline.teacher == "real_data"
  assert (baseline.curriculum, baseline.soft_labels, baseline.noise_size) == (
      defaults.curriculum, defaults.soft_labels, defaults.noise_size)
  assert (baseline.inner_steps, baseline.meta_lr) == (4, 0.01)  # run-defining, kept


def test_every_field_has_one_declaration_and_unknown_roles_find_nothing():
  names = list(gconfig.default_config().keys())
  assert len(names) == len(set(names))
  assert set(gconfig.RUN_DEFINING_FIELDS) <= set(names)
  assert gconfig.fields_with("no such role") == ()
  # Fields that only change speed, memory or bookkeeping never define a run:
  # a run may resume with other values of them.
  for field in ("remat", "conv_impl", "pool_impl", "log_every", "checkpoint_every",
                "num_devices", "eval_seeds"):
    assert field not in gconfig.RUN_DEFINING_FIELDS


@pytest.mark.parametrize("folder", ["/", "tmp"])
def test_default_train_config_is_the_embedded_digits_run_from_any_folder(folder, tmp_path,
                                                                        monkeypatch):
  from gtnjax import cli, configs
  monkeypatch.chdir("/" if folder == "/" else tmp_path)
  args = cli._parser().parse_args(["train", "--workdir", str(tmp_path / "run")])
  config = cli._load_train_config(args, {})
  digits = gconfig.load_config_file(configs.DIGITS)
  assert config.to_dict() == digits.to_dict()
  assert (config.num_meta_steps, config.population) == (600, 2)  # not default_config()'s


def test_population_gradient_must_be_one_gtnjax_meta_knows():
  from gtnjax import meta
  config = gconfig.default_config()
  config.population_gradient = "sum"
  with pytest.raises(gconfig.ConfigError) as error:
    gconfig.validate(config)
  assert f"population_gradient' = 'sum': must be one of {meta.POPULATION_GRADIENTS}" in str(error.value)
  for value in meta.POPULATION_GRADIENTS:
    config.population_gradient = value
    gconfig.validate(config)


def test_a_negative_schedule_meta_lr_is_refused_naming_the_fallback():
  config = gconfig.default_config()
  config.schedule_meta_lr = -0.01
  with pytest.raises(gconfig.ConfigError, match="schedule_meta_lr' = -0.01: must be >= 0 "
                     r"\(0: the schedule is updated with meta_lr\)"):
    gconfig.validate(config)
