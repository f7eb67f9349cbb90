"""Configs shipped inside the package, so that they are found wherever gtnjax
is installed and whatever the current folder: `digits.py` is the default of
`gtnjax train`. The other configs live in the repository's `experiments/configs/`.
"""

import os

DIGITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.py")
