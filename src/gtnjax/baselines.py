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
                     Its config and workdir are made here; meta-training it
                     needs the training loop, so `gtnjax.report` runs it.

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

from gtnjax import config as gconfig, data, evaluation, learners, rundir

# Bump when a change alters what a cached baseline would contain.
CACHE_VERSION = 1
# Multiples of T the constant-schedule baseline also trains for (steps_curve).
STEP_MULTIPLES = (1, 2, 3, 4, 6, 8, 12, 16)
def cache_dir(config) -> str:
  return config.baseline_dir or os.path.join(data.default_cache_dir(), "baselines")


def cache_key(kind: str, values: dict[str, Any]) -> str:
  """A cache entry's name: `kind` and a hash of everything it depends on."""
  text = json.dumps({"kind": kind, "version": CACHE_VERSION, **values}, sort_keys=True,
                    default=list)
  return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def constant_schedule(run, learner_name: str, num_seeds: int,
                      progress: Callable[[], None] | None = None) -> dict[str, Any]:
  """Cached `evaluation.evaluate_real_data` for one learner of `run`."""
  config = run.config
  values = gconfig.key_values(config, gconfig.CONSTANT)
  spec = run.learner_spec(learner_name)
  fingerprint = learners.definition_fingerprints([spec]).get(learner_name)
  if fingerprint is not None:
    values["learner_fingerprint"] = fingerprint
  path = os.path.join(cache_dir(config), cache_key(
      "constant", {**values, "learner": learner_name, "num_seeds": num_seeds,
                   "step_multiples": STEP_MULTIPLES}) + ".json")
  cached = rundir.read_json(path)
  if cached is not None:
    return cached
  result = evaluation.evaluate_real_data(
      spec, run.dataset, inner_steps=config.inner_steps,
      batch_size=config.inner_batch_size, lrs=config.baseline_lrs,
      momenta=config.baseline_momenta, seed=config.seed, num_seeds=num_seeds,
      step_multiples=STEP_MULTIPLES, progress=progress)
  rundir.write_json(path, result)
  return result


def learned_schedule_config(config):
  """The run's config with a real_data teacher (its own fields at their defaults)."""
  defaults = gconfig.default_config()
  values = config.to_dict()
  for field in gconfig.fields_with(gconfig.TEACHER):
    values[field] = defaults[field]
  values["teacher"] = "real_data"
  out = gconfig.default_config()
  out.update(values)
  return out


def learned_schedule_workdir(config, learner_specs=()) -> str:
  """Where the learned-schedule baseline of `config` meta-trains; learner_specs:
  the run's meta-training learners (only Flax ones change the folder)."""
  baseline = learned_schedule_config(config)
  values = gconfig.run_key_values(baseline)
  fingerprints = learners.definition_fingerprints(learner_specs)
  if fingerprints:
    values["learner_fingerprints"] = fingerprints
  return os.path.join(cache_dir(config), cache_key("learned_schedule", values))
