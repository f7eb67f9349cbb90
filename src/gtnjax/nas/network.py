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
LeakyReLU(0.1), like the other gtnjax learners, so a cell network is a
learner: `spec.init(key)`, `spec.apply(params, x, batch_means)` and
`spec.initial_batch_stats()` work with `gtnjax.inner_loop` and
`gtnjax.evaluation` unchanged, GTN meta-training included.

Two forms compute the same function:
- static (`CellNetworkSpec(encoding=(...))`): the encoding is part of the
  spec, only the live operations exist. One compiled program per
  architecture; the cheapest per step, so the CPU default.
- masked (`encoding=None`): every edge holds every operation and a one-hot
  mask in the parameters picks one (`init(key, encoding)`, where the
  encoding may be a traced array). One program for all architectures, so a
  population trains as one `vmap`: the accelerator default.
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
  """
  encoding: tuple[int, ...] | None
  input_shape: tuple[int, int, int]
  num_classes: int
  channels: int = 8
  cells_per_stage: int = 1
  weight_norm: bool = True
  conv_impl: str = "auto"
  random_cells: bool = False

  def __post_init__(self):
    layers.check_impl("conv2d", self.conv_impl)
    if self.random_cells and self.encoding is not None:
      raise ValueError("random_cells draws the cell at init: use encoding=None")
    if self.encoding is not None:
      object.__setattr__(self, "encoding", space.validate(self.encoding))
    if self.channels < 1 or self.cells_per_stage < 1:
      raise ValueError("channels and cells_per_stage must be >= 1")

  @property
  def name(self) -> str:
    if self.random_cells:
      return f"cell:{RANDOM_CELL}"
    cell = "masked" if self.encoding is None else space.to_string(self.encoding)
    return f"cell:{cell}"

  @property
  def masked(self) -> bool:
    return self.encoding is None

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
    """Zero batch means, one [C] per batch-normed layer (see `gtnjax.learners`)."""
    return tuple(jnp.zeros((w,)) for w in self.hidden_layer_widths)

  # ---------------------------------------------------------------- init
  def init(self, key: jax.Array, encoding: Any = None) -> Params:
    """Fresh parameters. The masked form needs `encoding` ([6] ints, may be
    traced); the static form takes its own and rejects a different one."""
    if self.masked:
      if encoding is None and self.random_cells:
        encoding = sample_encoding(jax.random.fold_in(key, RANDOM_CELL_SALT))
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
      return {**kernel(path), "bn_bias": jnp.zeros((layout[path][1][-1],))}

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
    logits, means, _ = self._forward(params, x, batch_means)
    return logits, means

  def preactivations(self, params: Params, x: jax.Array) -> tuple[jax.Array, ...]:
    """The input of every LeakyReLU (training mode), for activation-pattern
    proxies such as NASWOT. Static networks only: a masked one computes
    operations its cell does not use."""
    if self.masked:
      raise ValueError("preactivations needs a static spec (encoding given)")
    return self._forward(params, x, None)[2]

  def _forward(self, params, x, batch_means):
    used_means, preacts = [], []

    def conv_bn_act(p, h, padding=1):
      given = None if batch_means is None else batch_means[len(used_means)]
      h = layers.conv2d(h, layers.kernel_of(p), padding, impl=self.conv_impl)
      h, mean = layers.mean_only_batch_norm(h, p["bn_bias"], given)
      used_means.append(mean)
      preacts.append(h)
      return layers.leaky_relu(h)

    if self.masked:
      mask = jax.lax.stop_gradient(params["op_mask"])  # architecture, not weights
    h = conv_bn_act(params["stem"], space_to_depth(x))
    for stage in range(NUM_STAGES):
      if stage > 0:
        h = conv_bn_act(params["reductions"][stage - 1], avg_pool_2x2(h))
      for cell_params in params["stages"][stage]:
        nodes = [h]
        for node in range(1, space.NUM_NODES):
          total = jnp.zeros_like(h)
          for e, (src, dst) in enumerate(space.EDGES):
            if dst != node:
              continue
            p = cell_params[e]
            if self.masked:
              outputs = {"skip": nodes[src], "avg_pool3x3": avg_pool_3x3(nodes[src]),
                         "conv1x1": conv_bn_act(p["conv1x1"], nodes[src], 0),
                         "conv3x3": conv_bn_act(p["conv3x3"], nodes[src], 1)}
              for name, value in outputs.items():
                total = total + mask[e, space.OPS.index(name)] * value
            elif space.live_edges(self.encoding)[e]:
              name = space.OPS[self.encoding[e]]
              if name == "skip":
                total = total + nodes[src]
              elif name == "avg_pool3x3":
                total = total + avg_pool_3x3(nodes[src])
              else:
                total = total + conv_bn_act(p[name], nodes[src], 0 if name == "conv1x1" else 1)
          nodes.append(total)
        h = nodes[-1]
    h = layers.global_avg_pool(h)
    p = params["out"]
    logits = layers.dense(h, layers.kernel_of(p), p["bias"])
    return logits, tuple(used_means), tuple(preacts)


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
         conv_impl: str = "auto", random_cells: bool = False) -> CellNetworkSpec:
  return CellNetworkSpec(encoding=None if encoding is None else tuple(encoding),
                         input_shape=tuple(input_shape), num_classes=num_classes,
                         channels=channels, cells_per_stage=cells_per_stage,
                         weight_norm=weight_norm, conv_impl=conv_impl,
                         random_cells=random_cells)
