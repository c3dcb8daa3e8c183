// LocalStack normalisation: a flux unit every rank agrees on, whatever the split.
#include "src/stack.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

namespace astroclear {

std::vector<double> LocalStack::median_sigmas() const {
  std::vector<double> medians;
  for (std::int64_t t = 0; t < local_count(); ++t) {
    medians.push_back(sigmas[t].masked_select(good[t] > 0.5).median().item<double>());
  }
  return medians;
}

void LocalStack::normalise(mpi::Communicator& comm) {
  // Every exposure's median sigma on every rank (the median of them does not depend on the order).
  std::vector<double> medians;
  std::string local;
  char text[32];
  for (double m : median_sigmas()) {
    std::snprintf(text, sizeof(text), "%.17g ", m);
    local += text;
  }
  for (int r = 0; r < comm.size(); ++r) {
    std::istringstream values(comm.broadcast_string(local, r));
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
