// Exposure partition: contiguous blocks whose pixel counts are as even as possible.
#include "mpi/partition.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "common/error.hpp"

namespace astroclear::mpi {

std::vector<std::vector<int>> partition_exposures(const std::vector<std::int64_t>& pixels, int ranks) {
  const int n = static_cast<int>(pixels.size());
  if (ranks < 1) throw Error("partition: rank count must be >= 1, got " + std::to_string(ranks));
  if (ranks > n) {
    throw Error("more MPI ranks (" + std::to_string(ranks) + ") than exposures (" + std::to_string(n) +
                "): every rank must own at least one exposure; run with -n " + std::to_string(n) + " or fewer");
  }
  // Boundary r is placed where the running pixel total is nearest r/P of the whole, kept inside
  // [previous + 1, n - (P - r)] so that every rank has at least one exposure.
  std::vector<double> cumulative(n + 1, 0.0);
  for (int t = 0; t < n; ++t) cumulative[t + 1] = cumulative[t] + static_cast<double>(pixels[t]);
  const double total = cumulative[n];
  std::vector<int> bounds(ranks + 1, 0);
  bounds[ranks] = n;
  for (int r = 1; r < ranks; ++r) {
    const double target = total * r / ranks;
    int best = bounds[r - 1] + 1;
    for (int b = best; b <= n - (ranks - r); ++b) {
      if (std::abs(cumulative[b] - target) < std::abs(cumulative[best] - target)) best = b;
    }
    bounds[r] = best;
  }
  std::vector<std::vector<int>> owners(ranks);
  for (int r = 0; r < ranks; ++r) {
    for (int t = bounds[r]; t < bounds[r + 1]; ++t) owners[r].push_back(t);
  }
  return owners;
}

std::vector<std::vector<int>> split_evenly(const std::vector<int>& items, int ranks) {
  if (ranks < 1) throw Error("partition: rank count must be >= 1, got " + std::to_string(ranks));
  std::vector<std::vector<int>> owners(ranks);
  const std::size_t n = items.size(), base = n / ranks, extra = n % ranks;
  std::size_t next = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(ranks); ++r) {
    for (std::size_t k = 0; k < base + (r < extra ? 1 : 0); ++k) owners[r].push_back(items[next++]);
  }
  return owners;
}

std::string describe_partition(const std::vector<std::vector<int>>& owners, const std::vector<std::int64_t>& pixels) {
  std::ostringstream out;
  for (std::size_t r = 0; r < owners.size(); ++r) {
    std::int64_t px = 0;
    for (int t : owners[r]) px += pixels[t];
    out << (r ? "; " : "") << "rank " << r << ": ";
    if (owners[r].empty()) {
      out << "none";
      continue;
    }
    out << "exposures ";
    // Runs of consecutive indices as "a-b", separated by commas: "0-14,16-21,23".
    const auto& owned = owners[r];
    for (std::size_t k = 0; k < owned.size();) {
      std::size_t end = k;
      while (end + 1 < owned.size() && owned[end + 1] == owned[end] + 1) ++end;
      out << (k ? "," : "") << owned[k];
      if (end > k) out << "-" << owned[end];
      k = end + 1;
    }
    out << " (" << owners[r].size() << ", " << px << " px)";
  }
  return out.str();
}

int cuda_device_for(int local_rank, int visible_devices) {
  return visible_devices > 0 ? local_rank % visible_devices : -1;
}

int default_threads(int cores, int local_ranks) { return std::max(1, cores / std::max(1, local_ranks)); }

}  // namespace astroclear::mpi
