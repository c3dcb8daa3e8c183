// astroclear compare: the relative L2 difference of two FITS images.
#pragma once

#include <string>

#include "jobs/command.hpp"

namespace astroclear::jobs {

struct CompareOptions {
  std::string first, second;
  std::string hdu;          ///< EXTNAME; empty = the first image HDU
  double tolerance = -1.0;  ///< exit 3 when the relative L2 difference exceeds it (>= 0)
};

/// Adds `compare` and its options to `app`; it runs on rank 0 only.
Command add_compare_command(CLI::App& app);

/// Prints the relative L2 difference of two FITS images; kExitAboveTolerance when above the tolerance.
int run_compare(const CompareOptions& options);

}  // namespace astroclear::jobs
