// inverse_variance_coadd: two planes summed over the ranks of the field (or of a tile).
#include "eval/coadd.hpp"

#include <limits>

#include "mpi/all_reduce.hpp"

namespace astroclear {

torch::Tensor inverse_variance_coadd(const LocalStack& stack, const FieldView& field) {
  torch::NoGradGuard no_grad;
  torch::Tensor weight = stack.good / (stack.sigmas * stack.sigmas);
  torch::Tensor planes = torch::stack({(weight * stack.images).sum(0), weight.sum(0)});
  if (field.tiled()) planes = field.inner(planes);  // the ring's weights are 0: the tile alone
  planes = planes.to(torch::kCPU).contiguous();
  mpi::all_reduce_sum_(planes, field.exposure_sum());
  torch::Tensor coadd = planes[0] / planes[1] * stack.flux_unit;
  return torch::where(planes[1] > 0, coadd, torch::full_like(coadd, std::numeric_limits<float>::quiet_NaN()));
}

torch::Tensor inverse_variance_coadd(const LocalStack& stack, mpi::Communicator& comm) {
  return inverse_variance_coadd(stack, FieldView(comm, nullptr));
}

}  // namespace astroclear
