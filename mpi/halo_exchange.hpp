// The halo exchange of a tiled image and its adjoint, as an autograd function.
#pragma once

#include <torch/torch.h>

#include "mpi/communicator.hpp"
#include "mpi/tile_grid.hpp"

namespace astroclear::mpi {

// Note [halo exchange]: halo_exchange(x, g) makes the frame of a tile: x (h, w) in the middle of
// (h + 2g, w + 2g), the ring filled with the neighbouring tiles' pixels, and 0 beyond the field's
// edges (the decoder's PSF convolution pads the field with zeros). Two phases: rows first (the top
// g rows go up, the bottom g rows down), then columns over the full frame height, so the corners
// arrive from the diagonal tiles by way of the side ones. Its adjoint runs the phases backwards:
// the gradient of the ring goes back to the tile it came from and is added to the rows or columns
// sent, so that the gradient of x is that of the whole-field computation. Every tile must be at
// least g in both directions (mpi::RankLayout::make checks).

/// The frame (h + 2 halo, w + 2 halo) of the tile `x` (h, w). Differentiable (its backward is the
/// adjoint exchange); collective over the ranks of `neighbours` in `comm`. Float32, any device.
torch::Tensor halo_exchange(const torch::Tensor& x, std::int64_t halo, const Neighbours& neighbours, Communicator& comm);

/// The adjoint of halo_exchange as a plain function: a frame (h + 2 halo, w + 2 halo) whose ring
/// holds contributions to the neighbouring tiles' pixels -> the tile (h, w) with the neighbours'
/// contributions to its pixels added (the explicit adjoints of rl and mm). Collective like it.
torch::Tensor halo_return(const torch::Tensor& frame, std::int64_t halo, const Neighbours& neighbours,
                          Communicator& comm);

}  // namespace astroclear::mpi
