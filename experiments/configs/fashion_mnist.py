"""Fashion-MNIST (tfds; set TFDS_DATA_DIR to a folder holding fashion_mnist/3.0.1).

    gtnjax train --config experiments/configs/fashion_mnist.py:cpu --workdir runs/fmnist_cpu

ARG: cpu or paper, as in mnist.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnist  # noqa: E402  (the sibling config; same settings, other data set)


def get_config(arg=None):
  return mnist.get_config(arg, dataset="fashion_mnist")
