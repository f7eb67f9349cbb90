"""The meta-gradient against central finite differences, and against itself
computed other ways.

Run in float64 so the finite differences are accurate to ~1e-8; every
differentiated leaf of the teacher (generator weights, curriculum, learned
learning rates and momenta, soft labels, distilled pixels) is checked along a
random direction of its own, and must move the meta-loss by at least a floor
(`min_abs`), so that a leaf the meta-loss ignores (a zero derivative both
ways) fails.

Compiling is nearly all of each check's cost (a run takes well under a
second): every check compiles with QUICK_COMPILE, and setups checked together
share one compiled program (`check_directional_derivatives` with a list).
"""

import dataclasses
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _derivative_checks import (QUICK_COMPILE, check_directional_derivatives,
                                meta_loss_problem, meta_step_key)
from gtnjax import inner_loop, layers, learners, meta, teacher

# Every test here runs in float64 (the `float64` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("float64")

SHAPE = (8, 8, 1)
CLASSES = 3
# The floor on each directional derivative (see `min_abs`). Every leaf moves
# the meta-loss by 1e-4 or more in these setups, except the weight-norm scales
# of the generator layers that a batch norm follows: the batch norm undoes
# their scaling but for its epsilon, so they move it by only ~3e-8 to 1e-5 (the
# architecture's, not a bug), and get a lower floor.
MIN_ABS = 1e-6
MIN_ABS_BEFORE_BATCH_NORM = 1e-9
BEFORE_BATCH_NORM = tuple(f"['generator']['{layer}']['scale']"
                          for layer in ("fc1", "fc2", "conv1"))


def min_abs(path):
  return MIN_ABS_BEFORE_BATCH_NORM if path in BEFORE_BATCH_NORM else MIN_ABS


# The finite differences' rounding error is ~1e-14 / eps (meta-losses ~1 to 10,
# computed to ~1e-15, over a 2 eps step): the largest seen here is 3e-10 at
# eps 1e-5 and 5e-9 at 1e-6. An absolute tolerance of 3e-14 / eps checks even
# the smallest derivatives above (an autodiff 0 for a 3e-8 one fails).
ROUNDING = 3e-14
# A smaller finite-difference step where a LeakyReLU or max-pool boundary lies
# within 1e-5 of the parameters along some leaf's direction (the longer the
# unroll, the more boundaries): in each case one of the one-sided differences
# at 1e-5 agrees with autodiff, and both at 1e-6.
EPS_ACROSS_KINKS = 1e-6


def tiny_learner(conv_widths=(3,), hidden_widths=(5,), name="tiny", weight_norm=True,
                 **options):
  return learners.LearnerSpec(name=name, input_shape=SHAPE, num_classes=CLASSES,
                              conv_widths=conv_widths, hidden_widths=hidden_widths,
                              weight_norm=weight_norm, **options)


def tiny_setup(kind="generator", curriculum="full", soft_labels=False, remat="step",
               probe_every=1, inner_steps=2, learner_weight_norm=True, learner_specs=None,
               generator_chunk=1, **teacher_options):
  tspec = teacher.TeacherSpec(kind=kind, curriculum=curriculum, image_shape=SHAPE,
                              num_classes=CLASSES, inner_steps=inner_steps, batch_size=6,
                              noise_size=4, soft_labels=soft_labels, init_lr=0.1,
                              generator_chunk=generator_chunk, **teacher_options)
  if learner_specs is None:
    learner_specs = (tiny_learner(weight_norm=learner_weight_norm),)
  return meta.MetaSetup(tspec, tuple(learner_specs), population=2, meta_batch_size=8,
                        probe_every=probe_every, remat=remat)


def check(setup, eps=1e-5, **options):
  """`check_directional_derivatives` with this file's floors, tolerance and
  compiler options."""
  return check_directional_derivatives(setup, eps=eps, min_abs=min_abs, atol=ROUNDING / eps,
                                       compiler_options=QUICK_COMPILE, **options)


def test_generator_full_curriculum_every_leaf():
  checked, paths = check(tiny_setup())
  assert checked == len(paths)
  for expected in ("['log_lr']", "['log_momentum']", "['curriculum']",
                   "['generator']['fc1']['direction']", "['generator']['conv2']['bias']"):
    assert expected in paths


def test_paper_switches_every_leaf():
  """Sigmoid-bounded momentum, reflection padding, no data-dependent init."""
  setup = tiny_setup(momentum_parameterisation="sigmoid", generator_padding="reflect",
                     output_init="none")
  # At this point a LeakyReLU or max-pool boundary lies within 1e-5 of the
  # parameters along bn1's direction (eps 1e-4 and 1e-5 disagree, 1e-6 and 1e-7
  # agree with autodiff, under both conv implementations): a smaller step.
  checked, paths = check(setup, eps=EPS_ACROSS_KINKS)
  assert checked == len(paths) and "['momentum_logit']" in paths


def test_without_weight_norm_every_leaf():
  """The weight-norm ablation: plain kernels in the generator and the learner."""
  setup = tiny_setup(weight_norm=False, learner_weight_norm=False)
  checked, paths = check(setup)
  assert checked == len(paths) and "['generator']['fc1']['kernel']" in paths
  assert not any("direction" in p for p in paths)


@pytest.mark.parametrize("kind,soft", [("distillation", True), ("real_data", False)])
def test_other_teachers(kind, soft):
  checked, paths = check(tiny_setup(kind, "full", soft))
  assert checked == len(paths)


@pytest.mark.slow
def test_long_unroll_block_remat_probe_every_step():
  """The paper's setting: T = 8 steps with a probe after every one, remat
  "block"; and the generator run generator_chunk = 3 steps at a time (two
  chunks and a remainder of 2)."""
  setup = tiny_setup(remat="block", inner_steps=8, probe_every=1, generator_chunk=3)
  assert setup.num_probes == 8
  checked, paths = check(setup, eps=EPS_ACROSS_KINKS)
  assert checked == len(paths) and "['curriculum']" in paths


@pytest.mark.slow
def test_every_curriculum_under_every_kernel_implementation():
  """Each curriculum of teacher.CURRICULA at T = 2, the teacher and the (conv
  + pool) learner using, in turn, each conv2d and max_pool implementation,
  checked in one compiled program. The "full" curriculum under the backend's
  default ("auto") implementations is test_generator_full_curriculum_every_leaf;
  the cases here are the other curricula and implementations."""
  auto_conv, auto_pool = layers.resolve_impl("conv2d"), layers.resolve_impl("max_pool")
  columns = ([c for c in teacher.CURRICULA if c != "full"],
             [c for c in layers.CONV_IMPLS if c != auto_conv],
             [p for p in layers.POOL_IMPLS if p != auto_pool])
  cases = list(itertools.islice(zip(*map(itertools.cycle, columns)), max(map(len, columns))))
  covered = {c for case in cases for c in case} | {"full", auto_conv, auto_pool}
  assert covered >= {*teacher.CURRICULA, *layers.CONV_IMPLS, *layers.POOL_IMPLS}
  setups = [tiny_setup("generator", curriculum, soft_labels=curriculum != "none",
                       conv_impl=conv, pool_impl=pool,
                       learner_specs=(tiny_learner(conv_impl=conv, pool_impl=pool),))
            for curriculum, conv, pool in cases]
  names = [f"{c} curriculum, {conv}/{pool}" for c, conv, pool in cases]
  # KNOWN BUG (src/gtnjax/teacher.py): the gaussian curriculum's learned
  # per-step mean shifts every noise row of a step by the same vector, which
  # the generator's first layer (linear, no bias) maps to a per-unit offset
  # that its batch norm (statistics over the step's B rows) subtracts again:
  # the mean never reaches the images, and its meta-gradient is exactly 0.
  # Listed as ignored, so this check fails once the mean does matter.
  ignored = {f"{name}: ['curriculum']['mean']" for (c, _, _), name in zip(cases, names)
             if c == "gaussian"}
  results = check(setups, names=names, ignored=ignored)
  for (curriculum, _, _), (checked, paths) in zip(cases, results):
    assert checked == len(paths)
    assert any(p.startswith("['curriculum']") for p in paths) == (curriculum != "none")
    assert ("['label_logits']" in paths) == (curriculum != "none")


def test_population_of_architectures_with_random_widths():
  """Two architectures in one meta-step (a CNN and an MLP, each a vmapped
  population of 2), the MLP with random hidden widths (masked units). The
  teacher is the distillation one (learned pixels, soft labels, lr, momentum):
  it feeds the learners what a generator would, and compiles in a fraction of
  the time."""
  mlp = tiny_learner(conv_widths=(), hidden_widths=(6, 4), name="tiny_mlp",
                     random_widths=True)
  setup = tiny_setup("distillation", soft_labels=True, learner_specs=(tiny_learner(), mlp))
  # The masks this meta-step draws cut at least one unit of some learner.
  learner_key = jax.random.split(meta_step_key(), 3)[1]
  keys = meta.population_keys(learner_key, setup)[1]
  masks = [mlp.init(k)["width_masks"] for k in keys]
  assert any(float(m.min()) == 0.0 for member in masks for m in member)
  checked, paths = check(setup)
  assert checked == len(paths) == 4


@pytest.mark.slow
def test_remat_policies_give_the_same_gradient():
  """Every inner_loop.REMAT_POLICIES policy gives the same meta-gradient, to
  float64 rounding (the policies change what is stored, not the arithmetic).
  T = 8 with a probe every 2 steps: blocks of 2 steps, and remat="nested" runs
  4 blocks as 2 checkpointed chunks. The teacher is the distillation one
  (learned pixels, soft labels, lr, momentum): remat concerns only the inner
  loop, which sees the same `InnerBatches` from any teacher, and it compiles in
  a fraction of the generator's time. test_long_unroll_block_remat_probe_every_step
  and test_generator_full_curriculum_every_leaf check "block" and "step"
  against finite differences."""
  setups = [tiny_setup("distillation", soft_labels=True, remat=remat, inner_steps=8,
                       probe_every=2) for remat in inner_loop.REMAT_POLICIES]
  num_blocks = setups[0].num_probes
  assert num_blocks == 4 and num_blocks // inner_loop.nested_chunk(num_blocks) == 2
  problems = [meta_loss_problem(setup) for setup in setups]
  params = problems[0][0]
  # The policies do reach the program (or the comparison below would be
  # vacuous): each traces differently, and only "none" without remat.
  programs = [str(jax.make_jaxpr(fn)(params)) for _, fn in problems]
  assert len(set(programs)) == len(programs)
  assert [("remat" in p or "checkpoint" in p) for p in programs] == [
      remat != "none" for remat in inner_loop.REMAT_POLICIES]
  grads = jax.jit(lambda p: [jax.grad(fn)(p) for _, fn in problems],
                  compiler_options=QUICK_COMPILE)(params)
  for remat, grad in zip(inner_loop.REMAT_POLICIES[1:], grads[1:]):
    chex.assert_trees_all_close(grad, grads[0], rtol=1e-10, atol=1e-14,
                                custom_message=f"remat={remat} vs none")


def test_balanced_population_gradient_rescales_each_architecture_to_the_mean_norm():
  """population_gradient="balanced": the teacher's update is the mean of the
  architectures' meta-gradients (each the gradient of `meta_loss` restricted
  to it, which is what the finite-difference checks above cover) rescaled to
  the mean of their norms. Checked through `meta_step` with plain SGD at lr 1,
  whose update is minus the gradient it was given."""
  import optax
  mlp = tiny_learner(conv_widths=(), hidden_widths=(6,), name="tiny_mlp")
  setups = {mode: dataclasses.replace(
      tiny_setup("distillation", soft_labels=True, learner_specs=(tiny_learner(), mlp)),
      population_gradient=mode) for mode in ("mean", "balanced")}
  params, _ = meta_loss_problem(setups["mean"])
  images = jax.random.normal(jax.random.key(1), (40, *SHAPE), jnp.float64)
  labels = jnp.arange(40) % CLASSES
  key = jax.random.key(2)
  step_key = jax.random.fold_in(key, 0)

  def per_architecture(p):
    return [jax.grad(lambda q, a=a: meta.meta_loss(q, setups["mean"], step_key, images, labels,
                                                   architectures=(a,))[0])(p) for a in (0, 1)]

  def update(mode, p):
    optimizer = optax.sgd(1.0)
    state = meta.MetaState(jnp.zeros((), jnp.int32), p, optimizer.init(p), jnp.zeros((), jnp.int32))
    new, metrics = meta.meta_step(state, key, images, labels, setup=setups[mode],
                                  optimizer=optimizer)
    return jax.tree.map(jnp.subtract, p, new.teacher_params), metrics

  grads, (balanced, balanced_metrics), (mean, mean_metrics) = jax.jit(
      lambda p: (per_architecture(p), update("balanced", p), update("mean", p)),
      compiler_options=QUICK_COMPILE)(params)
  norms = [optax.tree.norm(g) for g in grads]
  assert max(norms) > 1.5 * min(norms)  # unequal, or balancing would change nothing
  want = jax.tree.map(lambda g0, g1: (norms[0] + norms[1]) / 4 * (g0 / norms[0] + g1 / norms[1]),
                      *grads)
  chex.assert_trees_all_close(balanced, want, rtol=1e-10, atol=1e-14)
  # The mean's gradient is the plain average, and the reported meta-loss is the same.
  chex.assert_trees_all_close(mean, jax.tree.map(lambda g0, g1: (g0 + g1) / 2, *grads),
                              rtol=1e-10, atol=1e-14)
  np.testing.assert_allclose(balanced_metrics["meta_loss"], mean_metrics["meta_loss"], rtol=1e-12)
  np.testing.assert_allclose(balanced_metrics["architecture_grad_norm_ratio"],
                             min(norms) / max(norms), rtol=1e-10)
  with pytest.raises(ValueError, match="population_gradient must be one of"):
    dataclasses.replace(setups["mean"], population_gradient="sum")


def test_a_schedule_per_architecture_trains_each_on_its_own_row():
  """`TeacherSpec.schedules` = A: each architecture's learners train on the same
  data with their own schedule row, so the meta-loss is the mean over the
  architectures of the one-schedule meta-loss with that row, and so is its
  gradient (row a's gradient is 1/A of architecture a's schedule gradient:
  the one-schedule gradients are the ones the finite-difference checks
  above cover). `schedule` and `batches` give the rows' mean."""
  mlp = tiny_learner(conv_widths=(), hidden_widths=(6,), name="tiny_mlp")
  shared = tiny_setup("distillation", learner_specs=(tiny_learner(), mlp))
  own = dataclasses.replace(shared, teacher=dataclasses.replace(shared.teacher, schedules=2))
  params, _ = meta_loss_problem(own)
  assert params["log_lr"].shape == (2, shared.teacher.inner_steps)
  # Rows far apart, so that a mix-up of rows changes every number below.
  params = {**params, "log_lr": params["log_lr"] + jnp.array([[0.0], [-1.5]]),
            "log_momentum": params["log_momentum"] + jnp.array([[-0.5], [0.2]])}
  images = jax.random.normal(jax.random.key(1), (40, *SHAPE), jnp.float64)
  labels = jnp.arange(40) % CLASSES
  key = meta_step_key()

  def per_row(p):
    return [jax.value_and_grad(lambda q, a=a: meta.meta_loss(
        q, shared, key, images, labels, architectures=(a,))[0])(
            own.teacher.for_schedule(p, a)[1]) for a in (0, 1)]

  (loss, grads), rows = jax.jit(
      lambda p: (jax.value_and_grad(lambda q: meta.meta_loss(q, own, key, images, labels)[0])(p),
                 per_row(p)), compiler_options=QUICK_COMPILE)(params)
  np.testing.assert_allclose(loss, (rows[0][0] + rows[1][0]) / 2, rtol=1e-12)
  assert abs(rows[0][0] - rows[1][0]) > 1e-3  # the rows do train differently
  for name in ("log_lr", "log_momentum"):
    for a in (0, 1):
      np.testing.assert_allclose(grads[name][a], rows[a][1][name] / 2, rtol=1e-9, atol=1e-14)
  np.testing.assert_allclose(grads["pixels"], (rows[0][1]["pixels"] + rows[1][1]["pixels"]) / 2,
                             rtol=1e-9, atol=1e-14)
  lr, _ = own.teacher.schedule(params)
  np.testing.assert_allclose(lr, jnp.exp(jnp.mean(params["log_lr"], axis=0)), rtol=1e-12)
  with pytest.raises(ValueError, match="3 learned schedules for 2 architectures"):
    dataclasses.replace(own, teacher=dataclasses.replace(own.teacher, schedules=3))
