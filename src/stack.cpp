// LocalStack normalisation: a flux unit every rank agrees on, whatever the split.
#include "src/stack.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

namespace astroclear {
namespace {

// Note [field median]: on tiles a rank holds a tile of each of its exposures, and the median
// sigma of an exposure is over the whole field. It is found exactly, without gathering pixels:
// positive floats order as their bit patterns do, so a bisection over the 31 bits of the pattern,
// counting the good pixels at or below the candidate on every tile (one all-reduce of a count per
// exposure and step), ends on the k-th smallest value itself, k = (N - 1) / 2 (the lower median,
// as torch::median gives it).
std::vector<double> field_medians(const LocalStack& stack, mpi::Communicator& group) {
  const std::int64_t n = stack.local_count();
  std::vector<torch::Tensor> values;
  std::vector<double> count(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < n; ++t) {
    values.push_back(stack.sigmas[t].masked_select(stack.good[t] > 0.5).to(torch::kCPU, torch::kFloat32));
    count[t] = static_cast<double>(values.back().numel());
  }
  group.all_reduce_sum(count.data(), count.size());
  std::vector<std::int32_t> low(n, 0), high(n, 0x7f800000);  // [+0, +inf]: the answer's bits lie in [low, high]
  for (int step = 0; step < 32; ++step) {
    std::vector<double> at_or_below(static_cast<std::size_t>(n));
    std::vector<std::int32_t> middle(n);
    for (std::int64_t t = 0; t < n; ++t) {
      middle[t] = low[t] + (high[t] - low[t]) / 2;
      float candidate;
      std::memcpy(&candidate, &middle[t], sizeof candidate);
      at_or_below[t] = values[t].le(candidate).sum().item<double>();
    }
    group.all_reduce_sum(at_or_below.data(), at_or_below.size());
    for (std::int64_t t = 0; t < n; ++t) {
      const double k = std::floor((count[t] - 1) / 2);
      if (at_or_below[t] >= k + 1) {
        high[t] = middle[t];
      } else {
        low[t] = middle[t] + 1;
      }
    }
  }
  std::vector<double> medians;
  for (std::int64_t t = 0; t < n; ++t) {
    float value;
    std::memcpy(&value, &high[t], sizeof value);
    medians.push_back(value);
  }
  return medians;
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

torch::Tensor tile_to_field(const torch::Tensor& frame, const mpi::TileGeometry& tile) {
  std::vector<std::int64_t> shape(frame.sizes().begin(), frame.sizes().end());
  shape[shape.size() - 2] = tile.field_height;
  shape[shape.size() - 1] = tile.field_width;
  torch::Tensor field = torch::zeros(shape, frame.options().device(torch::kCPU));
  field.narrow(-2, tile.y0, tile.height())
      .narrow(-1, tile.x0, tile.width())
      .copy_(frame.narrow(-2, tile.halo, tile.height()).narrow(-1, tile.halo, tile.width()));
  return field;
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
