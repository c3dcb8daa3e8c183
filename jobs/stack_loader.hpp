// From a manifest to this rank's LocalStack: plan (headers, partition), read, validate, agree.
#pragma once

#include <string>
#include <vector>

#include "io/image.hpp"
#include "io/manifest.hpp"
#include "mpi/communicator.hpp"
#include "src/stack.hpp"

namespace astroclear::jobs {

/// What every rank knows about the whole stack before reading pixels.
struct StackPlan {
  io::StackSpec spec;
  std::int64_t height = 0, width = 0;
  std::vector<std::int64_t> pixels;         ///< per exposure
  std::vector<std::vector<int>> owners;     ///< per rank
};

/// The stack this rank trains on, and what the outputs need from the inputs.
struct LoadedStack {
  StackPlan plan;
  LocalStack stack;                          ///< calibrated, not yet normalised
  std::vector<io::HeaderCard> first_header;  ///< image header of exposure 0 (rank 0 only)
  /// Per exposure, on every rank: checksum of the planes its owner read (image, sigma, good mask,
  /// PSF); the input fingerprint that checkpoints carry.
  std::vector<std::uint64_t> checksums;
};

/// Collective. Reads the manifest and every exposure's header (shapes must agree), partitions the
/// exposures over the ranks, then each rank reads and validates only its own. Any failure on any
/// rank raises CollectiveError on all ranks, before the first training collective. Ends by
/// sharing every exposure's checksum with every rank.
LoadedStack load_stack(const std::string& manifest, mpi::Communicator& comm);

}  // namespace astroclear::jobs
