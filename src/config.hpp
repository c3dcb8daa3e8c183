// TrainConfig: every knob of the method, with the defaults that work on normalised inputs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace astroclear {

/// The method's configuration (DESIGN.md section 1). Filled by CLI11 from flags and a TOML file,
/// printed at start, stored in every output header.
struct TrainConfig {
  std::vector<int> kernel_sizes{3, 5, 7};  ///< one depthwise branch per size (odd)
  double huber_delta = 1.0;                ///< in units of the pixel's sigma
  double learning_rate = 1e-2;             ///< Adam
  int iterations = 300;
  std::uint64_t seed = 0;
  std::string init = "identity";  ///< "identity": the latent starts as the weighted mean; "random": PyTorch defaults
  std::string decoder = "auto";   ///< "auto", "fft" or "direct"
  int fft_min_psf_size = 11;      ///< auto: FFT when the largest PSF side is at least this
  std::string precision = "float32";  ///< "float32" or "bf16": the encoder's convolutions (Note [bf16 encoder])
  int log_every = 50;

  /// The resolved settings as (key, value text), in a fixed order: logs, headers, checkpoints.
  /// Doubles are written in their shortest exact form, so text equality is value equality.
  std::vector<std::pair<std::string, std::string>> settings() const;
  /// "key=value ..." on one line.
  std::string to_text() const;
  /// Throws Error naming the option and value when a setting is out of range.
  void validate() const;
};

}  // namespace astroclear
