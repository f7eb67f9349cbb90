"""Your own Flax module as a learner: the same `init` / `apply` as `LearnerSpec`.

    from gtnjax import flax_learners
    spec = flax_learners.from_flax(MyModule(), input_shape=(28, 28, 1), num_classes=10)
    # or in a config: learner = "flax:my_package.models:make_module"

An NNX module class (`from_nnx`, NNX being Flax's API for new code) becomes
an `NnxLearnerSpec`, a linen module (`from_flax`) a `FlaxLearnerSpec`: both
hashable (a static jit argument; equal modules give equal specs), with
`init(key) -> params` (the `nnx.Param` state or the "params" collection, as a
pure dict) and `apply(params, x, batch_means=None) -> (logits, batch
statistics)`, so the inner loop, meta-training and evaluation use them as they
use the built-in learners. An NNX module is split and merged natively
(`nnx.split` / `nnx.merge`), with no linen bridge. The module is used as written (gtnjax's
`weight_norm`, `conv_impl` and `pool_impl` settings do not reach it); it must
map [N, H, W, C] images to [N, num_classes] logits and need no random numbers
when applied (no dropout).

Batch statistics. gtnjax's learners normalise with the current batch's
statistics while training, and at test time with those of their *latest
training batch* (batch-norm momentum 0, as in the paper's code). A Flax
`nn.BatchNorm(use_running_average=not train, momentum=0.0)` does exactly this:
in training mode it normalises with the batch's mean and variance and stores
`momentum * old + (1 - momentum) * batch` = the batch's own in its
"batch_stats" collection, which becomes the learner state's `batch_means`; in
test mode it normalises with the stored ones. Another momentum m (Flax's
default is 0.99) asks for a running average, which gtnjax does not keep: each
training step starts from the initial statistics, so it would store
m * initial + (1 - m) * batch; and a true running average would, after
gtnjax's few inner steps, still be mostly the initial mean 0 / variance 1
(0.99 ** 16 = 0.85). Such a module is refused, with the fix, rather than
silently changed. `from_flax` checks the convention on two small random batches when it wraps a module
(whatever its layers: linen, NNX or custom): statistics come from the training
batch, test-mode logits with them equal training-mode logits on that batch,
and test-mode logits of an example do not depend on the rest of its batch.

Modes: the module's `__call__` is given `train=True` in training mode and
`train=False` in test mode if it has a `train` parameter (another name with
`train_kwarg`; a module without one is called the same way in both). An NNX
module is put in `.train()` / `.eval()` mode instead.

Before training a learner's test-mode statistics are the module's initial ones
(Flax: mean 0, variance 1).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import keyword
import re
from typing import Any, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


_STATS = "batch_stats"  # Flax's collection of batch-norm statistics (nnx.BatchStat)


@dataclasses.dataclass(frozen=True)
class FlaxLearnerSpec:
  """A Flax module as a learner; frozen and hashed by the module's definition.

  Build it with `from_flax` (which checks the module) rather than directly.

  Attributes:
    name: the learner's name in configs, metrics and summaries.
    module: a linen module (an `nnx.bridge.ToLinen` for an NNX one).
    input_shape: (H, W, C) of the images.
    num_classes: K, the number of logits.
    train_kwarg: the `__call__` parameter given True in training mode and
      False in test mode; None gives none.
  """
  name: str
  module: nn.Module
  input_shape: tuple[int, int, int]
  num_classes: int
  train_kwarg: str | None = "train"

  @property
  def _is_nnx(self) -> bool:
    return isinstance(self.module, nnx.bridge.ToLinen)

  @property
  def kind(self) -> type:
    return self.module.nnx_class if self._is_nnx else type(self.module)

  def _mode(self, train: bool) -> dict[str, Any]:
    if self._is_nnx:
      return {"nnx_method": _nnx_train_call if train else _nnx_eval_call}
    return {} if self.train_kwarg is None else {self.train_kwarg: train}

  def _variables(self, key: jax.Array) -> dict[str, Any]:
    dummy = jnp.zeros((1, *self.input_shape))
    return flax.core.unfreeze(self.module.init(key, dummy, **self._mode(False)))

  def init(self, key: jax.Array) -> Any:
    """Fresh parameters (the module's "params" collection)."""
    return self._variables(key)["params"]

  def initial_batch_stats(self) -> Any:
    """The module's initial "batch_stats" ({} without batch norm): the test-mode
    statistics of a learner that has not trained yet."""
    # Traced each time; inside jit the parameter initialisation is dead code.
    key, dummy = jax.random.key(0), jnp.zeros((1, *self.input_shape))
    initial = self._variables(key).get(_STATS, {})
    # Flax creates batch statistics in float32, but a training step returns
    # them in the data's dtype (float64 under jax_enable_x64): start in that,
    # so that they can be a scan carry (the values, 0 and 1, are exact).
    trained = jax.eval_shape(lambda k: self.apply(self.init(k), dummy)[1], key)
    if jax.tree.structure(trained) != jax.tree.structure(initial):
      return initial  # `from_flax` reports it
    return jax.tree.map(lambda a, t: a.astype(t.dtype), initial, trained)

  @property
  def fingerprint(self) -> str:
    """The module's definition as text, for cache keys: a changed module under
    an unchanged name does not reuse another's cached baselines."""
    text = f"{self.module!r} train_kwarg={self.train_kwarg}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # function fields: no per-process address

  def apply(self, params: Any, x: jax.Array, batch_means: Any = None
            ) -> tuple[jax.Array, Any]:
    """Logits of a batch, like `LearnerSpec.apply`.

    Args:
      params: from `init` (or trained).
      x: [N, H, W, C] images.
      batch_means: the module's "batch_stats" to normalise with (test mode);
        None uses the batch's own (training mode).

    Returns:
      ([N, K] logits, the "batch_stats" used: in training mode the batch's).
    """
    if batch_means is None:
      # The collection is mutable and absent, so BatchNorm starts from its
      # initial statistics; with momentum 0 it stores the batch's own.
      logits, updated = self.module.apply({"params": params}, x, mutable=[_STATS],
                                          **self._mode(True))
      return logits, flax.core.unfreeze(updated).get(_STATS, {})
    logits = self.module.apply({"params": params, _STATS: batch_means}, x, **self._mode(False))
    return logits, batch_means


def _nnx_train_call(module, x):
  module.train()
  return module(x)


def _nnx_eval_call(module, x):
  module.eval()
  return module(x)


@dataclasses.dataclass(frozen=True)
class NnxLearnerSpec:
  """An NNX module class as a learner, built as `nnx_class(*args, **kwargs,
  rngs=nnx.Rngs(key))` for each fresh learner; trained in `.train()` mode and
  tested in `.eval()` mode. Build it with `from_nnx` (which checks it).

  Parameters and batch statistics travel as pure dicts of the module's
  `nnx.Param` and `nnx.BatchStat` state; `apply` merges them into the
  module's graph (`nnx.merge`), calls it, and reads the statistics back.
  """
  name: str
  nnx_class: type
  args: tuple
  kwargs: flax.core.FrozenDict
  input_shape: tuple[int, int, int]
  num_classes: int
  train_kwarg = None  # modes are .train() / .eval()

  @property
  def kind(self) -> type:
    return self.nnx_class

  def _build(self, key: Any) -> nnx.Module:
    return self.nnx_class(*self.args, **self.kwargs, rngs=nnx.Rngs(key))

  def init(self, key: jax.Array) -> Any:
    """Fresh parameters (the module's `nnx.Param` state as a pure dict)."""
    return nnx.to_pure_dict(nnx.state(self._build(key), nnx.Param))

  def initial_batch_stats(self) -> Any:
    """The module's initial `nnx.BatchStat` state ({} without batch norm), in
    the dtype a training step returns (see `FlaxLearnerSpec`)."""
    initial = jax.tree.map(jnp.asarray, nnx.to_pure_dict(
        nnx.state(self._build(0), nnx.BatchStat)))
    dummy = jnp.zeros((1, *self.input_shape))
    trained = jax.eval_shape(lambda k: self.apply(self.init(k), dummy)[1], jax.random.key(0))
    if jax.tree.structure(trained) != jax.tree.structure(initial):
      return initial  # `from_nnx` reports it
    return jax.tree.map(lambda a, t: a.astype(t.dtype), initial, trained)

  @property
  def fingerprint(self) -> str:
    """The class and its arguments as text, for cache keys."""
    text = (f"{self.nnx_class.__module__}.{self.nnx_class.__qualname__} args={self.args!r} "
            f"kwargs={dict(self.kwargs)!r}")
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)

  def apply(self, params: Any, x: jax.Array, batch_means: Any = None
            ) -> tuple[jax.Array, Any]:
    """Logits of a batch, like `FlaxLearnerSpec.apply` (batch_means: the
    `nnx.BatchStat` state to normalise with; None uses the batch's own)."""
    graph, abstract_params, abstract_stats = _nnx_structure(self)
    param_state = _filled(abstract_params, params)
    if batch_means is None:  # training mode starts from the initial statistics
      stats = nnx.to_pure_dict(nnx.state(self._build(0), nnx.BatchStat))
    else:
      stats = batch_means
    module = nnx.merge(graph, param_state, _filled(abstract_stats, stats))
    if batch_means is None:
      module.train()
      logits = module(x)
      return logits, nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))
    module.eval()
    return module(x), batch_means


def _filled(abstract: nnx.State, values: Any) -> nnx.State:
  state = jax.tree.map(lambda a: a, abstract)  # a copy: replace_by_pure_dict writes in place
  nnx.replace_by_pure_dict(state, values)
  return state


@functools.lru_cache(maxsize=None)
def _nnx_structure(spec: NnxLearnerSpec) -> tuple[Any, nnx.State, nnx.State]:
  """(graph definition, abstract Param state, abstract BatchStat state) of
  the spec's module, built once without computing any weight."""
  abstract = nnx.eval_shape(lambda: spec._build(0))
  graph, params, stats, rest = nnx.split(abstract, nnx.Param, nnx.BatchStat, ...)
  if jax.tree.leaves(rest):
    raise ValueError(
        f"learner {spec.name!r} ({spec.nnx_class.__name__}) keeps state that is neither "
        f"nnx.Param nor nnx.BatchStat ({list(nnx.to_flat_state(rest))[:3]}...), e.g. random "
        "number streams for dropout: a learner module runs without random numbers")
  return graph, params, stats


def _accepts(module: nn.Module, kwarg: str) -> bool:
  parameters = inspect.signature(type(module).__call__).parameters.values()
  return any(p.name == kwarg or p.kind == p.VAR_KEYWORD for p in parameters)


def from_flax(module: nn.Module, input_shape: Sequence[int], num_classes: int, *,
              name: str | None = None, train_kwarg: str | None = "train") -> FlaxLearnerSpec:
  """A checked learner spec for a linen module (or an `nnx.bridge.ToLinen`).

  Args:
    module: an unbound linen module mapping [N, *input_shape] images to
      [N, num_classes] logits.
    input_shape: (H, W, C) of the data set's images.
    num_classes: the data set's classes.
    name: the learner's name (default: the module's class name).
    train_kwarg: the module's training flag, passed True in training mode and
      False in test mode if `__call__` accepts it; None passes nothing; an
      NNX module's modes are set with `.train()` / `.eval()` instead.

  Raises:
    ValueError: naming the fix, if the module is not hashable, fails on the
      input shape, gives other logits, or breaks the batch-statistics
      convention (see the module docstring).
  """
  if not isinstance(module, nn.Module):
    raise ValueError(f"from_flax needs a flax.linen Module, got {type(module).__name__}; "
                     "for an NNX module use from_nnx")
  if isinstance(module, nnx.bridge.ToLinen):
    train_kwarg = None  # its modes are .train() / .eval()
  elif train_kwarg is not None and not _accepts(module, train_kwarg):
    if train_kwarg != "train":
      raise ValueError(f"{type(module).__name__}.__call__ has no parameter {train_kwarg!r} "
                       "(train_kwarg); name its training flag, or pass train_kwarg=None")
    train_kwarg = None
  spec = FlaxLearnerSpec(name=name or type(module).__name__, module=module,
                         input_shape=tuple(int(d) for d in input_shape),
                         num_classes=int(num_classes), train_kwarg=train_kwarg)
  try:
    hash(spec)
  except TypeError as e:
    raise ValueError(f"learner {spec.name!r}: the module must be hashable to be a static jit "
                     f"argument ({e}); give its fields as tuples, not lists or dicts") from e
  _check(spec)
  return spec


def from_nnx(nnx_class, input_shape: Sequence[int], num_classes: int, *, args: Sequence = (),
             kwargs: Mapping[str, Any] | None = None, name: str | None = None
             ) -> NnxLearnerSpec:
  """A checked learner spec for an NNX module class, built as
  `nnx_class(*args, **kwargs, rngs=nnx.Rngs(key))` with fresh parameters per
  learner; it is trained in `.train()` mode and tested in `.eval()` mode.
  args and kwargs must be hashable. Its BatchNorms need momentum=0.0 (see the
  module docstring).

  Raises:
    ValueError: naming the fix, as `from_flax`.
  """
  if not (isinstance(nnx_class, type) and issubclass(nnx_class, nnx.Module)):
    raise ValueError(f"from_nnx needs an nnx.Module class (not an instance), got "
                     f"{nnx_class!r}; for a linen module use from_flax")
  spec = NnxLearnerSpec(name=name or nnx_class.__name__, nnx_class=nnx_class,
                        args=tuple(args), kwargs=flax.core.FrozenDict(kwargs or {}),
                        input_shape=tuple(int(d) for d in input_shape),
                        num_classes=int(num_classes))
  try:
    hash(spec)
  except TypeError as e:
    raise ValueError(f"learner {spec.name!r}: args and kwargs must be hashable to be a static "
                     f"jit argument ({e}); give them as tuples, not lists or dicts") from e
  _check(spec)
  return spec


# The check runs once on tiny batches: compile it fast rather than well (XLA
# options of every backend; a fifth of the compile time on CPU).
_QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.partial(jax.jit, static_argnums=0, compiler_options=_QUICK_COMPILE)
def _probe(spec: FlaxLearnerSpec | NnxLearnerSpec, x1: jax.Array, x2: jax.Array):
  params = spec.init(jax.random.key(0))
  logits1, stats1 = spec.apply(params, x1)
  _, stats2 = spec.apply(params, x2)
  test1, _ = spec.apply(params, x1, stats1)
  test_part, _ = spec.apply(params, x1[:2], stats1)
  return spec.initial_batch_stats(), logits1, stats1, stats2, test1, test_part


def _check(spec: FlaxLearnerSpec | NnxLearnerSpec) -> None:
  """Run the module on two small random batches: shapes and the convention."""
  where = f"learner {spec.name!r} ({spec.kind.__name__})"
  x1, x2 = jax.random.normal(jax.random.key(1), (2, 4, *spec.input_shape))
  try:
    initial, logits1, stats1, stats2, test1, test_part = _probe(spec, x1, x2)
  except Exception as e:  # the user's module: say which and on what
    raise ValueError(
        f"{where} fails on a batch of shape {tuple(x1.shape)}: {type(e).__name__}: {e} (a "
        "learner module runs without random numbers, e.g. no dropout, and its BatchNorms use "
        f"batch statistics exactly when its training flag {spec.train_kwarg!r} is True)") from e
  if logits1.shape != (4, spec.num_classes):
    raise ValueError(f"{where} gives logits of shape {tuple(logits1.shape)} for 4 images; "
                     f"expected (4, {spec.num_classes}) for the data set's classes")
  shapes = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
  if shapes(stats1) != shapes(initial):
    raise ValueError(f"{where}: its batch statistics after a training step {shapes(stats1)} "
                     f"differ in structure from its initial ones {shapes(initial)}")
  close = lambda a, b: bool(np.allclose(a, b, rtol=1e-4, atol=1e-5))
  fix = ("build its BatchNorms as nn.BatchNorm(use_running_average=not train, momentum=0.0) "
         "(nnx.BatchNorm(..., momentum=0.0)), with no other difference between training and "
         "test mode such as dropout")
  if jax.tree.leaves(stats1) and all(
      close(a, b) for a, b in zip(jax.tree.leaves(stats1), jax.tree.leaves(stats2))):
    raise ValueError(f"{where}: its batch statistics do not come from the training batch (does "
                     f"it get its training flag? train_kwarg={spec.train_kwarg!r}); {fix}")
  if not close(test1, logits1):
    raise ValueError(f"{where}: in test mode with the statistics of its latest training batch "
                     "it does not reproduce its training-mode logits on that batch, as gtnjax's "
                     f"learners do (batch-norm momentum 0); {fix}")
  if not close(test_part, test1[:2]):
    raise ValueError(f"{where}: its test-mode logits depend on the rest of the batch (batch "
                     f"statistics used at test time? train_kwarg={spec.train_kwarg!r}); {fix}")


# ------------------------------------------------------------ "flax:" names
def _parse(name: str) -> tuple[str, str]:
  # `gtnjax.registry` owns the "flax:" prefix and sends only such names here.
  module_path, sep, factory = name.partition(":")[2].partition(":")
  valid = sep and factory.isidentifier() and not keyword.iskeyword(factory) and all(
      part.isidentifier() for part in module_path.split("."))
  if not valid:
    raise ValueError(f"bad learner name {name!r}: write flax:<module>:<factory>, e.g. "
                     "flax:my_package.models:make_cnn, where make_cnn() returns a "
                     "flax.linen Module")
  return module_path, factory


@functools.lru_cache(maxsize=None)
def _module_of(name: str) -> nn.Module:
  module_path, factory_name = _parse(name)
  try:
    python_module = importlib.import_module(module_path)
  except Exception as e:
    raise ValueError(f"learner {name!r}: cannot import {module_path!r} ({type(e).__name__}: "
                     f"{e}); it must be importable: installed, or on PYTHONPATH (the `gtnjax` "
                     "command does not search the current directory: PYTHONPATH=.)") from e
  factory = getattr(python_module, factory_name, None)
  if not callable(factory):
    raise ValueError(f"learner {name!r}: {module_path} has no callable {factory_name!r}")
  try:
    module = factory()
  except Exception as e:
    raise ValueError(f"learner {name!r}: {module_path}.{factory_name}() failed "
                     f"({type(e).__name__}: {e}); it must take no arguments") from e
  if not isinstance(module, nn.Module):
    raise ValueError(f"learner {name!r}: {module_path}.{factory_name}() returned a "
                     f"{type(module).__name__}, not a flax.linen Module (for an NNX module "
                     "return flax.nnx.bridge.ToLinen(YourModule, kwargs=...))")
  return module


def name_error(name: str) -> str | None:
  """Why `name` ("flax:<module>:<factory>") names no Flax learner, or None."""
  try:
    _module_of(name)
  except ValueError as e:
    return str(e)
  return None


@functools.lru_cache(maxsize=None)
def from_name(name: str, input_shape: tuple[int, int, int], num_classes: int
              ) -> FlaxLearnerSpec:
  """The checked spec of a "flax:<module>:<factory>" learner for a data set."""
  return from_flax(_module_of(name), input_shape, num_classes, name=name)
