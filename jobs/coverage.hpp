// The coverage every output carries: how many exposures measured each pixel, and what no exposure did.
#pragma once

#include <cstdint>
#include <vector>

#include "io/fits_output.hpp"
#include "jobs/stack_loader.hpp"
#include "mpi/communicator.hpp"

namespace astroclear::jobs {

/// Bits of an output's MASK HDU (Note [coverage]).
constexpr std::int32_t kMaskNoData = 1;     ///< no fitted exposure has a good pixel here: the image is NaN
constexpr std::int32_t kMaskSaturated = 2;  ///< an exposure's mask calls the pixel saturated

/// The planes of Note [coverage]: on every rank, or with tiles on rank 0 alone (empty elsewhere).
struct Coverage {
  io::Image counts;     ///< fitted exposures with a good pixel, per pixel
  io::MaskImage flags;  ///< kMaskNoData | kMaskSaturated
  std::int64_t no_data = 0, saturated = 0;  ///< pixels flagged
};

/// Collective. The coverage of the fitted exposures of `loaded` (held-out ones do not shape the image).
Coverage stack_coverage(const LoadedStack& loaded, mpi::Communicator& comm);

/// Sets hdus[0]'s image to NaN where no exposure has data and appends the COVERAGE and MASK HDUs
/// (with the WCS cards of the primary).
void add_coverage(std::vector<io::OutputHdu>& hdus, const Coverage& coverage);

}  // namespace astroclear::jobs
