// BatchNorm whose statistics are over the whole field when the field is cut into tiles.
#pragma once

#include <torch/torch.h>

#include <utility>

#include "mpi/communicator.hpp"

namespace astroclear {

// Note [field batch norm]: BatchNorm normalises each exposure's branch output by its mean and
// variance over the field. On tiles (Note [tiles]) a rank sees one tile, so the sums behind the
// mean, the variance and their gradients are all-reduced over the exposure group (the ranks that
// hold the same exposures on other tiles), as PyTorch's SyncBatchNorm does over a batch split
// across devices: mean and variance in two passes, in float64, on the host. The backward needs
// two more sums per channel, sum(g) and sum(g (h - mean)), reduced the same way; the gradients
// of gamma and beta it returns are this tile's part, summed over tiles with the other parameters'.

/// Per channel of h (1, n, H, W): the mean and (biased) variance over all pixels of the ranks in
/// `group`, float64 on the CPU. Collective.
std::pair<torch::Tensor, torch::Tensor> field_moments(const torch::Tensor& h, mpi::Communicator& group);

/// Training-mode batch_norm of h (1, n, H, W) with the field's statistics. Collective; differentiable
/// in h, gamma and beta.
torch::Tensor field_batch_norm(const torch::Tensor& h, const torch::Tensor& gamma, const torch::Tensor& beta, double eps,
                               mpi::Communicator& group);

}  // namespace astroclear
