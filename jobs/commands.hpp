// The astroclear subcommands: options filled by CLI11 (flags and TOML), and their entry points.
#pragma once

#include <string>

#include "mpi/mpi_environment.hpp"
#include "src/config.hpp"
#include "src/simulator.hpp"

namespace astroclear::jobs {

/// Where and how a command runs: device, threads, communicator backend.
struct RuntimeOptions {
  std::string device = "auto";  ///< auto, cpu or cuda
  int threads = 0;               ///< per rank; 0 = the node's cores shared among its ranks
  std::string comm = "auto";     ///< auto, mpi or nccl
};

struct TrainOptions {
  std::string manifest;
  std::string output;
  std::string preview;       ///< PNG (coadd | restored); empty = none
  bool overwrite = false;
  bool with_coadd = false;   ///< COADD extension
  bool with_residuals = false;  ///< CHI_nnn extensions
  TrainConfig config;
  RuntimeOptions runtime;
};

struct CoaddOptions {
  std::string manifest;
  std::string output;
  bool overwrite = false;
  RuntimeOptions runtime;
};

struct SimulateOptions {
  std::string output_dir;
  bool overwrite = false;
  SimulationConfig config;
  double ra_deg = 150.1163, dec_deg = 2.2056;  ///< field centre (COSMOS)
};

/// Each returns the process exit code; errors throw (main turns them into messages and codes).
int run_train(const TrainOptions& options, const mpi::MpiEnvironment& env);
int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env);
int run_simulate(const SimulateOptions& options, const mpi::MpiEnvironment& env);

}  // namespace astroclear::jobs
