"""The embedded default: scikit-learn's 8x8 digits, no download needed.

    gtnjax train --workdir runs/digits    # the default of `gtnjax train`
    gtnjax train --config experiments/configs/digits.py --workdir runs/digits   # the same

ARG: "" (default, a few minutes on 2 CPU cores) or "test" (seconds; for tests).
"""

from gtnjax.config import default_config


def get_config(arg=None):
  c = default_config()
  c.dataset = "digits"
  c.learner = "cnn_small"
  c.inner_steps = 16
  c.inner_batch_size = 32
  c.meta_batch_size = 64
  c.population = 2
  c.num_meta_steps = 600
  c.checkpoint_every = 100
  if arg == "test":
    c.inner_steps = 8
    c.inner_batch_size = 16
    c.meta_batch_size = 64
    c.population = 1
    c.num_meta_steps = 6
    c.checkpoint_every = 2
    c.eval_seeds = 2
    c.baseline_lrs = (0.03, 0.1)
    c.baseline_momenta = (0.5,)
  elif arg not in (None, ""):
    raise ValueError(f"unknown argument {arg!r}: use digits.py or digits.py:test")
  return c
