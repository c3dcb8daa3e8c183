// astroclear validate: how well any latent image predicts exposures the user names (no truth needed).
#pragma once

#include <string>
#include <vector>

#include "jobs/command.hpp"

namespace astroclear::jobs {

struct ValidateOptions {
  std::vector<std::string> results;  ///< the latent images (FITS), each scored on the same exposures
  std::string hdu;              ///< EXTNAME; empty = the first image HDU
  std::string manifest;         ///< the stack
  std::vector<int> exposures;   ///< manifest indices of the exposures to predict
  double huber_delta = 1.0;     ///< of the loss, in sigmas (train's default)
  std::string json;             ///< also write one JSON object per exposure and one for all
  bool overwrite = false;
  RuntimeOptions runtime;
};

/// Adds `validate` and its options to `app`.
Command add_validate_command(CLI::App& app);

/// Prints, for each latent image of `options.results` and each named exposure, the held-out loss
/// per good pixel (Note [held-out exposures]) and chi statistics, and the loss over all of them;
/// with several images, which of them predicts the exposures best.
int run_validate(const ValidateOptions& options, const mpi::MpiEnvironment& env);

}  // namespace astroclear::jobs
