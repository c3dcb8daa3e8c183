// FieldView: halo exchanges and field-wide reductions over the tiles, or nothing without them.
#include "src/field_view.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "mpi/all_reduce.hpp"
#include "mpi/halo_exchange.hpp"
#include "src/stack.hpp"

namespace astroclear {
namespace {

constexpr int kWholeFieldTag = 7100;  ///< the message tag of the tiles sent to rank 0

}  // namespace

FieldView::FieldView(mpi::Communicator& world, const mpi::TileRanks* tiles)
    : world_(world), tiles_(tiles != nullptr && tiles->tiled() ? tiles : nullptr) {}

torch::Tensor FieldView::frame(const torch::Tensor& x) const {
  if (!tiles_) return x;
  return mpi::halo_exchange(x, tiles_->tile.halo, tiles_->neighbours, *tiles_->exposure_group);
}

torch::Tensor FieldView::collect(const torch::Tensor& frame) const {
  if (!tiles_) return frame;
  return mpi::halo_return(frame, tiles_->tile.halo, tiles_->neighbours, *tiles_->exposure_group);
}

torch::Tensor FieldView::inner(const torch::Tensor& frame) const {
  if (!tiles_) return frame;
  const mpi::TileGeometry& t = tiles_->tile;
  return frame.narrow(-2, t.halo, t.height()).narrow(-1, t.halo, t.width());
}

torch::Tensor FieldView::tile_of(const torch::Tensor& field) const {
  if (!tiles_) return field;
  const mpi::TileGeometry& t = tiles_->tile;
  return field.narrow(-2, t.y0, t.height()).narrow(-1, t.x0, t.width()).contiguous();
}

torch::Tensor FieldView::whole(const torch::Tensor& x) const {
  if (!tiles_) return x.to(torch::kCPU);
  // The first rank of each tile sends it to rank 0 (the first rank of tile 0), which places them.
  const mpi::RankLayout& layout = tiles_->layout;
  const mpi::TileGeometry& mine = tiles_->tile;
  const torch::Tensor tile = x.to(torch::kCPU, torch::kFloat32).contiguous();
  if (world_.rank() != 0) {
    if (tiles_->tile_group->rank() == 0) world_.send(tile.data_ptr<float>(), tile.numel(), 0, kWholeFieldTag);
    return torch::zeros({0});
  }
  torch::Tensor field = torch::empty({mine.field_height, mine.field_width});
  for (int index = 0; index < layout.grid.count(); ++index) {
    const mpi::TileGeometry t = layout.geometry(index, mine.field_height, mine.field_width, mine.halo);
    torch::Tensor part = index == 0 ? tile : torch::empty({t.height(), t.width()});
    if (index != 0) world_.receive(part.data_ptr<float>(), part.numel(), index * layout.shards, kWholeFieldTag);
    field.narrow(0, t.y0, t.height()).narrow(1, t.x0, t.width()).copy_(part);
  }
  return field;
}

double FieldView::norm(const torch::Tensor& x) const {
  double squares = x.to(torch::kFloat64).square().sum().item<double>();
  if (tiles_) tiles_->exposure_group->all_reduce_sum(&squares, 1);  // each tile once
  return std::sqrt(squares);
}

double FieldView::max(const torch::Tensor& x) const {
  const double local = x.max().item<double>();
  if (!tiles_) return local;
  std::vector<double> each(static_cast<std::size_t>(tiles_->exposure_group->size()), 0.0);
  each[static_cast<std::size_t>(tiles_->exposure_group->rank())] = local;
  tiles_->exposure_group->all_reduce_sum(each.data(), each.size());
  return *std::max_element(each.begin(), each.end());
}

}  // namespace astroclear
