// Checkpoints of a training run: gather the sharded state onto rank 0, check and restore on any P.
#pragma once

#include <string>

#include "io/checkpoint_file.hpp"
#include "jobs/stack_loader.hpp"
#include "mpi/communicator.hpp"
#include "src/config.hpp"
#include "src/trainer.hpp"

namespace astroclear::jobs {

// Note [checkpoint gather]: the trained state is tiny (33 exposures x 3 branches of at most 7 x 7
// weights: ~10^4 floats with the Adam moments), so rank 0 gathers it over point-to-point messages
// and writes one serial HDF5 file. Parallel HDF5 would buy nothing at this size and would tie the
// build to an MPI-enabled HDF5. The latent image, the one large dataset, is already on every rank.

/// Collective. The full checkpoint on rank 0 (parameters and Adam moments of every exposure in
/// global order, `latent` = trainer.latent(), inputs and configuration); on other ranks an empty one.
io::Checkpoint gather_checkpoint(Trainer& trainer, const torch::Tensor& latent, const LoadedStack& loaded,
                                 const TrainConfig& config, const std::string& software_version,
                                 mpi::Communicator& comm);

/// Throws Error when `checkpoint` (read from `path`) is of other inputs (exposure count, shape or
/// pixel checksums differ) or of an incompatible configuration (a setting whose Setting::on_resume
/// is kMustMatch differs). Returns notes for the log on what differs but is allowed: file names
/// (moved inputs), and the settings that may change on resume.
std::vector<std::string> check_compatible(const io::Checkpoint& checkpoint, const std::string& path,
                                          const LoadedStack& loaded, const TrainConfig& config);

/// Gives this rank's trainer its exposures' rows of `checkpoint` (written by any number of ranks).
void restore_checkpoint(const io::Checkpoint& checkpoint, Trainer& trainer, const LoadedStack& loaded);

}  // namespace astroclear::jobs
