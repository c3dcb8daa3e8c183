// astroclear simulate: a simulated HSC-like stack (FITS), its truth and a manifest.
#pragma once

#include <string>

#include "eval/simulator.hpp"
#include "jobs/command.hpp"

namespace astroclear::jobs {

struct SimulateOptions {
  std::string output_dir;
  bool overwrite = false;
  SimulationConfig config;
  double ra_deg = 150.1163, dec_deg = 2.2056;  ///< field centre (COSMOS)
};

/// Adds `simulate` and its options to `app`.
Command add_simulate_command(CLI::App& app);

/// Writes the stack (rank 0) and returns the exit code.
int run_simulate(const SimulateOptions& options, const mpi::MpiEnvironment& env);

/// Simulates a stack and writes exp_NNN.fits, psf_NNN.fits, truth.fits, truth_catalog.csv and,
/// last, stack.toml into options.output_dir (one process). Each file is written whole or not at
/// all; a failure removes the files this call created, and an earlier stack's files that the new
/// one does not replace are removed only once the new one is complete.
void write_simulated_stack(const SimulateOptions& options);

}  // namespace astroclear::jobs
