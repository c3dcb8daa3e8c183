// LocalStack normalisation: a flux unit every rank agrees on, whatever the split.
#include "src/stack.hpp"

#include <algorithm>

namespace astroclear {

std::vector<double> LocalStack::median_sigmas() const {
  std::vector<double> medians;
  for (std::int64_t t = 0; t < local_count(); ++t) {
    medians.push_back(sigmas[t].masked_select(good[t] > 0.5).median().item<double>());
  }
  return medians;
}

void LocalStack::normalise(mpi::Communicator& comm) {
  // Per-exposure median sigma, scattered into a vector over all exposures, summed over ranks.
  std::vector<double> medians(total_exposures, 0.0);
  const std::vector<double> local = median_sigmas();
  for (std::int64_t t = 0; t < local_count(); ++t) medians[exposure_ids[t]] = local[t];
  comm.all_reduce_sum(medians.data(), medians.size());
  std::vector<double> sorted = medians;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  flux_unit = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
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
