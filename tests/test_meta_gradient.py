"""The meta-gradient of a 2-step unroll against central finite differences.

Run in float64 so the finite differences are accurate to ~1e-8; every
differentiated leaf of the teacher (generator weights, curriculum, learned
learning rates and momenta, soft labels, distilled pixels) is checked along a
random direction of its own.
"""

import pytest

from _derivative_checks import check_directional_derivatives
from gtnjax import learners, meta, teacher

# Every test here runs in float64 (the `float64` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("float64")

SHAPE = (8, 8, 1)
CLASSES = 3


def tiny_setup(kind="generator", curriculum="full", soft_labels=False, remat="step",
               probe_every=1, inner_steps=2, learner_weight_norm=True, **teacher_options):
  tspec = teacher.TeacherSpec(kind=kind, curriculum=curriculum, image_shape=SHAPE,
                              num_classes=CLASSES, inner_steps=inner_steps, batch_size=6,
                              noise_size=4, soft_labels=soft_labels, init_lr=0.1,
                              generator_chunk=1, **teacher_options)
  lspec = learners.LearnerSpec(name="tiny", input_shape=SHAPE, num_classes=CLASSES,
                               conv_widths=(3,), hidden_widths=(5,),
                               weight_norm=learner_weight_norm)
  return meta.MetaSetup(tspec, (lspec,), population=2, meta_batch_size=8,
                        probe_every=probe_every, remat=remat)


def test_generator_full_curriculum_every_leaf():
  checked, paths = check_directional_derivatives(tiny_setup())
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
  checked, paths = check_directional_derivatives(setup, eps=1e-6)
  assert checked == len(paths) and "['momentum_logit']" in paths


def test_without_weight_norm_every_leaf():
  """The weight-norm ablation: plain kernels in the generator and the learner."""
  setup = tiny_setup(weight_norm=False, learner_weight_norm=False)
  checked, paths = check_directional_derivatives(setup)
  assert checked == len(paths) and "['generator']['fc1']['kernel']" in paths
  assert not any("direction" in p for p in paths)


@pytest.mark.parametrize("remat", ["none", "step_dots", "block", "nested"])
def test_remat_policies_give_the_same_gradient(remat):
  setup = tiny_setup(remat=remat, inner_steps=4, probe_every=2)
  check_directional_derivatives(setup)


@pytest.mark.parametrize("kind,curriculum,soft", [
    ("generator", "gaussian", True),
    ("distillation", "full", True),
    ("real_data", "full", False),
])
def test_other_teachers(kind, curriculum, soft):
  checked, paths = check_directional_derivatives(tiny_setup(kind, curriculum, soft))
  assert checked == len(paths)
