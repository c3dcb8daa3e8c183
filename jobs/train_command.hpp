// astroclear train: AstroClearNet on a stack, with checkpoints and restart; the latent image as FITS.
#pragma once

#include <string>

#include "jobs/command.hpp"
#include "src/config.hpp"

namespace astroclear::jobs {

/// When and where train writes checkpoints, and what it resumes from (docs/checkpoints.md).
struct CheckpointOptions {
  std::string directory;        ///< default: the output's name with .checkpoints for .fits
  int every = 0;                ///< iterations between checkpoints; 0 = by time and at the end only
  double minutes = 30.0;        ///< wall-clock minutes between checkpoints; 0 = not by time
  int keep = 3;                 ///< checkpoints kept
  std::string resume = "none";  ///< none, auto (latest valid, or start fresh) or a checkpoint file
  int kill_midway_at = -1;      ///< tests: SIGKILL itself halfway through writing this iteration's checkpoint
};

struct TrainOptions {
  std::string manifest;
  std::string output;
  std::string preview;          ///< PNG (coadd | restored); empty = none
  bool overwrite = false;
  bool with_coadd = false;      ///< COADD extension
  bool with_residuals = false;  ///< CHI_nnn extensions
  std::string tiles = "1x1";    ///< the grid of tiles, RxC (Note [tiles])
  bool psf_per_tile = false;    ///< each tile's PSFEx models at its centre (Note [tile PSFs])
  TrainConfig config;
  CheckpointOptions checkpoint;
  RuntimeOptions runtime;
};

/// Adds `train` and its options to `app`.
Command add_train_command(CLI::App& app);

/// Loads this rank's exposures, trains (resuming and checkpointing as asked) and writes the
/// outputs on rank 0. Returns kExitDone, or kExitCheckpointed when a stop signal ended the run.
int run_train(const TrainOptions& options, const mpi::MpiEnvironment& env);

}  // namespace astroclear::jobs
