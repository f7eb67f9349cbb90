"""Cell networks: the learners of the NAS search space.

Shape (NAS-Bench-201's, scaled to 28x28 inputs and a 2-core CPU):

  stem       space-to-depth 2x2 (a stride-2 stem that loses no pixel), conv3x3 -> C
  stage 0    `cells_per_stage` cells at C channels, H/2 x W/2
  reduction  2x2 average pool, conv3x3 -> 2C
  stage 1    cells at 2C, H/4 x W/4
  reduction  2x2 average pool, conv3x3 -> 4C
  stage 2    cells at 4C, H/8 x W/8 (rounded up)
  head       global average pool, dense -> K

Every cell of a network has the same encoding (`gtnjax.nas.space`). Every
convolution is weight-normed and followed by mean-only batch norm and
LeakyReLU(0.1), like the other gtnjax learners (`batch_norm="full"`: batch
norm with mean, variance and a learned scale, as the official GTN-NAS
candidates; its statistics per layer are a [2, C] (mean, variance) array
where mean-only batch norm has a [C] mean), so a cell network is a
learner: `spec.init(key)`, `spec.apply(params, x, batch_means)` and
`spec.initial_batch_stats()` work with `gtnjax.inner_loop` and
`gtnjax.evaluation` unchanged, GTN meta-training included.

Two forms compute the same function:
- static (`CellNetworkSpec(encoding=(...))`): the encoding is part of the
  spec, only the live operations exist. One compiled program per
  architecture (tens of seconds on 2 CPU cores).
- masked (`encoding=None`): every edge holds the weights of every operation
  and the cell is an array (`init(key, encoding)`, where the encoding may be
  traced; `bind(spec, encoding)` makes it a plain learner). Each edge is one
  `lax.switch` on its operation index, so ONE compiled program serves every
  architecture: run alone, a candidate computes only its own operations (the
  CPU default, candidates one after another); under `vmap` the switch
  becomes a select over all five operations (the mask), which accelerators
  run side by side (`vmap_population`).
The same key initialises the live operations identically in both forms
(each weight's key is folded from its position), which the tests check.

Dead edges (see `space.live_edges`) are not computed, so the network
computes exactly the cell's `space.canonical_form`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import layers
from gtnjax.nas import space

Params = dict[str, Any]
CONV_OPS = ("conv1x1", "conv3x3")
NUM_STAGES = 3
# "cell:random": a learner whose cell is drawn at each init (`random_cells`).
RANDOM_CELL = "random"
# "cell:pool": a learner whose cell is drawn at each init from a table of
# labelled cells (`cell_pool`), for the ranking-aware meta-objective.
POOL_CELL = "pool"
# Batch norms of the conv layers: mean-only, or mean and variance ("full").
BATCH_NORMS = ("mean", "full")
# Folded into an init key to draw the cell, so that the weights of a given
# key are the same as those of the masked form given that cell.
RANDOM_CELL_SALT = 0xCE11


@dataclasses.dataclass(frozen=True)
class CellNetworkSpec:
  """A cell network; frozen and hashable, so a static jit argument.

  Attributes:
    encoding: the cell (6 operation indices), or None for the masked form.
    input_shape: (H, W, C) of the images.
    num_classes: K.
    channels: C, the width of stage 0 (stages 1 and 2 have 2C and 4C).
    cells_per_stage: cells in each of the 3 stages.
    weight_norm: weight-normalised kernels (False: plain Kaiming kernels).
    conv_impl: `layers.conv2d` implementation ("auto": chosen by backend).
    random_cells: masked form only: `init(key)` without an encoding draws
      the cell from the key, uniformly among the cells whose output depends
      on their input (`space.input_dependent_encodings`), so every fresh
      learner is a different architecture of the space. The learner
      "cell:random", for meta-training a teacher over the whole space as
      the paper's GTN-NAS does.
    cell_pool: with random_cells, draw the cell uniformly from these
      encodings instead of the whole space ("cell:pool").
    cell_labels: one score per pool cell (its ground-truth accuracy), which
      `cell_label(key)` returns for the cell `init(key)` draws: the labels of
      `gtnjax.meta`'s ranking-aware meta-objective.
    batch_norm: "mean" (mean-only batch norm) or "full" (mean and variance,
      with a learned scale `bn_scale` beside the bias).
  """
  encoding: tuple[int, ...] | None
  input_shape: tuple[int, int, int]
  num_classes: int
  channels: int = 8
  cells_per_stage: int = 1
  weight_norm: bool = True
  conv_impl: str = "auto"
  random_cells: bool = False
  cell_pool: tuple[tuple[int, ...], ...] = ()
  cell_labels: tuple[float, ...] = ()
  batch_norm: str = "mean"

  def __post_init__(self):
    layers.check_impl("conv2d", self.conv_impl)
    if self.batch_norm not in BATCH_NORMS:
      raise ValueError(f"batch_norm={self.batch_norm!r}: choose one of {', '.join(BATCH_NORMS)}")
    if self.random_cells and self.encoding is not None:
      raise ValueError("random_cells draws the cell at init: use encoding=None")
    if self.cell_pool:
      if not self.random_cells:
        raise ValueError("cell_pool is where random_cells draws from: set random_cells=True")
      object.__setattr__(self, "cell_pool", tuple(space.validate(e) for e in self.cell_pool))
    if len(self.cell_labels) not in (0, len(self.cell_pool)):
      raise ValueError(f"cell_labels has {len(self.cell_labels)} labels for "
                       f"{len(self.cell_pool)} pool cells: give one per cell")
    if self.encoding is not None:
      object.__setattr__(self, "encoding", space.validate(self.encoding))
    if self.channels < 1 or self.cells_per_stage < 1:
      raise ValueError("channels and cells_per_stage must be >= 1")

  @property
  def name(self) -> str:
    if self.random_cells:
      return f"cell:{POOL_CELL if self.cell_pool else RANDOM_CELL}"
    cell = "masked" if self.encoding is None else space.to_string(self.encoding)
    return f"cell:{cell}"

  @property
  def masked(self) -> bool:
    return self.encoding is None

  @property
  def vmap_population(self) -> bool:
    """Whether a population of this learner trains side by side (`vmap`) or
    one after another (`lax.map`, see `gtnjax.meta`). A masked network runs
    one after another on CPU: alone it computes only its cell's operations,
    under `vmap` every operation of every edge (about 4x the work); on an
    accelerator the parallelism of `vmap` wins."""
    return not self.masked or jax.default_backend() != "cpu"

  def stage_channels(self) -> tuple[int, ...]:
    return tuple(self.channels * 2 ** s for s in range(NUM_STAGES))

  def stage_resolutions(self) -> tuple[tuple[int, int], ...]:
    h, w, _ = self.input_shape
    out = []
    for _ in range(NUM_STAGES):
      h, w = -(-h // 2), -(-w // 2)
      out.append((h, w))
    return tuple(out)

  def _edge_ops(self) -> list[list[str]]:
    """Per edge, the conv operations that have weights (and batch norms)."""
    if self.masked:
      return [list(CONV_OPS) for _ in space.EDGES]
    live = space.live_edges(self.encoding)
    return [[space.OPS[op]] if alive and space.OPS[op] in CONV_OPS else []
            for op, alive in zip(self.encoding, live)]

  @property
  def hidden_layer_widths(self) -> tuple[int, ...]:
    """Channels of every batch-normed layer, in `apply`'s order."""
    widths = [self.channels]
    edge_ops = self._edge_ops()
    for stage, c in enumerate(self.stage_channels()):
      if stage > 0:
        widths.append(c)  # the reduction's conv
      for _ in range(self.cells_per_stage):
        widths.extend(c for ops in edge_ops for _ in ops)
    return tuple(widths)

  def initial_batch_stats(self) -> tuple[jax.Array, ...]:
    """Per batch-normed layer, the statistics before training: a zero [C]
    mean (see `gtnjax.learners`), or with full batch norm a [2, C] zero mean
    and unit variance."""
    return tuple(_empty_stats(w, self.batch_norm, jnp.ones) for w in self.hidden_layer_widths)

  # ---------------------------------------------------------------- init
  def init(self, key: jax.Array, encoding: Any = None) -> Params:
    """Fresh parameters. The masked form needs `encoding` ([6] ints, may be
    traced); the static form takes its own and rejects a different one."""
    if self.masked:
      if encoding is None and self.random_cells:
        encoding = self.draw_cell(key)
      elif encoding is None:
        raise ValueError("a masked cell network needs init(key, encoding)")
    elif encoding is not None and tuple(int(e) for e in np.asarray(encoding)) != self.encoding:
      raise ValueError("init's encoding differs from the spec's; use a masked spec "
                       "(encoding=None) to choose the cell at init")

    # One normal draw for every weight of the masked layout, sliced per
    # kernel: a kernel's values depend only on the key and its position, so
    # both forms agree; and one draw compiles in a fraction of the time of
    # one per kernel (each is a separate threefry computation).
    layout, total = self._weight_layout()
    noise = jax.random.normal(key, (total,))

    def kernel(path):
      offset, shape = layout[path]
      fan_in = math.prod(shape[:-1])
      direction = noise[offset:offset + math.prod(shape)].reshape(shape) * math.sqrt(2 / fan_in)
      return layers.weight_norm_init_from(direction, self.weight_norm)

    def conv(path):
      width = layout[path][1][-1]
      scale = {"bn_scale": jnp.ones((width,))} if self.batch_norm == "full" else {}
      return {**kernel(path), **scale, "bn_bias": jnp.zeros((width,))}

    params: Params = {"stem": conv(("stem",)), "reductions": [], "stages": []}
    edge_ops = self._edge_ops()
    for stage in range(NUM_STAGES):
      if stage > 0:
        params["reductions"].append(conv(("reduction", stage)))
      params["stages"].append([[{op: conv(("edge", stage, cell, e, op)) for op in ops}
                                for e, ops in enumerate(edge_ops)]
                               for cell in range(self.cells_per_stage)])
    params["out"] = {**kernel(("out",)), "bias": jnp.zeros((self.num_classes,))}
    if self.masked:
      params["op_mask"] = op_mask(encoding)
    return params

  def _pool_index(self, key: jax.Array) -> jax.Array:
    return jax.random.randint(jax.random.fold_in(key, RANDOM_CELL_SALT), (), 0,
                              len(self.cell_pool))

  def draw_cell(self, key: jax.Array) -> jax.Array:
    """[6] int32: the cell `init(key)` of a random_cells network draws."""
    if self.cell_pool:
      return jnp.asarray(self.cell_pool, jnp.int32)[self._pool_index(key)]
    return sample_encoding(jax.random.fold_in(key, RANDOM_CELL_SALT))

  def cell_label(self, key: jax.Array) -> jax.Array | None:
    """The label of the pool cell `init(key)` draws (None without labels)."""
    if not self.cell_labels:
      return None
    return jnp.asarray(self.cell_labels, jnp.float32)[self._pool_index(key)]

  def _weight_layout(self) -> tuple[dict[tuple, tuple[int, tuple[int, ...]]], int]:
    """Every kernel of the masked form: path -> (offset in the draw, shape)."""
    shapes = {("stem",): (3, 3, self.input_shape[2] * 4, self.channels)}
    prev_c = self.channels
    for stage, c in enumerate(self.stage_channels()):
      if stage > 0:
        shapes[("reduction", stage)] = (3, 3, prev_c, c)
      for cell in range(self.cells_per_stage):
        for e in range(space.NUM_EDGES):
          shapes[("edge", stage, cell, e, "conv1x1")] = (1, 1, c, c)
          shapes[("edge", stage, cell, e, "conv3x3")] = (3, 3, c, c)
      prev_c = c
    shapes[("out",)] = (prev_c, self.num_classes)
    layout, offset = {}, 0
    for path, shape in shapes.items():
      layout[path] = (offset, shape)
      offset += math.prod(shape)
    return layout, offset

  # --------------------------------------------------------------- apply
  def apply(self, params: Params, x: jax.Array, batch_means=None
            ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """([N, K] logits, per-batch-norm-layer means), like `LearnerSpec.apply`."""
    logits, means, _, _ = self._forward(params, x, batch_means)
    return logits, means

  def activation_codes(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """([N, U] float 0/1 sign codes of every LeakyReLU input, training mode;
    [U] 1 for the units of the cell's own layers, 0 for the units of
    operations a masked network holds but its cell does not use), for
    activation-pattern proxies such as NASWOT."""
    _, _, preacts, used = self._forward(params, x, None, with_preactivations=True)
    codes = jnp.concatenate([(h > 0).reshape(x.shape[0], -1) for h in preacts], axis=1)
    valid = jnp.concatenate([jnp.broadcast_to(u, h[0].shape).reshape(-1)
                             for h, u in zip(preacts, used)])
    return codes.astype(jnp.float32), valid.astype(jnp.float32)

  def _forward(self, params, x, batch_means, with_preactivations=False):
    """(logits, batch means, preactivations, used flags), the last two only
    `with_preactivations`. A masked network runs one `lax.switch` per edge on
    its operation index: unbatched, only the chosen operation is computed, so
    any cell runs in the one compiled program at about its own cost; under
    `vmap` (a population of cells) JAX turns the switch into a select over
    every operation, which is the mask."""
    used_means, preacts, used = [], [], []

    def layer(p, h, padding=1):
      given = None if batch_means is None else batch_means[len(used_means)]
      out, mean, preact = _conv_bn_act(p, h, padding, given, self.conv_impl)
      used_means.append(mean)
      preacts.append(preact)
      used.append(jnp.array(True))
      return out

    def switched_edge(op_index, p, h):
      first = len(used_means)
      given = (None, None) if batch_means is None else batch_means[first:first + 2]
      out, means, pre, flags = _switched_edge(op_index, p, h, given, self.conv_impl,
                                              with_preactivations, self.batch_norm)
      used_means.extend(means)
      preacts.extend(pre)
      used.extend(flags)
      return out

    if self.masked:
      op_index = edge_operations(jax.lax.stop_gradient(params["op_mask"]))
    h = layer(params["stem"], space_to_depth(x))
    for stage in range(NUM_STAGES):
      if stage > 0:
        h = layer(params["reductions"][stage - 1], avg_pool_2x2(h))
      for cell_params in params["stages"][stage]:
        nodes = [h]
        for node in range(1, space.NUM_NODES):
          total = jnp.zeros_like(h)
          for e, (src, dst) in enumerate(space.EDGES):
            if dst != node:
              continue
            p = cell_params[e]
            if self.masked:
              total = total + switched_edge(op_index[e], p, nodes[src])
            elif space.live_edges(self.encoding)[e]:
              name = space.OPS[self.encoding[e]]
              if name == "skip":
                total = total + nodes[src]
              elif name == "avg_pool3x3":
                total = total + avg_pool_3x3(nodes[src])
              else:
                total = total + layer(p[name], nodes[src], 0 if name == "conv1x1" else 1)
          nodes.append(total)
        h = nodes[-1]
    h = layers.global_avg_pool(h)
    p = params["out"]
    logits = layers.dense(h, layers.kernel_of(p), p["bias"])
    return logits, tuple(used_means), tuple(preacts), tuple(used)


def _empty_stats(width, batch_norm, variance=jnp.zeros):
  """A layer's batch statistics: [C] zeros, or [2, C] zero mean and `variance`."""
  if batch_norm == "mean":
    return jnp.zeros((width,))
  return jnp.stack([jnp.zeros((width,)), variance((width,))])


def _conv_bn_act(p, h, padding, given_stats, conv_impl):
  """(LeakyReLU output, the batch statistics used, the LeakyReLU's input).
  The layer's parameters say its batch norm: a `bn_scale` is full batch norm."""
  h = layers.conv2d(h, layers.kernel_of(p), padding, impl=conv_impl)
  if "bn_scale" in p:
    h, stats = layers.batch_norm_with_stats(h, p["bn_scale"], p["bn_bias"], given_stats)
  else:
    h, stats = layers.mean_only_batch_norm(h, p["bn_bias"], given_stats)
  return layers.leaky_relu(h), stats, h


def _switched_edge(op_index, p, h, given_means, conv_impl, with_preactivations,
                   batch_norm="mean"):
  """One edge of a masked network as a `lax.switch` on its operation:
  (output, the batch statistics of its two conv layers (zero where unused),
  and with_preactivations their LeakyReLU inputs and used flags, else ())."""
  zero_mean = _empty_stats(h.shape[-1], batch_norm).astype(h.dtype)

  def fixed(value):  # an operation without a batch-normed layer
    def branch(h):
      extra = ((jnp.zeros_like(h),) * 2 + (jnp.array(False),) * 2
               if with_preactivations else ())
      return (value(h), zero_mean, zero_mean, *extra)
    return branch

  def convolution(k):
    def branch(h):
      out, mean, preact = _conv_bn_act(p[CONV_OPS[k]], h, 0 if k == 0 else 1,
                                       given_means[k], conv_impl)
      means = (mean, zero_mean) if k == 0 else (zero_mean, mean)
      if not with_preactivations:
        return (out, *means)
      zeros = jnp.zeros_like(preact)
      pre = (preact, zeros) if k == 0 else (zeros, preact)
      return (out, *means, *pre, jnp.array(k == 0), jnp.array(k == 1))
    return branch

  branches = {"none": fixed(jnp.zeros_like), "skip": fixed(lambda h: h),
              "avg_pool3x3": fixed(avg_pool_3x3),
              "conv1x1": convolution(0), "conv3x3": convolution(1)}
  result = jax.lax.switch(op_index, [branches[name] for name in space.OPS], h)
  return result[0], result[1:3], result[3:5], result[5:7]


@dataclasses.dataclass(frozen=True)
class BoundCellNetwork:
  """A masked cell network with its cell given as an array (possibly traced):
  a `gtnjax` learner whose `init(key)` needs no encoding. Build it inside a
  jitted function from an encoding argument, so one compiled program serves
  every candidate (`bind`)."""
  spec: CellNetworkSpec
  encoding: jax.Array

  name = property(lambda self: self.spec.name)
  num_classes = property(lambda self: self.spec.num_classes)
  input_shape = property(lambda self: self.spec.input_shape)
  hidden_layer_widths = property(lambda self: self.spec.hidden_layer_widths)
  fingerprint = None

  def init(self, key: jax.Array) -> Params:
    return self.spec.init(key, self.encoding)

  def apply(self, params: Params, x: jax.Array, batch_means=None):
    return self.spec.apply(params, x, batch_means)

  def initial_batch_stats(self) -> tuple[jax.Array, ...]:
    return self.spec.initial_batch_stats()

  def activation_codes(self, params: Params, x: jax.Array):
    return self.spec.activation_codes(params, x)


def bind(spec: CellNetworkSpec, encoding: Any) -> CellNetworkSpec | BoundCellNetwork:
  """`spec` as a learner of the cell `encoding`: a static spec is its own
  (its encoding must match); a masked spec is bound to the array."""
  if not spec.masked:
    if encoding is not None and tuple(int(e) for e in np.asarray(encoding)) != spec.encoding:
      raise ValueError("bind's encoding differs from the static spec's")
    return spec
  return BoundCellNetwork(spec, jnp.asarray(encoding, jnp.int32))


def edge_operations(mask: jax.Array) -> jax.Array:
  """[6] int32 operation index per edge from an `op_mask` ("none" for the
  all-zero rows of dead edges)."""
  live = jnp.sum(mask, axis=-1) > 0
  return jnp.where(live, jnp.argmax(mask, axis=-1), space.OPS.index("none")).astype(jnp.int32)


def sample_encoding(key: jax.Array) -> jax.Array:
  """[6] int32: a cell drawn uniformly among those whose output depends on
  the input. Traceable, so a vmapped init draws one cell per learner."""
  table = jnp.asarray(space.input_dependent_encodings())
  return table[jax.random.randint(key, (), 0, table.shape[0])]


def op_mask(encoding: Any) -> jax.Array:
  """[6, 5] one-hot operations of the live edges (dead edges all zero).

  Works on a traced [6] int array, so `vmap(spec.init)` over encodings
  builds a population of different architectures.
  """
  encoding = jnp.asarray(encoding, jnp.int32)
  not_none = encoding != space.OPS.index("none")
  reaches_input = [jnp.array(True)] + [jnp.array(False)] * (space.NUM_NODES - 1)
  for e, (src, dst) in enumerate(space.EDGES):
    reaches_input[dst] = reaches_input[dst] | (not_none[e] & reaches_input[src])
  reaches_output = [jnp.array(False)] * (space.NUM_NODES - 1) + [jnp.array(True)]
  for e, (src, dst) in reversed(list(enumerate(space.EDGES))):
    reaches_output[src] = reaches_output[src] | (not_none[e] & reaches_output[dst])
  live = jnp.stack([not_none[e] & reaches_input[src] & reaches_output[dst]
                    for e, (src, dst) in enumerate(space.EDGES)])
  return jax.nn.one_hot(encoding, space.NUM_OPS) * live[:, None].astype(jnp.float32)


# ------------------------------------------------------------------ layers
def space_to_depth(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, H/2, W/2, 4C] (odd sides zero-padded first)."""
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
  h, w = x.shape[1] // 2, x.shape[2] // 2
  x = x.reshape(n, h, 2, w, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h, w, 4 * c)


def avg_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 / stride-2 mean (odd sides zero-padded; the pad counts as a pixel)."""
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
  return x.reshape(n, x.shape[1] // 2, 2, x.shape[2] // 2, 2, c).mean(axis=(2, 4))


def avg_pool_3x3(x: jax.Array) -> jax.Array:
  """3x3 / stride-1 mean over the in-image neighbours (padding not counted,
  NAS-Bench-201's count_include_pad=False), as shifted slices: cheap to
  differentiate to any order."""
  _, h, w, _ = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  total = sum(xp[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3))
  rows = np.minimum(np.arange(h) + 1, h - 1) - np.maximum(np.arange(h) - 1, 0) + 1
  cols = np.minimum(np.arange(w) + 1, w - 1) - np.maximum(np.arange(w) - 1, 0) + 1
  counts = (rows[:, None] * cols[None, :]).astype(np.float32)
  return total / counts[None, :, :, None]


# ------------------------------------------------------------------- costs
def count_params(spec: CellNetworkSpec) -> int:
  """Trainable parameters of a static cell network (batch-norm biases and
  weight-norm scales included), without allocating them."""
  if spec.masked:
    raise ValueError("count_params needs a static spec (encoding given)")
  shapes = jax.eval_shape(spec.init, jax.random.key(0))
  return int(sum(math.prod(s.shape) for s in jax.tree.leaves(shapes)))


def count_flops(spec: CellNetworkSpec) -> int:
  """Multiply-adds of one image's forward pass through the convolutions and
  the head (pools, norms and sums are a few percent and not counted)."""
  if spec.masked:
    raise ValueError("count_flops needs a static spec (encoding given)")
  (h0, w0) = spec.stage_resolutions()[0]
  total = h0 * w0 * 9 * spec.input_shape[2] * 4 * spec.channels  # stem
  live = space.live_edges(spec.encoding)
  prev_c = spec.channels
  for stage, ((h, w), c) in enumerate(zip(spec.stage_resolutions(), spec.stage_channels())):
    if stage > 0:
      total += h * w * 9 * prev_c * c
    per_cell = sum(h * w * c * c * (1 if space.OPS[op] == "conv1x1" else 9)
                   for op, alive in zip(spec.encoding, live)
                   if alive and space.OPS[op] in CONV_OPS)
    total += spec.cells_per_stage * per_cell
    prev_c = c
  return int(total + prev_c * spec.num_classes)


def make(encoding: Sequence[int] | None, input_shape, num_classes: int, *,
         channels: int = 8, cells_per_stage: int = 1, weight_norm: bool = True,
         conv_impl: str = "auto", random_cells: bool = False,
         cell_pool: Sequence[Sequence[int]] = (),
         cell_labels: Sequence[float] = (), batch_norm: str = "mean") -> CellNetworkSpec:
  return CellNetworkSpec(encoding=None if encoding is None else tuple(encoding),
                         input_shape=tuple(input_shape), num_classes=num_classes,
                         channels=channels, cells_per_stage=cells_per_stage,
                         weight_norm=weight_norm, conv_impl=conv_impl,
                         random_cells=random_cells or bool(cell_pool),
                         cell_pool=tuple(tuple(int(o) for o in e) for e in cell_pool),
                         cell_labels=tuple(float(v) for v in cell_labels),
                         batch_norm=batch_norm)
