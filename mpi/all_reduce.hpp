// Tensor all-reduces over a Communicator, the autograd one included (forward sum, backward sum).
#pragma once

#include <torch/torch.h>

#include "mpi/communicator.hpp"

namespace astroclear::mpi {

/// Sums `tensor` over ranks in place (no autograd). Float32, contiguous; CUDA tensors are staged
/// through the host when the backend cannot take device memory.
void all_reduce_sum_(torch::Tensor& tensor, Communicator& comm);

/// Differentiable sum over ranks: y = sum_r x_r on every rank. Its backward is the same sum of the
/// incoming gradients, because dL/dx_r = sum_r' dL_r'/dy (docs/design.md, "Exposure sharding").
torch::Tensor all_reduce_sum(const torch::Tensor& x, Communicator& comm);

}  // namespace astroclear::mpi
