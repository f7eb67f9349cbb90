"""The two real-data baselines a teacher is judged against, computed once and reused.

  constant schedule  the learner trained for T steps on real batches of B with
                     the best constant (lr, momentum) of the config's sweep,
                     chosen on validation (`evaluation.evaluate_real_data`);
                     with the real-data steps needed to match any accuracy
                     (`steps_curve`, T to `STEP_MULTIPLES[-1]` T steps).
  learned schedule   the official code's baseline (`generator_type="dataset"`):
                     a `real_data` teacher — real batches, meta-learned per-step
                     lr and momentum — meta-trained with the run's own
                     meta-training config and budget, then evaluated like a GTN.

Neither depends on the teacher being judged, so each is cached under
`baseline_dir` (default `$GTNJAX_CACHE_DIR/baselines`), keyed by a hash of every
config field it depends on (data set, learner, T, B, the sweep, the seeds, and
for the learned schedule the meta-training fields): runs that differ only in
their teacher share them. The learned-schedule baseline meta-trains in its own
workdir there, so an interrupted one resumes. A learner with a `fingerprint`
(a Flax module's definition, `gtnjax.flax_learners`) adds it to the key, so a
changed module under an unchanged name is not given another's baselines.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable

from gtnjax import config as gconfig, data, evaluation, learners

# Bump when a change alters what a cached baseline would contain.
CACHE_VERSION = 1
# Multiples of T the constant-schedule baseline also trains for (steps_curve).
STEP_MULTIPLES = (1, 2, 3, 4, 6, 8, 12, 16)
# Fields that define the constant-schedule baseline of one learner.
_CONSTANT_FIELDS = ("dataset", "inner_steps", "inner_batch_size", "baseline_lrs",
                    "baseline_momenta", "seed", "random_widths", "weight_norm")
# The learned-schedule baseline is a real_data teacher meta-trained with the
# run's config; every run-defining field counts except the teacher's own.
_TEACHER_ONLY_FIELDS = ("teacher", "curriculum", "soft_labels", "noise_size",
                        "generator_padding", "output_init")


def cache_dir(config) -> str:
  return config.baseline_dir or os.path.join(data.default_cache_dir(), "baselines")


def _key(kind: str, values: dict[str, Any]) -> str:
  text = json.dumps({"kind": kind, "version": CACHE_VERSION, **values}, sort_keys=True,
                    default=list)
  return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _read_json(path: str) -> dict[str, Any] | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):  # absent, or cut by a kill: recompute
    return None


def _write_json(path: str, value: dict[str, Any]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(value, f, indent=1)
  os.replace(tmp, path)


def constant_schedule(run, learner_name: str, num_seeds: int,
                      progress: Callable[[], None] | None = None) -> dict[str, Any]:
  """Cached `evaluation.evaluate_real_data` for one learner of `run`."""
  config = run.config
  values = {f: config[f] for f in _CONSTANT_FIELDS}
  spec = run.learner_spec(learner_name)
  fingerprint = learners.definition_fingerprints([spec]).get(learner_name)
  if fingerprint is not None:
    values["learner_fingerprint"] = fingerprint
  path = os.path.join(cache_dir(config), _key(
      "constant", {**values, "learner": learner_name, "num_seeds": num_seeds,
                   "step_multiples": STEP_MULTIPLES}) + ".json")
  cached = _read_json(path)
  if cached is not None:
    return cached
  result = evaluation.evaluate_real_data(
      spec, run.dataset, inner_steps=config.inner_steps,
      batch_size=config.inner_batch_size, lrs=config.baseline_lrs,
      momenta=config.baseline_momenta, seed=config.seed, num_seeds=num_seeds,
      step_multiples=STEP_MULTIPLES, progress=progress)
  _write_json(path, result)
  return result


def learned_schedule_config(config):
  """The run's config with a real_data teacher (its own fields at their defaults)."""
  defaults = gconfig.default_config()
  values = config.to_dict()
  for field in _TEACHER_ONLY_FIELDS:
    values[field] = defaults[field]
  values["teacher"] = "real_data"
  out = gconfig.default_config()
  out.update(values)
  return out


def learned_schedule_workdir(config, learner_specs=()) -> str:
  """Where the learned-schedule baseline of `config` meta-trains; learner_specs:
  the run's meta-training learners (only Flax ones change the folder)."""
  baseline = learned_schedule_config(config)
  values = {f: baseline[f] for f in gconfig.RUN_DEFINING_FIELDS}
  fingerprints = learners.definition_fingerprints(learner_specs)
  if fingerprints:
    values["learner_fingerprints"] = fingerprints
  return os.path.join(cache_dir(config), _key("learned_schedule", values))


def trained_learned_schedule(run):
  """(baseline run, its teacher params) of `run`'s learned-schedule baseline
  if it has been meta-trained, else None (nothing is trained here)."""
  from gtnjax import train  # train uses this module
  workdir = learned_schedule_workdir(run.config, run.setup.learners)
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return None
  baseline_run, params, _ = train.load_teacher(workdir, learners=run.custom_learners)
  return baseline_run, params


def learned_schedule(run, learner_names: tuple[str, ...], num_seeds: int, *,
                     progress: bool = True) -> dict[str, dict[str, Any]]:
  """Test accuracy of fresh learners on real batches with a meta-learned
  schedule, per learner name; meta-trains the schedule on first use."""
  from gtnjax import train  # train uses this module
  workdir = learned_schedule_workdir(run.config, run.setup.learners)
  wanted = {}
  for name in learner_names:
    fingerprint = learners.definition_fingerprints([run.learner_spec(name)])
    wanted[name] = _key("evaluation", {"learner": name, "num_seeds": num_seeds, **fingerprint})
  cached = _read_json(os.path.join(workdir, "evaluations.json")) or {}
  if all(key in cached for key in wanted.values()):
    return {name: cached[key] for name, key in wanted.items()}

  baseline_run = train.prepare(learned_schedule_config(run.config),
                               learners=run.custom_learners)
  result = train.meta_train(baseline_run, workdir, progress=progress,
                            description="meta-train the learned-schedule real-data baseline")
  if result.preempted:
    raise train.Preempted(result.step)
  lr, momentum = baseline_run.teacher_spec.schedule(result.state.teacher_params)
  out = {}
  for name, key in wanted.items():
    if key not in cached:
      cached[key] = {
          **evaluation.evaluate_teacher(
              baseline_run.teacher_spec, result.state.teacher_params,
              baseline_run.learner_spec(name), baseline_run.dataset,
              seed=run.config.seed, num_seeds=num_seeds),
          "lr": [float(v) for v in lr], "momentum": [float(v) for v in momentum],
          "meta_steps": result.step, "workdir": workdir}
    out[name] = cached[key]
  _write_json(os.path.join(workdir, "evaluations.json"), cached)
  return out
