// The field as a rank sees it: the whole of it, or its tile with the ring of its neighbours.
#pragma once

#include <torch/torch.h>

#include "mpi/communicator.hpp"
#include "mpi/tile_grid.hpp"

namespace astroclear {

/// What the trainer and the iterative restorations need to work on the whole field or on a tile
/// of it (Note [tiles]) with the same code. Without tiles every call is the identity or a local
/// reduction; with them, the exchanges and sums of docs/design.md, "Tiles".
class FieldView {
 public:
  /// `world`: every rank; `tiles`: this rank's place on a grid, or nullptr (or a 1 x 1 grid).
  FieldView(mpi::Communicator& world, const mpi::TileRanks* tiles);

  bool tiled() const { return tiles_ != nullptr; }
  const mpi::TileRanks* tiles() const { return tiles_; }
  /// The ranks that sum over exposures (the pointwise sum, rl's and mm's adjoints): the tile's.
  mpi::Communicator& exposure_sum() const { return tiles_ ? *tiles_->tile_group : world_; }

  /// x (the tile, h x w) -> its frame with the neighbours' pixels (differentiable; Note [halo exchange]).
  torch::Tensor frame(const torch::Tensor& x) const;
  /// The adjoint of frame(): contributions on a frame -> the tile, with the neighbours' added.
  torch::Tensor collect(const torch::Tensor& frame) const;
  /// The tile's pixels of a frame-sized image (the ring dropped).
  torch::Tensor inner(const torch::Tensor& frame) const;
  /// This rank's tile of a whole-field image (H, W).
  torch::Tensor tile_of(const torch::Tensor& field) const;
  /// The whole field (H, W, CPU) of the tiles `x` (h, w). Collective. With tiles it is made on
  /// rank 0 only, the one that writes outputs and checkpoints (an empty tensor elsewhere), so that
  /// no other rank ever holds a field-sized plane; without tiles `x` itself, on every rank.
  torch::Tensor whole(const torch::Tensor& x) const;
  /// The field's L2 norm and maximum of the tiles `x`. Collective.
  double norm(const torch::Tensor& x) const;
  double max(const torch::Tensor& x) const;

 private:
  mpi::Communicator& world_;
  const mpi::TileRanks* tiles_;
};

}  // namespace astroclear
