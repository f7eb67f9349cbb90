"""The embedded default: scikit-learn's 8x8 digits, no download needed.

    gtnjax train --config experiments/configs/digits.py --workdir runs/digits

The config itself ships inside the package (`gtnjax/configs/digits.py`), so
that `gtnjax train` without `--config` finds it from any folder; this file is
the same config at the path the other configs live at.
"""

from gtnjax.configs.digits import get_config  # noqa: F401
