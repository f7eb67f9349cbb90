"""Fast implementations of the layers' convolution and max-pool.

`layers.conv2d` and `layers.max_pool` dispatch to these; networks never call
them directly. Each is exact against its library reference (`conv2d_lax`,
`max_pool_lax`) in value and derivatives, and exists because the
meta-gradient differentiates every layer to second order, where XLA:CPU's
library convolution and reduce_window are slow (BENCHMARKS.md).
"""

from gtnjax.ops.conv import (ROUTED_WIDE_CHANNELS, conv2d_gemm, conv2d_im2col, conv2d_lax,
                             conv2d_routed, conv2d_shifted_outputs)
from gtnjax.ops.pool import max_pool_lax, max_pool_phases, max_pool_slices

__all__ = ["ROUTED_WIDE_CHANNELS", "conv2d_gemm", "conv2d_im2col", "conv2d_lax", "conv2d_routed",
           "conv2d_shifted_outputs", "max_pool_lax", "max_pool_phases", "max_pool_slices"]
