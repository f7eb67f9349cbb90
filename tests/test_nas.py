"""GTN-NAS: the cell space, cell networks (static == masked), proxies, `gtnjax nas`."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtnjax import registry
from gtnjax.nas import network, proxies, space


def enc(text):
  return space.from_string(text)


def test_encoding_round_trips_and_rejects_bad_cells():
  rng = np.random.default_rng(0)
  for _ in range(20):
    e = space.sample(rng)
    assert space.from_string(space.to_string(e)) == e
    assert space.from_index(space.to_index(e)) == e
  assert space.NUM_ENCODINGS == 15625
  with pytest.raises(ValueError, match="6 operations"):
    space.validate((0, 1))
  with pytest.raises(ValueError, match="unknown operation"):
    space.from_string("conv3x3-conv5x5-none-none-none-none")


def test_mutation_changes_exactly_one_edge():
  rng = np.random.default_rng(1)
  for _ in range(50):
    e = space.sample(rng)
    m = space.mutate(e, rng)
    assert sum(a != b for a, b in zip(e, m)) == 1


def test_canonical_hash_merges_equivalent_cells_only():
  # Node 1 and node 2 swap roles: 0->1 conv3x3, 1->3 skip vs 0->2 conv3x3, 2->3 skip.
  a = enc("conv3x3-none-none-skip-skip-none")
  b = enc("none-conv3x3-none-skip-none-skip")
  assert space.canonical_hash(a) == space.canonical_hash(b)
  # A dead branch (node 2 never reaches the output) does not matter...
  c = enc("conv3x3-conv1x1-none-skip-skip-none")
  assert space.canonical_hash(c) == space.canonical_hash(a)
  assert space.live_edges(c) == (True, False, False, True, True, False)
  # ...but another operation on a live edge does, and so does x + x vs x.
  assert space.canonical_hash(enc("conv1x1-none-none-skip-skip-none")) != space.canonical_hash(a)
  assert space.canonical_form(enc("none-none-none-skip-none-none")) == "x"
  assert space.canonical_form(enc("skip-none-none-skip-skip-none")) == "+(x,x)"


def test_input_independent_cells_are_flagged():
  assert space.output_ignores_input(enc("none-conv3x3-conv3x3-none-conv3x3-none"))
  assert space.output_ignores_input(enc("conv3x3-conv3x3-skip-none-none-none"))
  assert not space.output_ignores_input(enc("none-none-none-avg_pool3x3-none-none"))
  cells = space.unique_sample(np.random.default_rng(0), 40, exclude_input_independent=True)
  assert len({space.canonical_hash(e) for e in cells}) == 40
  assert not any(space.output_ignores_input(e) for e in cells)


@pytest.mark.slow
def test_masked_population_equals_static_networks():
  """One vmapped masked program over several architectures gives each static
  network's logits (same key => same weights on the live operations)."""
  cells = [enc("conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"),
           enc("avg_pool3x3-conv3x3-conv1x1-skip-skip-none")]
  x = jax.random.normal(jax.random.key(0), (3, 8, 8, 1))
  masked = network.make(None, (8, 8, 1), 3, channels=2)
  keys = jax.random.split(jax.random.key(1), len(cells))
  params = jax.jit(jax.vmap(masked.init))(keys, jnp.array(cells))
  logits = jax.jit(jax.vmap(lambda p: masked.apply(p, x)[0]))(params)
  for i, cell in enumerate(cells):
    static = network.make(cell, (8, 8, 1), 3, channels=2)
    want, means = jax.jit(lambda k: static.apply(static.init(k), x))(keys[i])
    np.testing.assert_allclose(logits[i], want, rtol=1e-5, atol=1e-5)
    assert len(means) == len(static.hidden_layer_widths)
  # The mask is architecture, not a weight: no gradient reaches it.
  grads = jax.jit(jax.grad(lambda p: jnp.sum(masked.apply(p, x)[0])))(
      jax.tree.map(lambda a: a[0], params))
  assert float(jnp.abs(grads["op_mask"]).sum()) == 0.0


@pytest.mark.slow
def test_one_compiled_program_scores_every_cell_as_its_static_network():
  """The masked network with the cell as an array (one `lax.switch` per edge)
  gives every proxy of each static network, training ones included, from
  one compilation of each program for all the cells (issue #21)."""
  from gtnjax import teacher
  cells = [enc("conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"),
           enc("none-none-none-avg_pool3x3-conv3x3-avg_pool3x3")]
  x = jax.random.normal(jax.random.key(0), (16, 8, 8, 1))
  y = jnp.arange(16) % 3
  train_x = jax.random.normal(jax.random.key(5), (64, 8, 8, 1))
  train_y = jnp.arange(64) % 3
  tspec = teacher.TeacherSpec(kind="real_data", curriculum="full", image_shape=(8, 8, 1),
                              num_classes=3, inner_steps=3, batch_size=8, noise_size=4)
  tparams = tspec.init(jax.random.key(3))
  masked = network.make(None, (8, 8, 1), 3, channels=2)
  data = (train_x, train_y, train_x[:32], train_y[:32])
  # The GTN proxy's training path; the real-data proxies train through the
  # same `inner_loop` calls with other batches.
  kwargs = dict(proxies=("gtn",), gtn_steps=3, long_steps=6, batch_size=8)
  for cell in cells:
    static = network.make(cell, (8, 8, 1), 3, channels=2)
    for scores in (lambda s, e: proxies.zero_cost_scores(s, e, jax.random.key(1), x, y),
                   lambda s, e: proxies.training_scores(
                       s, e, tspec, tparams, tparams, jax.random.key(2), *data, 0.1, 0.1,
                       **kwargs)):
      want, got = scores(static, None), scores(masked, jnp.array(cell))
      for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=2e-5, err_msg=name)
  assert proxies.zero_cost_scores._cache_size() == len(cells) + 1
  assert proxies.training_scores._cache_size() == len(cells) + 1


@pytest.mark.slow
def test_gtn_scoring_variants():
  """Every scoring choice of the GTN proxy runs and means what it says: the
  defaults are the plain score, one lr scale of 1 changes nothing, neg_loss
  is minus a cross-entropy, and more seeds average more learners."""
  from gtnjax import teacher
  spec = network.make(enc("conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"), (8, 8, 1), 3,
                      channels=2)
  tspec = teacher.TeacherSpec(kind="real_data", curriculum="full", image_shape=(8, 8, 1),
                              num_classes=3, inner_steps=3, batch_size=8, noise_size=4)
  tparams = tspec.init(jax.random.key(3))
  images = jax.random.normal(jax.random.key(5), (64, 8, 8, 1))
  labels = jnp.arange(64) % 3
  data = (images, labels, images[:40], labels[:40])

  variants = {"plain": {}, "scale_1": dict(lr_scales=(1.0,), selection_images=10),
              "scales": dict(lr_scales=(1e-6, 1.0), selection_images=40),
              "neg_loss": dict(score="neg_loss"), "two_seeds": dict(seeds=2),
              "real_batch": dict(batch_stats="real_batch", real_batch_size=16)}
  scores = {k: float(v) for k, v in jax.jit(lambda: {  # one compilation for all
      name: proxies.gtn_score(spec, tspec, tparams, jax.random.key(2), *data,
                              proxies.GtnScoring(**choices))
      for name, choices in variants.items()})().items()}
  plain = scores["plain"]
  assert scores["scale_1"] == pytest.approx(plain, abs=1e-6)
  assert scores["scales"] >= plain - 1e-6
  assert scores["neg_loss"] < 0
  assert scores["two_seeds"] != plain
  assert 0.0 <= scores["real_batch"] <= 1.0
  from gtnjax.nas import config as nas_config
  for field, value in (("gtn_score", "loss"), ("gtn_lr_scales", "1,x"),
                       ("gtn_lr_scales", "0,1"), ("gtn_batch_stats", "ema")):
    c = nas_config.default_config()
    c.teacher.dataset, c.teacher.inner_steps = c.dataset, c.gtn_steps
    c[field] = value
    with pytest.raises(nas_config.NasConfigError, match=field):
      nas_config.validate(c)


def test_parameter_and_flop_counts():
  plain = network.make(enc("skip-none-none-none-skip-none"), (28, 28, 1), 10, channels=8)
  convs = network.make(enc("conv3x3-none-none-none-skip-none"), (28, 28, 1), 10, channels=8)
  # One live 3x3 conv per stage: 9 C^2 weights + C scales + C biases at C, 2C, 4C.
  extra = sum(9 * c * c + 2 * c for c in (8, 16, 32))
  assert network.count_params(convs) - network.count_params(plain) == extra
  extra_flops = sum(h * w * 9 * c * c for (h, w), c in zip(((14, 14), (7, 7), (4, 4)),
                                                           (8, 16, 32)))
  assert network.count_flops(convs) - network.count_flops(plain) == extra_flops


@pytest.mark.slow
def test_zero_cost_proxies_are_finite_and_track_size():
  x = jax.random.normal(jax.random.key(0), (8, 8, 8, 1))
  y = jnp.arange(8) % 3
  small = network.make(enc("skip-none-none-none-skip-none"), (8, 8, 1), 3, channels=2)
  big = network.make(enc("conv3x3-conv3x3-conv3x3-conv3x3-conv3x3-conv3x3"), (8, 8, 1), 3,
                     channels=2)
  s = {k: float(v) for k, v in proxies.zero_cost_scores(small, None, jax.random.key(1), x,
                                                          y).items()}
  b = {k: float(v) for k, v in proxies.zero_cost_scores(big, None, jax.random.key(1), x,
                                                          y).items()}
  assert set(s) == set(proxies.ZERO_COST_PROXIES)
  assert all(np.isfinite(v) and v != proxies.WORST_SCORE for v in [*s.values(), *b.values()])
  # More parameters on the input-output path: more synflow saliency and more
  # distinct activation patterns.
  assert b["synflow"] > s["synflow"]
  assert b["snip"] > s["snip"]
  assert b["naswot"] > s["naswot"]


def test_cell_learner_trains_through_the_inner_loop():
  """A cell network is a gtnjax learner: init_state / sgd_step work unchanged."""
  from gtnjax import inner_loop
  spec = registry.make_learner("cell:conv3x3-skip-none-conv1x1-none-skip", (8, 8, 1), 3)
  state = inner_loop.init_state(spec, jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (6, 8, 8, 1))
  y = jax.nn.one_hot(jnp.arange(6) % 3, 3)
  step = jax.jit(lambda state: inner_loop.sgd_step(spec, state, x, y, 0.1, 0.5))
  losses = []
  for _ in range(4):
    state, loss = step(state)
    losses.append(float(loss))
  assert losses[-1] < losses[0]
  with pytest.raises(ValueError, match="unknown operation"):
    registry.make_learner("cell:conv3x3-conv9x9-none-none-none-none", (12, 12, 1), 3)


def test_full_batch_norm_cells_normalise_scale_and_agree_across_forms():
  """Full batch norm (issue #21's official candidates): logits do not depend
  on the input's scale (mean-only batch norm's do), the masked form equals
  the static one, and a learner trains and evaluates with its [2, C] stats."""
  from gtnjax import config as gconfig, inner_loop
  cell = "conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip"
  x = jax.random.normal(jax.random.key(0), (6, 8, 8, 1)) + 0.5
  full = registry.make_learner(f"cell:{cell}", (8, 8, 1), 3, cell_batch_norm="full")
  mean_only = registry.make_learner(f"cell:{cell}", (8, 8, 1), 3)
  for spec, invariant in ((full, True), (mean_only, False)):
    params = spec.init(jax.random.key(1))
    logits, stats = spec.apply(params, x)
    scaled, _ = spec.apply(params, 10.0 * x)
    assert np.allclose(scaled, logits, atol=1e-3) == invariant
  params = full.init(jax.random.key(1))
  assert params["stem"]["bn_scale"].shape == (full.channels,)
  logits, stats = full.apply(params, x)
  assert [s.shape for s in stats] == [(2, w) for w in full.hidden_layer_widths]
  # Test mode with the batch's own statistics is training mode.
  np.testing.assert_allclose(full.apply(params, x, stats)[0], logits, rtol=1e-5, atol=1e-5)
  masked = network.make(None, (8, 8, 1), 3, batch_norm="full")
  got, _ = jax.jit(lambda e: masked.apply(masked.init(jax.random.key(1), e), x))(
      jnp.array(enc(cell)))
  np.testing.assert_allclose(got, logits, rtol=1e-5, atol=1e-5)
  state = inner_loop.init_state(full, jax.random.key(2))
  y = jax.nn.one_hot(jnp.arange(6) % 3, 3)
  state, _ = jax.jit(lambda s: inner_loop.sgd_step(full, s, x, y, 0.1, 0.5))(state)
  loss, _ = inner_loop.evaluate(full, state, x, jnp.arange(6) % 3)
  assert np.isfinite(float(loss))
  config = gconfig.default_config()
  config.cell_batch_norm = "batch"
  with pytest.raises(gconfig.ConfigError, match="cell_batch_norm.*choose one of mean, full"):
    gconfig.validate(config)


@pytest.mark.slow
def test_random_cell_learner_draws_a_live_cell_per_init():
  """"cell:random" draws its cell from the init key among input-dependent
  cells (different keys, different cells) and is the masked network of that
  cell with the same weights."""
  spec = registry.make_learner("cell:random", (8, 8, 1), 3)
  assert spec.name == "cell:random" and spec.masked
  keys = jax.random.split(jax.random.key(0), 64)
  cells = np.asarray(jax.jit(jax.vmap(
      lambda k: network.sample_encoding(jax.random.fold_in(k, network.RANDOM_CELL_SALT))))(keys))
  assert len({tuple(c) for c in cells}) > 50
  assert not any(space.output_ignores_input(c) for c in cells)
  masks = jax.jit(jax.vmap(spec.init))(keys)["op_mask"]
  np.testing.assert_array_equal(masks, jax.vmap(network.op_mask)(jnp.asarray(cells)))
  x = jax.random.normal(jax.random.key(1), (3, 8, 8, 1))
  static = network.make(tuple(cells[0]), (8, 8, 1), 3)
  np.testing.assert_allclose(spec.apply(spec.init(keys[0]), x)[0],
                             static.apply(static.init(keys[0]), x)[0], rtol=1e-5, atol=1e-5)



@pytest.mark.slow
def test_ranking_aware_meta_loss_over_a_labelled_cell_pool(tmp_path):
  """"cell:pool" draws each learner's cell from a labelled table and knows its
  label; `ranking_loss` is low when the losses rank like the labels, high
  when reversed, 0 without a pair of different labels; and the meta-loss
  with ranking_weight w is the plain one plus w times the ranking loss of the
  learners' final probe losses, each learner unrolled on its own."""
  from gtnjax import inner_loop, meta, teacher
  table = tmp_path / "cells.csv"
  cells = ["conv3x3-skip-conv1x1-conv3x3-avg_pool3x3-skip",
           "none-none-none-avg_pool3x3-conv3x3-avg_pool3x3", "conv1x1-none-none-none-none-skip"]
  table.write_text("index,encoding,val_acc_seed0\n"
                   + "".join(f"{i},{c},{0.5 + 0.1 * i}\n" for i, c in enumerate(cells)))
  spec = registry.make_learner("cell:pool", (8, 8, 1), 3, cell_pool=str(table))
  assert spec.name == "cell:pool" and spec.masked
  keys = jax.random.split(jax.random.key(0), 16)
  drawn = np.asarray(jax.vmap(spec.draw_cell)(keys))
  labels = np.asarray(jax.vmap(spec.cell_label)(keys))
  pool = {tuple(enc(c)): 0.5 + 0.1 * i for i, c in enumerate(cells)}
  assert len({tuple(d) for d in drawn}) == 3
  np.testing.assert_allclose(labels, [pool[tuple(d)] for d in drawn], rtol=1e-6)
  with pytest.raises(ValueError, match="ranking_cells"):
    registry.make_learner("cell:pool", (8, 8, 1), 3)

  losses, label = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.9, 0.5, 0.1])
  assert meta.ranking_loss(losses, label) < np.log(2) < meta.ranking_loss(losses[::-1], label)
  assert float(meta.ranking_loss(losses, jnp.ones(3))) == 0.0
  # Raising the best cell's loss worsens the ranking.
  assert jax.grad(meta.ranking_loss)(losses, label)[0] > 0

  # Any learner with `cell_label` is ranked: a small MLP labelled by its key
  # keeps this check's compilation short.
  import dataclasses
  from gtnjax import learners

  @dataclasses.dataclass(frozen=True)
  class LabelledMlp(learners.LearnerSpec):
    def cell_label(self, key):
      return jax.random.uniform(jax.random.fold_in(key, 1))

  spec = LabelledMlp(name="labelled", input_shape=(8, 8, 1), num_classes=3, conv_widths=(),
                     hidden_widths=(8,))
  tspec = teacher.TeacherSpec(kind="generator", curriculum="full", image_shape=(8, 8, 1),
                              num_classes=3, inner_steps=2, batch_size=4, noise_size=4)
  images = jax.random.normal(jax.random.key(5), (32, 8, 8, 1))
  labels_y = jnp.arange(32) % 3
  params = tspec.init(jax.random.key(3))
  setups = [meta.MetaSetup(teacher=tspec, learners=(spec,), population=4, meta_batch_size=8,
                           probe_every=2, ranking_weight=w) for w in (0.0, 2.0)]
  key = jax.random.key(7)

  @jax.jit  # one compilation for all
  def losses_and_finals():
    (plain, _), (ranked, aux) = [meta.meta_loss(params, s, key, images, labels_y)
                                 for s in setups]
    teacher_key, learner_key, probe_key = jax.random.split(key, 3)
    batches = tspec.batches(params, teacher_key, images, labels_y)
    probes = meta.sample_probes(probe_key, images, labels_y, 1, 8)
    member_keys = meta.population_keys(learner_key, setups[0])[0]
    final = jax.vmap(lambda k: inner_loop.unroll(spec, inner_loop.init_state(spec, k), batches,
                                                 probes, "block").probe_losses[-1])(member_keys)
    return plain, ranked, aux["ranking_loss"], final, jax.vmap(spec.cell_label)(member_keys)

  plain, ranked, got, final, member_labels = losses_and_finals()
  want = meta.ranking_loss(final, member_labels)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(ranked, plain + 2.0 * want, rtol=1e-5)

# ------------------------------------------------------------- metrics, search
def test_rank_metrics_on_known_cases():
  from gtnjax.nas import metrics
  truth = np.arange(10.0)
  assert metrics.spearman(truth, truth) == pytest.approx(1.0)
  assert metrics.kendall(-truth, truth) == pytest.approx(-1.0)
  assert metrics.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
  # Top 10% of 20 is 2 candidates; the proxy finds one of them.
  scores = np.arange(20.0)
  scores[[18, 0]] = scores[[0, 18]]
  assert metrics.precision_at_top(scores, np.arange(20.0)) == pytest.approx(0.5)
  assert metrics.top_half_mask(truth).sum() == 5
  with pytest.raises(ValueError, match="NaN"):
    metrics.spearman([1.0, np.nan], [1.0, 2.0])


def test_bootstrap_and_picked_accuracy_separate_good_from_bad_proxies():
  from gtnjax.nas import metrics
  rng = np.random.default_rng(0)
  truth = rng.normal(size=200)
  good = truth + 0.3 * rng.normal(size=200)
  noise = rng.normal(size=200)
  lo, hi = metrics.bootstrap_interval(metrics.spearman, good, truth, num_resamples=200)
  assert lo < metrics.spearman(good, truth) < hi and lo > 0.8
  paired = metrics.paired_bootstrap(metrics.spearman, good, noise, truth, num_resamples=200)
  assert paired["interval"][0] > 0 and paired["p_a_not_better"] == 0.0
  perfect = metrics.picked_accuracy(truth, truth, sample_size=50, num_trials=50)
  assert perfect["picked_accuracy"] == pytest.approx(perfect["best_in_sample"])
  reversed_ = metrics.picked_accuracy(-truth, truth, sample_size=50, num_trials=50)
  assert reversed_["picked_accuracy"] < perfect["picked_accuracy"] - 1


def test_searches_find_good_cells_and_count_evaluations():
  from gtnjax.nas import search
  calls = []

  def score(e):
    calls.append(e)
    return float(sum(op == 3 for op in e))  # number of conv3x3 edges

  rng = np.random.default_rng(0)
  history = search.regularized_evolution(space.sample, space.mutate, score, num_candidates=60,
                                         population_size=10, tournament_size=3, rng=rng)
  assert len(history) == 60 and len(calls) == len(set(calls)) <= 60
  assert history[0][1] >= 4  # random cells average 1.2 conv3x3 edges
  best = search.random_search(space.sample, score, num_candidates=30,
                              rng=np.random.default_rng(1))
  assert best[0][1] == max(s for _, s in best)
  assert len(search.top_k(history, 3)) == 3
  with pytest.raises(ValueError, match="tournament_size"):
    search.regularized_evolution(space.sample, space.mutate, score, num_candidates=5,
                                 population_size=2, tournament_size=3, rng=rng)


def test_analysis_writes_summary_and_plot(tmp_path):
  """The pipeline's last stage on a synthetic table: a proxy equal to the
  ground truth ranks perfectly, picks the best and beats noise in a paired test."""
  from gtnjax.nas import analysis
  from gtnjax.nas import config as nas_config
  c = nas_config.default_config()
  c.bootstrap_resamples, c.picked_sample_size, c.search_budget = 50, 10, 12
  c.population_size, c.tournament_size = 4, 2
  rng = np.random.default_rng(0)
  cells = space.unique_sample(rng, 30, exclude_input_independent=True)
  rows, scores = [], {}
  for i, e in enumerate(cells):
    acc = float(rng.uniform(0.6, 0.9))
    rows.append({"index": i, "encoding": space.to_string(e), "val_acc_seed0": acc,
                 "test_acc_seed0": acc - 0.01, "val_acc_seed1": acc + 0.005 if i < 5 else None})
    scores[i] = {p: float(rng.normal()) for p in c.proxies}
    scores[i]["gtn"] = acc
  summary = analysis.analyse(c, rows, scores, {"gtn": {"seconds": 1.0, "learner_steps": 16}},
                             str(tmp_path), log=lambda _: None)
  on_disk = json.loads((tmp_path / "summary.json").read_text())
  gtn = on_disk["proxies"]["gtn"]
  assert gtn["spearman"] == pytest.approx(1.0) and gtn["precision_top10pct"] == 1.0
  assert gtn["picked_accuracy"] == pytest.approx(gtn["best_in_sample"])
  assert on_disk["proxies"]["naswot"]["gtn_minus_this_spearman"]["interval"][0] > 0
  for key in ("spearman", "kendall", "spearman_top_half", "precision_top10pct",
              "picked_accuracy", "proxy_seconds"):
    assert all(key in on_disk["proxies"][p] for p in c.proxies)
  assert summary["test_retest"]["num_candidates"] == 5
  assert (tmp_path / "proxies_vs_ground_truth.png").stat().st_size > 1000
  assert summary["search"]["gtn"]["random"]["chosen_validation"] <= max(
      r["val_acc_seed0"] for r in rows)


def test_teacher_free_proxies_are_computed_once_and_shared(tmp_path, monkeypatch):
  """A second run with another teacher takes the real-data and zero-cost
  proxies from the cache and trains only its GTN proxies; other settings use
  another cache file. (The proxies themselves are stubbed: this is the
  bookkeeping; that the teacher-free columns of two real runs agree bit for
  bit is in results/nas_fmnist*/proxies.csv.)"""
  from gtnjax import data
  from gtnjax.nas import config as nas_config
  from gtnjax.nas import scoring
  monkeypatch.setenv("GTNJAX_CACHE_DIR", str(tmp_path / "cache"))
  c = nas_config.default_config()
  c.dataset = c.teacher.dataset = "digits"
  c.channels, c.proxy_batch_size = 2, 8
  dataset = data.load("digits")
  trained_sets = []

  def training_scores(spec, encoding, teacher_spec, teacher_params, untrained_params, key, *data,
                      proxies, **kwargs):
    trained_sets.append(proxies)
    values = {"gtn": teacher_params, "gtn_untrained": untrained_params,
              "real_same_steps": 0.25, "real_9x_steps": 0.5}
    return {p: values[p] for p in proxies}
  zero_cost = {p: float(i) for i, p in enumerate(proxies.ZERO_COST_PROXIES)}
  monkeypatch.setattr(proxies, "training_scores", training_scores)
  monkeypatch.setattr(proxies, "zero_cost_scores", lambda *args: zero_cost)
  rows = [{"index": i, "encoding": e, "hash": "h", "params": 1.0, "flops": 2.0} for i, e in
          enumerate(["conv1x1-conv3x3-skip-none-avg_pool3x3-conv3x3",
                     "conv3x3-skip-none-conv1x1-none-skip"])]
  real_lr = {"real_same_steps": 0.05, "real_9x_steps": 0.1}
  for name in ("a", "b"):
    (tmp_path / name).mkdir()  # run() makes the workdir
  first = scoring.compute_proxies(
      scoring.ProxyContext(c, dataset, None, 0.7, 0.1, real_lr), rows[:1], str(tmp_path / "a"), log=lambda _: None)
  assert trained_sets == [proxies.TRAINING_PROXIES]
  cache = scoring.teacher_free_cache_path(c, dataset, real_lr)
  assert os.path.exists(cache)

  def recomputed(*args):
    raise LookupError("recomputed")
  monkeypatch.setattr(proxies, "zero_cost_scores", recomputed)
  rows[1]["index"] = 0  # another candidate under a cached index: not a hit
  with pytest.raises(LookupError, match="recomputed"):
    scoring.compute_proxies(
      scoring.ProxyContext(c, dataset, None, 0.8, 0.1, real_lr), rows[1:], str(tmp_path / "b"), log=lambda _: None)
  trained_sets.clear()
  second = scoring.compute_proxies(
      scoring.ProxyContext(c, dataset, None, 0.9, 0.1, real_lr), rows[:1], str(tmp_path / "b"), log=lambda _: None)
  assert trained_sets == [("gtn", "gtn_untrained")]
  for name in scoring.TEACHER_FREE_PROXIES + ("gtn_untrained", "params", "flops"):
    assert second[0][name] == first[0][name], name
  assert (first[0]["gtn"], second[0]["gtn"]) == (0.7, 0.9)
  # A row cut short by a killed run is skipped, and the next row starts a new line.
  with open(cache, "a") as f:
    f.write("1,conv3x3-skip-no")
  monkeypatch.setattr(proxies, "zero_cost_scores", lambda *args: zero_cost)
  rows[1]["index"] = 1
  (tmp_path / "c").mkdir()
  scoring.compute_proxies(
      scoring.ProxyContext(c, dataset, None, 0.8, 0.1, real_lr), rows[1:], str(tmp_path / "c"),
                           log=lambda _: None)
  assert set(scoring._read_teacher_free_cache(cache)) == {(r["index"], r["encoding"])
                                                          for r in rows}
  c.proxy_batch_size = 4
  assert scoring.teacher_free_cache_path(c, dataset, real_lr) != cache
  c.proxy_batch_size = 8
  assert scoring.teacher_free_cache_path(c, dataset, real_lr) == cache
  assert scoring.teacher_free_cache_path(c, dataset, {**real_lr, "real_9x_steps": 0.2}) != cache


def test_nas_command_rejects_bad_configs_before_work(tmp_path, capsys, monkeypatch):
  from gtnjax import cli
  # Already set, so the command leaves the process environment alone.
  monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=1")
  bad = tmp_path / "bad_nas.py"
  bad.write_text(
      "from gtnjax.nas.config import default_config\n"
      "def get_config(arg=None):\n"
      "  c = default_config()\n"
      "  c.ground_truth_steps = 100\n"
      "  c.teacher.dataset = c.dataset\n"
      "  c.teacher.inner_steps = c.gtn_steps\n"
      "  return c\n")
  assert cli.main(["nas", "--config", str(bad), "--workdir", str(tmp_path / "w")]) == 2
  assert "ground_truth_steps" in capsys.readouterr().err
  assert not (tmp_path / "w").exists()
  # A finished teacher is reused, not retrained: one of another config is refused.
  from gtnjax import config as gconfig
  from gtnjax.nas import config as nas_config
  tiny = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs", "nas_fmnist.py:tiny")
  other = nas_config.load(tiny).teacher
  other.learner = "cnn_gap"
  (tmp_path / "w" / "teacher").mkdir(parents=True)
  (tmp_path / "w" / "teacher" / "config.json").write_text(gconfig.to_json(other))
  assert cli.main(["nas", "--config", tiny, "--workdir", str(tmp_path / "w")]) == 2
  assert "learner: 'cnn_gap' -> 'cell:" in capsys.readouterr().err
  assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["teacher"]


def test_population_teacher_cells_are_distinct_and_never_candidates():
  from gtnjax import config as gconfig
  from gtnjax.nas import config as nas_config, ground_truth
  path = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs", "nas_fmnist.py")
  fixed_cell = nas_config.load(path + ":fixed_cell_teacher")
  population = nas_config.load(path + ":population_teacher")
  names = gconfig.learner_names(population.teacher)
  cells = [space.from_string(n[len("cell:"):]) for n in names]
  assert names[0] == fixed_cell.teacher.learner  # the fixed cell first: same real-proxy lr
  hashes = {space.canonical_hash(c) for c in cells}
  assert len(names) == 4 and len(hashes) == 4
  assert not any(space.output_ignores_input(c) for c in cells)
  candidate_hashes = {space.canonical_hash(c) for c in ground_truth.candidates(population)}
  assert not hashes & candidate_hashes
  # As many learners per meta-step as the fixed-cell teacher.
  assert len(names) * population.teacher.population == fixed_cell.teacher.population
  # The random-cell teacher: the same, but a fresh cell per learner, and the
  # real-data proxies' lr still chosen for the fixed cell.
  random_cells = nas_config.load(path + ":random_cells_teacher")
  assert random_cells.teacher.learner == "cell:random"
  assert random_cells.teacher.population == fixed_cell.teacher.population
  assert nas_config.real_lr_learner_of(random_cells) == nas_config.real_lr_learner_of(fixed_cell)
  # The default teacher (the NAS study's winner): the larger plain CNN, the
  # real-data proxies' lr still the fixed cell's.
  default = nas_config.load(path)
  assert default.teacher.learner == "cnn_gap"
  assert nas_config.real_lr_learner_of(default) == nas_config.real_lr_learner_of(fixed_cell)
  random_cells.real_lr_learner = "cell:conv9x9"
  with pytest.raises(nas_config.NasConfigError, match="real_lr_learner"):
    nas_config.validate(random_cells)


def _nas_report_module():
  import importlib.util
  path = os.path.join(os.path.dirname(__file__), "..", "experiments", "nas_report.py")
  spec = importlib.util.spec_from_file_location("nas_report", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_conv_depth_and_nas_report_tables_from_committed_results(tmp_path):
  import shutil
  nas_report = _nas_report_module()
  depth = lambda text: space.conv_depth(space.from_string(text))
  assert depth("conv3x3-conv3x3-conv3x3-none-none-conv3x3") == 3   # 0-1-2-3
  assert depth("conv3x3-none-none-skip-conv3x3-none") == 2           # 0-1-3 beats 0-3
  assert depth("skip-none-none-conv1x1-none-none") == 1              # 0-1 is dead
  assert depth("avg_pool3x3-none-none-none-skip-none") == 0
  assert depth("none-none-none-none-none-none") == -1
  # The report reads only committed files: run it on a copy of them.
  results = os.path.join(os.path.dirname(__file__), "..", "results")
  for run in ("nas_fmnist", "nas_fmnist_fixed_cell", "nas_fmnist_population"):
    shutil.copytree(os.path.join(results, run), tmp_path / run)
  text = nas_report.report(str(tmp_path), resamples=50)
  assert (tmp_path / "nas_fmnist" / "table.md").read_text() == text
  with open(tmp_path / "nas_fmnist" / "summary.json") as f:
    summary = json.load(f)
  for name, entry in summary["proxies"].items():
    assert f"| {name} | {entry['spearman']:+.3f} [" in text
  assert "| fixed cell |" in text and "| four cells |" in text
  assert "random cells" not in text
