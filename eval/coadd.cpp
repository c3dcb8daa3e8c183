// inverse_variance_coadd: two planes summed over ranks.
#include "eval/coadd.hpp"

#include <limits>

#include "mpi/all_reduce.hpp"

namespace astroclear {

torch::Tensor inverse_variance_coadd(const LocalStack& stack, mpi::Communicator& comm, const mpi::TileGeometry* tile) {
  torch::NoGradGuard no_grad;
  torch::Tensor weight = stack.good / (stack.sigmas * stack.sigmas);
  torch::Tensor planes = torch::stack({(weight * stack.images).sum(0), weight.sum(0)}).to(torch::kCPU).contiguous();
  if (tile != nullptr) planes = tile_to_field(planes, *tile);
  mpi::all_reduce_sum_(planes, comm);
  torch::Tensor coadd = planes[0] / planes[1] * stack.flux_unit;
  return torch::where(planes[1] > 0, coadd, torch::full_like(coadd, std::numeric_limits<float>::quiet_NaN()));
}

}  // namespace astroclear
