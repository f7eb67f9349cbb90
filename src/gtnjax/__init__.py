"""gtnjax: Generative Teaching Networks in JAX.

    from gtnjax import config as gconfig, configs, report
    summary = report.train_and_evaluate(gconfig.load_config_file(configs.DIGITS), "runs/digits")

The modules below are the public API (README.md, "How it is built"). They are
imported on first attribute access (`gtnjax.train`), not here, so that
`import gtnjax` stays cheap and initialises no JAX backend: `gtnjax.parallel`
must be able to call `jax.distributed.initialize` first.
"""

import importlib

__all__ = ["baselines", "checkpointing", "config", "configs", "data", "evaluation", "export",
           "flax_learners", "generator", "inner_loop", "layers", "learners", "meta", "nas", "ops",
           "parallel", "preemption", "registry", "report", "rundir", "stats", "teacher", "train",
           "visualize"]


def __getattr__(name: str):
  if name in __all__:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
