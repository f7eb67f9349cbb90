"""Learner names: the one place that turns a name in a config into a learner.

    cnn | cnn_gap | mlp | cnn_large | cnn_small | cnn_small_gap   `learners.ARCHITECTURES`
    cell:<6 ops joined by '-'> | cell:random | cell:pool           `gtnjax.nas.network`
    flax:<module>:<factory>                                        `gtnjax.flax_learners`

Every learner this returns satisfies `learners.Learner`. Learners built in
Python (`train.prepare(..., learners=[spec])`) are named by their own `name`
and never pass through here.

The NAS and Flax modules are imported only when a name asks for them: Flax is
a heavy import, and most runs use neither.
"""

from __future__ import annotations

from gtnjax import learners

CELL_PREFIX = "cell:"   # "cell:<ops joined by ->": a cell network of gtnjax.nas
FLAX_PREFIX = "flax:"   # "flax:<module>:<factory>": a Flax module (gtnjax.flax_learners)


def is_reserved(name: str) -> bool:
  """Whether `name` is a built-in name or uses a built-in prefix (a learner
  given in Python must be named otherwise)."""
  return name in learners.ARCHITECTURES or name.startswith((CELL_PREFIX, FLAX_PREFIX))


def name_error(name: str) -> str | None:
  """Why `name` names no learner, or None if it does.

  A built-in name, "cell:" followed by a cell encoding such as
  "cell:conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip", "cell:random", or
  "flax:" followed by an importable zero-argument factory of a Flax module,
  such as "flax:my_package.models:make_cnn".
  """
  if name.startswith(FLAX_PREFIX):
    from gtnjax import flax_learners
    return flax_learners.name_error(name)
  if name.startswith(CELL_PREFIX):
    from gtnjax.nas import network, space
    cell = name[len(CELL_PREFIX):]
    if cell in (network.RANDOM_CELL, network.POOL_CELL):
      return None
    try:
      space.from_string(cell)
    except ValueError as e:
      return f"bad cell learner {name!r}: {e}"
    return None
  if name not in learners.ARCHITECTURES:
    return (f"unknown learner {name!r}; choose from {', '.join(sorted(learners.ARCHITECTURES))}, "
            f"{CELL_PREFIX}<6 operations joined by '-'>, {CELL_PREFIX}random, "
            f"{FLAX_PREFIX}<module>:<factory> (a Flax module), or name a spec given as "
            "train.prepare(..., learners=[spec])")
  return None


def make_learner(name: str, input_shape: tuple[int, int, int], num_classes: int, *,
                 random_widths: bool = False, weight_norm: bool = True,
                 conv_impl: str = "auto", pool_impl: str = "auto",
                 cell_pool: str = "", cell_batch_norm: str = "mean") -> learners.Learner:
  """The named learner for a data set's image shape and classes.

  Args:
    name: see the module docstring.
    input_shape: (H, W, C) of the images.
    num_classes: K.
    random_widths: sample each hidden layer's width per init (built-in names only).
    weight_norm, conv_impl, pool_impl: see `learners.LearnerSpec`; a run takes
      them from its config. A Flax module is used as written: they do not apply
      to it, and cell networks take no pooling implementation.
    cell_pool: for "cell:pool", a table of labelled cells
      (`gtnjax.nas.space.read_labelled_cells`) each init draws its cell from.
    cell_batch_norm: the batch norm of cell learners ("mean" or "full", see
      `gtnjax.nas.network.CellNetworkSpec`); other learners ignore it.

  Raises:
    ValueError: naming the fix, for an unknown name or an impossible option.
  """
  error = name_error(name)
  if error:
    raise ValueError(error)
  input_shape = tuple(input_shape)
  if random_widths and name.startswith((CELL_PREFIX, FLAX_PREFIX)):
    kind = "cell" if name.startswith(CELL_PREFIX) else "Flax"
    raise ValueError(f"random_widths is not supported for {kind} learners ({name})")
  if name.startswith(FLAX_PREFIX):
    from gtnjax import flax_learners
    return flax_learners.from_name(name, input_shape, num_classes)
  if name.startswith(CELL_PREFIX):
    from gtnjax.nas import network, space
    cell = name[len(CELL_PREFIX):]
    if cell == network.RANDOM_CELL:
      return network.make(None, input_shape, num_classes, weight_norm=weight_norm,
                          conv_impl=conv_impl, random_cells=True,
                          batch_norm=cell_batch_norm)
    if cell == network.POOL_CELL:
      if not cell_pool:
        raise ValueError(f"{name} draws its cells from a table of labelled cells: set "
                         "config.ranking_cells to one (a gtnjax.nas ground-truth CSV)")
      encodings, labels = space.read_labelled_cells(cell_pool)
      return network.make(None, input_shape, num_classes, weight_norm=weight_norm,
                          conv_impl=conv_impl, cell_pool=encodings, cell_labels=labels,
                          batch_norm=cell_batch_norm)
    return network.make(space.from_string(cell), input_shape, num_classes,
                        weight_norm=weight_norm, conv_impl=conv_impl,
                        batch_norm=cell_batch_norm)
  conv, hidden, pool = learners.ARCHITECTURES[name]
  return learners.LearnerSpec(name=name, input_shape=input_shape, num_classes=num_classes,
                              conv_widths=conv, hidden_widths=hidden, global_pool=pool,
                              random_widths=random_widths, weight_norm=weight_norm,
                              conv_impl=conv_impl, pool_impl=pool_impl)
