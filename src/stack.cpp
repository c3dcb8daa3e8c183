// LocalStack normalisation: a flux unit every rank agrees on, whatever the split.
#include "src/stack.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "common/order_statistics.hpp"

namespace astroclear {
namespace {

// Note [field median]: on tiles a rank holds a tile of each of its exposures, and the median
// sigma of an exposure is over the whole field. It is found exactly, without gathering pixels, by
// the bisection of Note [order statistics] over the exposure group: the k-th smallest good sigma,
// k = (N - 1) / 2 (the lower median, as torch::median gives it).
std::vector<double> field_medians(const LocalStack& stack, mpi::Communicator& group) {
  const std::int64_t n = stack.local_count();
  std::vector<std::vector<float>> values;
  std::vector<double> count(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < n; ++t) {
    const torch::Tensor good = stack.sigmas[t].masked_select(stack.good[t] > 0.5).to(torch::kCPU, torch::kFloat32).contiguous();
    values.emplace_back(good.data_ptr<float>(), good.data_ptr<float>() + good.numel());
    count[t] = static_cast<double>(good.numel());
  }
  group.all_reduce_sum(count.data(), count.size());
  std::vector<OrderQuery> queries;
  for (std::int64_t t = 0; t < n; ++t) {
    queries.push_back({static_cast<std::size_t>(t), static_cast<std::int64_t>(std::floor((count[t] - 1) / 2))});
  }
  const std::vector<float> medians = order_statistics(
      values, queries, [&group](std::vector<double>& v) { group.all_reduce_sum(v.data(), v.size()); });
  return {medians.begin(), medians.end()};
}

}  // namespace

std::vector<double> LocalStack::median_sigmas(mpi::Communicator* exposure_group) const {
  if (exposure_group != nullptr) return field_medians(*this, *exposure_group);
  std::vector<double> medians;
  for (std::int64_t t = 0; t < local_count(); ++t) {
    medians.push_back(sigmas[t].masked_select(good[t] > 0.5).median().item<double>());
  }
  return medians;
}

void LocalStack::normalise(mpi::Communicator& comm, mpi::Communicator* tile_group,
                           mpi::Communicator* exposure_group) {
  // Every exposure's median sigma on every rank (the median of them does not depend on the order).
  std::vector<double> medians;
  std::string local;
  char text[32];
  for (double m : median_sigmas(exposure_group)) {
    std::snprintf(text, sizeof(text), "%.17g ", m);
    local += text;
  }
  mpi::Communicator& holders = tile_group != nullptr ? *tile_group : comm;  // every exposure once
  for (int r = 0; r < holders.size(); ++r) {
    std::istringstream values(holders.broadcast_string(local, r));
    for (double m; values >> m;) medians.push_back(m);
  }
  std::sort(medians.begin(), medians.end());
  const std::size_t n = medians.size();
  normalise_with(n % 2 ? medians[n / 2] : 0.5 * (medians[n / 2 - 1] + medians[n / 2]), comm);
}

void LocalStack::normalise_with(double unit, mpi::Communicator& comm) {
  flux_unit = unit;
  images = images / flux_unit;
  sigmas = torch::where(good > 0.5, sigmas / flux_unit, torch::ones_like(sigmas));
  double count = good.sum().item<double>();
  comm.all_reduce_sum(&count, 1);
  good_pixels = count;
}

void LocalStack::to(torch::Device device) {
  to_for_training(device);
  sigmas = sigmas.to(device);
  good = good.to(device);
}

void LocalStack::to_for_training(torch::Device device) {
  images = images.to(device);
  for (auto& p : psfs) p = p.to(device);
}

}  // namespace astroclear
