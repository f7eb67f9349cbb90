"""Proxies: cheap predictions of a candidate's ground-truth accuracy.

Every proxy maps a candidate to a score where HIGHER predicts BETTER; the
signs were fixed here before any result was seen:
  gtn               validation accuracy after `gtn_steps` steps on the
                    meta-trained teacher's curriculum with its learned
                    learning rates and momenta (the paper's GTN-NAS proxy);
  gtn_untrained     the same with the teacher at its initialisation (control);
  real_same_steps   validation accuracy after `gtn_steps` real-data steps;
  real_9x_steps     ... after `long_proxy_factor` x `gtn_steps` real steps
                    (both with the teacher's batch size and a cosine decay
                    from a peak lr chosen on validation for the teacher's
                    fixed learner, so they are tuned as the GTN's schedule is);
  synflow           sum |theta * dR/dtheta|, R = sum of the logits of an
                    all-ones input through |theta| (Tanaka et al. 2020), batch
                    norm in test mode with zero means (no data);
  naswot            log |K_H| of the LeakyReLU activation codes of a batch
                    (Mellor et al. 2021);
  jacob_cov         -sum(log(v + k) + 1/(v + k)), v the eigenvalues of the
                    correlation of per-image input gradients (Mellor et al.);
  snip              sum |theta * dL/dtheta| on a batch (Lee et al. 2019);
  grad_norm         sum over parameter arrays of ||dL/dtheta||_2;
  params, flops     model size (`network.count_params`, `count_flops`).
Zero-cost proxies use one real batch of `proxy_batch_size` training images
and the candidate's initial weights (the same key for every proxy).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import evaluation, inner_loop, layers
from gtnjax.nas import network, training
from gtnjax.nas.network import CellNetworkSpec

TRAINING_PROXIES = ("gtn", "gtn_untrained", "real_same_steps", "real_9x_steps")
ZERO_COST_PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm")
COUNT_PROXIES = ("params", "flops")
# The cost entry of scoring a trained candidate on the validation split.
VALIDATION_SCORING = "validation_scoring"
# A score that could not be computed (e.g. a singular matrix) ranks last.
WORST_SCORE = -1e30


def _loss(spec, params, x, y):
  logits, _ = spec.apply(params, x)
  return layers.softmax_cross_entropy(logits, jax.nn.one_hot(y, spec.num_classes))


def grad_norm(spec: CellNetworkSpec, params, x, y) -> jax.Array:
  grads = jax.grad(functools.partial(_loss, spec))(params, x, y)
  return sum(jnp.sqrt(jnp.sum(jnp.square(g))) for g in jax.tree.leaves(grads))


def snip(spec: CellNetworkSpec, params, x, y) -> jax.Array:
  grads = jax.grad(functools.partial(_loss, spec))(params, x, y)
  return sum(jnp.sum(jnp.abs(p * g))
             for p, g in zip(jax.tree.leaves(params), jax.tree.leaves(grads)))


def synflow(spec: CellNetworkSpec, params, x) -> jax.Array:
  abs_params = jax.tree.map(jnp.abs, params)
  ones = jnp.ones((1, *x.shape[1:]), x.dtype)
  zero_means = tuple(jnp.zeros((w,)) for w in spec.hidden_layer_widths)

  def total_output(p):
    logits, _ = spec.apply(p, ones, zero_means)
    return jnp.sum(logits)

  grads = jax.grad(total_output)(abs_params)
  return sum(jnp.sum(p * g) for p, g in zip(jax.tree.leaves(abs_params),
                                            jax.tree.leaves(grads)))


def naswot(spec: CellNetworkSpec, params, x) -> jax.Array:
  codes, valid = spec.activation_codes(params, x)
  # Units of operations the cell does not use (masked networks) count in
  # neither term, so both forms score the cell's own units alone.
  on, off = codes * valid, (1.0 - codes) * valid
  kernel = on @ on.T + off @ off.T
  sign, logdet = jnp.linalg.slogdet(kernel)
  return jnp.where(sign > 0, logdet, WORST_SCORE)


def jacob_cov(spec: CellNetworkSpec, params, x, eps: float = 1e-5) -> jax.Array:
  jac = jax.grad(lambda xs: jnp.sum(spec.apply(params, xs)[0]))(x).reshape(x.shape[0], -1)
  corr = jnp.corrcoef(jac)
  v = jnp.linalg.eigvalsh(corr)
  score = -jnp.sum(jnp.log(v + eps) + 1.0 / (v + eps))
  return jnp.where(jnp.isfinite(score), score, WORST_SCORE)


@functools.partial(jax.jit, static_argnames=("spec",))
def zero_cost_scores(spec: CellNetworkSpec, encoding, key: jax.Array, x: jax.Array,
                     y: jax.Array) -> dict[str, jax.Array]:
  """Every zero-cost proxy of one candidate. A masked `spec` takes the cell
  as the `encoding` array, so one program serves every candidate; a static
  one is its own cell (`encoding` None) and compiles per architecture."""
  spec = network.bind(spec, encoding)
  params = spec.init(key)
  return {"synflow": synflow(spec, params, x), "naswot": naswot(spec, params, x),
          "jacob_cov": jacob_cov(spec, params, x), "snip": snip(spec, params, x, y),
          "grad_norm": grad_norm(spec, params, x, y)}


# ------------------------------------------------------- training proxies
@dataclasses.dataclass(frozen=True)
class GtnScoring:
  """How the GTN proxy scores a trained candidate (`gtnjax.nas.config` says
  why each choice might help). The defaults are the first study's."""
  score: str = "accuracy"               # or "neg_loss"
  batch_stats: str = "last_batch"       # or "real_batch"
  seeds: int = 1
  lr_scales: tuple[float, ...] = ()     # () = the teacher's learned lr alone
  # Validation images that choose the lr scale (the first of the split).
  selection_images: int = 1000
  # Real training images the batch statistics are re-estimated on.
  real_batch_size: int = 256


def gtn_score(spec, teacher_spec, teacher_params, key, train_x, train_y, val_x, val_y,
              scoring: GtnScoring = GtnScoring()):
  """The validation score of a fresh candidate trained on the teacher's
  curriculum (its learned lr and momentum), higher is better, as `scoring`
  says. Learner seed 0 uses the key's own learner half, so the defaults give
  the first study's scores."""
  teacher_key, learner_key = jax.random.split(key)
  batches = teacher_spec.batches(teacher_params, teacher_key, train_x, train_y)
  stats_idx = jax.random.randint(jax.random.fold_in(key, 7), (scoring.real_batch_size,), 0,
                                 train_x.shape[0])

  def trained(init_key, lr_scale):
    scaled = batches if lr_scale is None else batches._replace(lr=batches.lr * lr_scale)
    state = evaluation.train_learner(spec, init_key, scaled)
    if scoring.batch_stats == "real_batch":
      _, means = spec.apply(state.params, train_x[stats_idx])
      state = state._replace(batch_means=means)
    return state

  def score_on(state, images, labels):
    if scoring.score == "neg_loss":  # a diverged learner's NaN loss ranks last
      loss = training.mean_loss(spec, state, images, labels)
      return jnp.where(jnp.isfinite(loss), -loss, WORST_SCORE)
    return training.accuracy(spec, state, images, labels)

  def one_seed(seed):
    init_key = learner_key if seed == 0 else jax.random.fold_in(learner_key, seed)
    if not scoring.lr_scales:
      return score_on(trained(init_key, None), val_x, val_y)
    states = jax.lax.map(lambda scale: trained(init_key, scale),
                         jnp.asarray(scoring.lr_scales, jnp.float32))
    n = scoring.selection_images
    chosen = jax.lax.map(lambda st: score_on(st, val_x[:n], val_y[:n]), states)
    best = jax.tree.map(lambda a: a[jnp.argmax(chosen)], states)
    return score_on(best, val_x, val_y)

  return sum(one_seed(seed) for seed in range(scoring.seeds)) / scoring.seeds


def real_score(spec, key, train_x, train_y, val_x, val_y, *, num_steps, batch_size, peak_lr):
  """Validation accuracy after `num_steps` real-data steps (cosine decay)."""
  state = training.train(spec, key, train_x, train_y, num_steps=num_steps,
                         batch_size=batch_size, peak_lr=peak_lr)
  return training.accuracy(spec, state, val_x, val_y)


@functools.partial(jax.jit, static_argnames=("spec", "teacher_spec", "proxies", "gtn_steps",
                                             "long_steps", "batch_size", "gtn_scoring"))
def training_scores(spec, encoding, teacher_spec, teacher_params, untrained_params, key,
                    train_x, train_y, val_x, val_y, lr_same, lr_long, *,
                    proxies: tuple[str, ...], gtn_steps: int, long_steps: int,
                    batch_size: int, gtn_scoring: GtnScoring = GtnScoring()
                    ) -> dict[str, jax.Array]:
  """The training proxies named in `proxies`, all in one program; every
  proxy trains from the same initialisation key. `spec`, `encoding`: as in
  `zero_cost_scores` (masked: one compilation for every candidate)."""
  spec = network.bind(spec, encoding)
  out = {}
  data = (train_x, train_y, val_x, val_y)
  if "gtn" in proxies:
    out["gtn"] = gtn_score(spec, teacher_spec, teacher_params, key, *data, gtn_scoring)
  if "gtn_untrained" in proxies:
    out["gtn_untrained"] = gtn_score(spec, teacher_spec, untrained_params, key, *data,
                                     gtn_scoring)
  if "real_same_steps" in proxies:
    out["real_same_steps"] = real_score(spec, key, *data, num_steps=gtn_steps,
                                        batch_size=batch_size, peak_lr=lr_same)
  if "real_9x_steps" in proxies:
    out["real_9x_steps"] = real_score(spec, key, *data, num_steps=long_steps,
                                      batch_size=batch_size, peak_lr=lr_long)
  return out


def time_proxies(spec, encoding, teacher_spec, teacher_params, untrained_params, key, data,
                 x, y, *, lr_same, lr_long, gtn_steps, long_steps, batch_size,
                 gtn_scoring: GtnScoring = GtnScoring(), repeats: int = 3
                 ) -> dict[str, dict[str, float]]:
  """Per proxy: seconds of one compiled evaluation (median of `repeats`, after
  compiling it on its own) and its compile time. The cost of a proxy as a
  user pays it once the program exists (e.g. a vmapped population). Also
  `VALIDATION_SCORING`: the scoring every training proxy ends with, alone."""
  out = {}
  for name in TRAINING_PROXIES:
    fn = jax.jit(lambda encoding, *args, name=name: training_scores(
        spec, encoding, teacher_spec, *args, proxies=(name,), gtn_steps=gtn_steps,
        long_steps=long_steps, batch_size=batch_size, gtn_scoring=gtn_scoring))
    args = (encoding, teacher_params, untrained_params, key, *data, lr_same, lr_long)
    out[name] = _time(fn, args, repeats)
  # Scoring the validation split is the same work in every training proxy;
  # timed alone so that each proxy's training part can be told from it.
  fn = jax.jit(functools.partial(_validation_score, spec))
  out[VALIDATION_SCORING] = _time(fn, (encoding, key, *data[2:]), repeats)
  for name in ZERO_COST_PROXIES:
    fn = jax.jit(functools.partial(_zero_cost_one, spec, name=name))
    out[name] = _time(fn, (encoding, key, x, y), repeats)
  return out


def _validation_score(spec, encoding, key, val_x, val_y):
  spec = network.bind(spec, encoding)
  return training.accuracy(spec, inner_loop.init_state(spec, key), val_x, val_y)


def _zero_cost_one(spec, encoding, key, x, y, *, name):
  spec = network.bind(spec, encoding)
  params = spec.init(key)
  if name in ("snip", "grad_norm"):
    return {"snip": snip, "grad_norm": grad_norm}[name](spec, params, x, y)
  return {"synflow": synflow, "naswot": naswot, "jacob_cov": jacob_cov}[name](spec, params, x)


def _time(fn, args, repeats):
  t0 = time.perf_counter()
  run = fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(run(*args))
    times.append(time.perf_counter() - t0)
  return {"seconds": float(np.median(times)), "compile_seconds": float(compile_s)}
