// The encoder's pointwise sum over exposures with a fast CPU backward (a CPU hot spot).
#pragma once

#include <torch/torch.h>

namespace astroclear {

// Note [pointwise sum]: the pointwise convolution maps n channels to one, z = sum_c a[c] h[c].
// LibTorch 1.13 runs that 1 x 1 convolution through oneDNN's generic path on CPUs, several times
// slower than the one pass over h that suffices (docs/performance.md). pointwise_sum does that
// pass, forward and backward; the backward
// writes dL/dh[c] = a[c] g and sums dL/da[c] = sum_p h[c,p] g[p] in fixed blocks of pixels added
// in a fixed order, so the result does not depend on the thread count. On CUDA, for other dtypes, or with
// set_fast_cpu_kernels(false), it is torch::conv2d.

/// sum_c weight[c] * features[0, c] for `features` (1, n, H, W) and `weight` (n): (1, 1, H, W).
torch::Tensor pointwise_sum(const torch::Tensor& features, const torch::Tensor& weight);

}  // namespace astroclear
