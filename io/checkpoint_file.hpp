// The checkpoint format (HDF5): what a run needs to continue exactly, on any number of ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace astroclear::io {

// Note [checkpoint layout]: docs/design.md, "Checkpoints"; the layout is documented for h5py users in docs/checkpoints.md.
//   /                 attrs format, format_version, iteration, ranks, created_utc, astroclear_version,
//                     checksum (over every attribute and every dataset's checksum)
//   /config           attrs: the resolved configuration, one string per setting
//   /inputs           attrs manifest, height, width, flux_unit
//   /inputs/files     (n) strings: each exposure's file, in manifest order
//   /inputs/psfs      (n) strings
//   /inputs/checksums (n) uint64: each exposure's input fingerprint (Note [input fingerprint]; in
//                     versions 1 and 2 a checksum of its whole calibrated planes and PSF)
//   /loss_history     (iteration) float64
//   /latent           (H, W) float32, calibrated flux: for inspection, not needed to resume
//   /parameters/NAME  float32, axis 0 = exposure (attr sharded = 1) or replicated (sharded = 0);
//                     attrs adam_step
//   /adam/exp_avg/NAME, /adam/exp_avg_sq/NAME: Adam's moments, same shapes
//   /inputs/held_out       (k) uint64: manifest indices of the held-out exposures (version 2)
//   /validation/iterations (m) uint64, /validation/losses (m) float64: the held-out record
//   /validation/best_latent (H, W) float32, calibrated flux: the kept latent image, or (0) (version 2)
// Every dataset carries attr checksum (Note [checksum]) of its values. The sharded axis of
// /parameters runs over the fitted exposures: the inputs less the held-out ones, in manifest order.

inline constexpr const char* kCheckpointFormat = "astroclear-checkpoint";
/// Written: 3 (input fingerprints that do not depend on the tile grid). Read: 1-3 (a version 1
/// file held nothing out; versions 1 and 2 hold checksums of whole planes as inputs).
inline constexpr std::int64_t kCheckpointVersion = 3;

/// A row-major float array.
struct FloatArray {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

/// One trained tensor over all fitted exposures, with its Adam state.
struct CheckpointTensor {
  std::string name;
  bool sharded = true;  ///< axis 0 = fitted exposure, in manifest order; false = replicated on every rank
  FloatArray value, exp_avg, exp_avg_sq;
  std::int64_t adam_step = 0;
};

/// One input exposure as the writing run read it.
struct CheckpointInput {
  std::string file;
  std::string psf;
  std::uint64_t checksum = 0;
};

/// Everything in a checkpoint file.
struct Checkpoint {
  std::int64_t format_version = kCheckpointVersion;  ///< of the file read; written: always the current
  std::int64_t iteration = 0;
  std::int64_t ranks = 0;  ///< ranks of the run that wrote it
  std::string created_utc;
  std::string software_version;
  std::vector<std::pair<std::string, std::string>> config;  ///< resolved settings, in order
  std::vector<double> loss_history;
  std::string manifest;
  std::int64_t height = 0, width = 0;
  double flux_unit = 1.0;
  std::vector<CheckpointInput> inputs;
  std::vector<CheckpointTensor> tensors;
  FloatArray latent;  ///< empty when read without it
  std::vector<std::uint64_t> held_out;  ///< manifest indices of the held-out exposures, ascending
  /// The held-out record (Note [early stopping]): the iterations scored, their held-out losses,
  /// and the latent image kept (empty when none is kept).
  struct Validation {
    std::vector<std::uint64_t> iterations;
    std::vector<double> losses;
    FloatArray best_latent;
  } validation;

  /// The value of a config setting, or "" when it is not there.
  std::string setting(const std::string& key) const;
};

/// Writes `checkpoint` to a new file at `path`. `midway` (tests only) runs when half of the file is
/// on disk, to stop a process in the middle of a write.
void write_checkpoint_file(const std::string& path, const Checkpoint& checkpoint,
                           const std::function<void()>& midway = {});

/// Reads a checkpoint and verifies it: format and version, every dataset's checksum, the header
/// checksum, and the shapes. Throws Error naming the file and what is wrong ("truncated or not
/// HDF5", "dataset /parameters/x: checksum ... does not match", ...). /latent is verified too, and
/// kept in the result only with `with_latent`.
Checkpoint read_checkpoint_file(const std::string& path, bool with_latent = false);

/// The header of a checkpoint as `astroclear inspect` prints it.
std::string describe_checkpoint(const Checkpoint& checkpoint);

}  // namespace astroclear::io
