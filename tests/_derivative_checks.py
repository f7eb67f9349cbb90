"""Shared by test_layers.py and test_ops.py: compare a function with its
reference in value, first and second derivatives, in float64 (so agreement is
to ~1e-12, not to float32 rounding); and by test_meta_gradient.py and
test_flax_learners.py: the meta-gradient against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np

from gtnjax import meta

RTOL = 1e-9
# XLA options that compile tiny programs several times faster (less optimised
# code, same arithmetic): for checks whose compile time dwarfs their run time.
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def random_arrays(key, *shapes):
  keys = jax.random.split(jax.random.key(key), len(shapes))
  return [jax.random.normal(k, s, jnp.float64) for k, s in zip(keys, shapes)]


def assert_same_derivatives(f, ref, args, key=0):
  """Values, gradients and reverse-over-reverse (Hessian-vector) products of
  f and ref agree; the cotangent enters as an argument, so the second-order
  check also covers derivatives w.r.t. it, as in the meta-gradient."""
  y = jax.eval_shape(ref, *args)
  (c,) = random_arrays(key + 1, y.shape)
  us = random_arrays(key + 2, *[a.shape for a in args])

  def derivatives(fn, args, c):
    first = jax.grad(lambda *a: jnp.sum(jnp.sin(fn(*a)) * c), argnums=tuple(range(len(args))))

    def inner(args, cot):
      _, pullback = jax.vjp(lambda *a: jnp.tanh(fn(*a)), *args)
      return sum(jnp.vdot(g, u) for g, u in zip(pullback(cot), us))
    return fn(*args), first(*args), jax.grad(inner, argnums=(0, 1))(tuple(args), c)

  # One program for both functions and every order (eager dispatch of the
  # second-order graph compiles each of its many ops apart), compiled fast.
  both = jax.jit(lambda args, c: (derivatives(f, args, c), derivatives(ref, args, c)),
                 compiler_options=QUICK_COMPILE)
  got, want = both(tuple(args), c)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=RTOL, atol=RTOL)


def to_float64(tree):
  return jax.tree.map(lambda a: a.astype(jnp.float64), tree)


def meta_loss_problem(setup, seed=0):
  """(float64 teacher params, params -> meta-loss) of `setup` for a seed: the
  teacher's init, the meta-step key, 40 random images with balanced labels."""
  key = jax.random.key(seed)
  data_key, init_key, step_key = jax.random.split(key, 3)
  images = jax.random.normal(data_key, (40, *setup.teacher.image_shape), jnp.float64)
  labels = jnp.arange(40) % setup.teacher.num_classes
  params = to_float64(setup.teacher.init(init_key))

  def loss_fn(p):
    return meta.meta_loss(p, setup, step_key, images, labels)[0]

  return params, loss_fn


def meta_step_key(seed=0):
  """The key `meta_loss_problem` gives `meta.meta_loss` for this seed."""
  return jax.random.split(jax.random.key(seed), 3)[2]


def check_directional_derivatives(setup, seed=0, eps=1e-5, min_abs=0.0,
                                  compiler_options=None, names=None, ignored=(), atol=1e-7):
  """The meta-loss's gradient (`meta.meta_loss`, float64) against central
  finite differences along a random unit direction of each teacher leaf.

  setup: a MetaSetup, or a sequence of them checked together: one compiled
    program computes every setup's meta-loss and gradient (at this size a
    compile costs far more than a run, and one program for several setups
    compiles in about half the time of one per setup), and each finite
    difference moves leaf i of every setup at once (their losses are
    independent). The finite differences use the loss values of the same
    program, so there is no second, loss-only compile.
  min_abs: a floor on every directional derivative, so that a meta-loss that
    ignores a leaf (zero both ways) cannot pass; a number, or a function of
    the leaf's path (e.g. "['log_lr']") giving its floor.
  atol: the absolute tolerance of the comparison (relative: 2e-4); it should
    be near the finite differences' rounding error, or a derivative below it
    is not checked.
  compiler_options: XLA's, e.g. QUICK_COMPILE.
  names: one label per setup for failure messages (default "setup <index>").
  ignored: leaves known to be ignored by the meta-loss, as "<name>: <path>"
    (e.g. "setup 0: ['log_lr']"): their derivatives must be zero both ways
    (exempt from min_abs), so that the check fails once they matter.

  Returns (leaves checked, their paths); for a sequence, a list of those.
  """
  single = isinstance(setup, meta.MetaSetup)
  setups = [setup] if single else list(setup)
  names = names or [f"setup {s}" for s in range(len(setups))]
  problems = [meta_loss_problem(s, seed) for s in setups]
  params = [p for p, _ in problems]

  def values_and_grads(all_params):
    return [jax.value_and_grad(fn)(p) for (_, fn), p in zip(problems, all_params)]

  run = jax.jit(values_and_grads, compiler_options=compiler_options)
  grads = [g for _, g in run(params)]
  flat = [jax.tree_util.tree_flatten_with_path(p) for p in params]
  leaves = [[leaf for _, leaf in f] for f, _ in flat]
  paths = [[jax.tree_util.keystr(path) for path, _ in f] for f, _ in flat]
  grad_leaves = [jax.tree.leaves(g) for g in grads]
  rng = np.random.default_rng(seed)
  directions = []
  for setup_leaves in leaves:
    directions.append([])
    for leaf in setup_leaves:
      d = rng.standard_normal(leaf.shape)
      directions[-1].append(d / (np.linalg.norm(d) + 1e-30))

  def losses(i, sign):
    """Every setup's loss with its leaf i (if it has one) moved by sign * eps."""
    moved = []
    for (_, treedef), setup_leaves, setup_directions in zip(flat, leaves, directions):
      setup_leaves = list(setup_leaves)
      if i < len(setup_leaves):
        setup_leaves[i] = setup_leaves[i] + sign * eps * setup_directions[i]
      moved.append(jax.tree.unflatten(treedef, setup_leaves))
    return [float(value) for value, _ in run(moved)]

  unseen = set(ignored)
  for i in range(max(len(l) for l in leaves)):
    plus, minus = losses(i, +1), losses(i, -1)
    for s, name in enumerate(names):
      if i >= len(leaves[s]):
        continue
      where = f"{name}: {paths[s][i]}"
      numeric = (plus[s] - minus[s]) / (2 * eps)
      analytic = float(jnp.sum(grad_leaves[s][i] * directions[s][i]))
      if where in ignored:
        unseen.discard(where)
        assert abs(analytic) < 1e-10 and abs(numeric) < 1e-8, (
            f"{where}: derivative {numeric:.3g} (autodiff {analytic:.3g}) of a leaf "
            "listed as ignored")
        continue
      assert abs(analytic) > 1e-10 or abs(numeric) < 1e-8, f"{where}: zero gradient"
      floor = min_abs(paths[s][i]) if callable(min_abs) else min_abs
      assert abs(numeric) >= floor, f"{where}: derivative {numeric:.3g} below {floor}"
      np.testing.assert_allclose(analytic, numeric, rtol=2e-4, atol=atol, err_msg=where)
  assert not unseen, f"no such leaves: {sorted(unseen)}"
  results = [(len(l), set(p)) for l, p in zip(leaves, paths)]
  return results[0] if single else results
