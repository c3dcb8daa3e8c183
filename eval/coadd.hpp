// The masked inverse-variance weighted coadd: the baseline every astronomer knows.
#pragma once

#include <torch/torch.h>

#include "mpi/communicator.hpp"
#include "src/stack.hpp"

namespace astroclear {

/// sum_t good y / sigma^2 / sum_t good / sigma^2 over all ranks' exposures, in calibrated flux
/// units, (H, W) on the CPU; NaN where no exposure has a good pixel. Collective.
/// With `tile`, the stack holds that tile's frames (Note [tiles]) and the coadd is still the whole field.
torch::Tensor inverse_variance_coadd(const LocalStack& stack, mpi::Communicator& comm,
                                     const mpi::TileGeometry* tile = nullptr);

}  // namespace astroclear
