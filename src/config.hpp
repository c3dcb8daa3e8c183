// TrainConfig: every knob of the method, with the defaults that work on normalised inputs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/choices.hpp"

namespace astroclear {

/// How the encoder's parameters start.
enum class Init {
  kIdentity,  ///< the latent image starts as the exposures' inverse-variance weighted mean
  kRandom,    ///< LibTorch's default initialisation
};

/// Which PSF convolution the decoder uses.
enum class DecoderChoice {
  kAuto,    ///< the FFT for PSFs of at least fft_min_psf_size pixels a side, else direct
  kFft,     ///< linear convolution through the FFT, PSF spectra made once
  kDirect,  ///< grouped direct convolution
};

/// The type of the encoder's convolutions and activations (Note [bf16 encoder]).
enum class Precision { kFloat32, kBf16 };

template <>
inline const std::vector<std::pair<std::string, Init>>& choices<Init>() {
  static const std::vector<std::pair<std::string, Init>> names{{"identity", Init::kIdentity}, {"random", Init::kRandom}};
  return names;
}
template <>
inline const std::vector<std::pair<std::string, DecoderChoice>>& choices<DecoderChoice>() {
  static const std::vector<std::pair<std::string, DecoderChoice>> names{
      {"auto", DecoderChoice::kAuto}, {"fft", DecoderChoice::kFft}, {"direct", DecoderChoice::kDirect}};
  return names;
}
template <>
inline const std::vector<std::pair<std::string, Precision>>& choices<Precision>() {
  static const std::vector<std::pair<std::string, Precision>> names{{"float32", Precision::kFloat32},
                                                                    {"bf16", Precision::kBf16}};
  return names;
}

/// What a run's output is when it validates on held-out exposures.
enum class StopRule {
  kBest,  ///< the latent image of the lowest held-out loss; stop after `patience` without a lower one
  kLast,  ///< the last latent image; run to the iteration limit
};

template <>
inline const std::vector<std::pair<std::string, StopRule>>& choices<StopRule>() {
  static const std::vector<std::pair<std::string, StopRule>> names{{"best", StopRule::kBest},
                                                                   {"last", StopRule::kLast}};
  return names;
}

/// Validation on held-out exposures (Notes [held-out exposures], [early stopping]).
struct ValidationConfig {
  static constexpr int kAutomatic = -1;
  int exposures = kAutomatic;  ///< how many to hold out; kAutomatic: see held_out_count(); 0: none
  int every = 10;              ///< score the latent image every N iterations
  StopRule stop = StopRule::kBest;
  int patience = 200;          ///< iterations without a lower held-out loss before a kBest run ends

  /// Throws Error naming the option when a setting is out of range for a stack of `exposures_in_stack`.
  void validate(int exposures_in_stack) const;
  /// How many exposures are held out of a stack of n: `exposures`, or for kAutomatic about a tenth
  /// (at least 1 from 3 exposures up, none below).
  int held_out_count(int exposures_in_stack) const;
};

/// Whether a resumed run may use another value of a setting than the checkpoint's run did.
enum class OnResume {
  kMustMatch,  ///< a different value is refused: it changes what the parameters mean
  kMayChange,  ///< allowed and logged: the parameters and Adam's moments carry over as they are
};

/// One resolved setting, as written to logs, FITS headers and checkpoints.
struct Setting {
  std::string key;    ///< e.g. "learning_rate"
  std::string value;  ///< exact text: equal text is equal value
  OnResume on_resume = OnResume::kMustMatch;
  /// The value a checkpoint that has no such key was written with (the setting did not exist
  /// yet), or empty when every checkpoint has it.
  std::string before_it_existed;
};

/// The largest k / 2 of `kernel_sizes` (0 for none): how far the encoder's widest branch reads
/// beyond a pixel, and so the least halo a tile needs (Note [tiles]).
int kernel_halo(const std::vector<int>& kernel_sizes);

/// Refuses a --target-fwhm outside [0, 50] pixels (NaN included) by name (Note [target resolution]).
void check_target_fwhm(double target_fwhm);

/// The method's configuration (docs/design.md, "The model"). Filled by CLI11 from flags and a
/// TOML file, printed at start, stored in every output header and checkpoint.
struct TrainConfig {
  std::vector<int> kernel_sizes{3, 5, 7};  ///< one depthwise branch per size (odd)
  double huber_delta = 1.0;                ///< in units of the pixel's sigma
  double learning_rate = 1e-2;             ///< Adam
  int iterations = 2000;  ///< the most, with StopRule::kBest (docs/science.md, "Held-out stopping")
  std::uint64_t seed = 0;
  Init init = Init::kIdentity;
  DecoderChoice decoder = DecoderChoice::kAuto;
  int fft_min_psf_size = 11;  ///< auto: FFT when the largest PSF side is at least this
  Precision precision = Precision::kFloat32;
  int log_every = 50;
  ValidationConfig validation;  ///< held-out exposures and when to stop (Note [early stopping])
  double target_fwhm = 0;       ///< pixels; > 0: the latent image at that resolution (Note [target resolution])
  std::string warm_start;       ///< a latent image (FITS) training starts at (Note [warm start]); "" = none
  std::uint64_t warm_start_checksum = 0;  ///< of its pixels, as read (resolved by the command)
  /// The grid of tiles whose centres the PSFEx models were evaluated at (Note [tile PSFs], e.g.
  /// "2x2"), or "none": each exposure's centre. Part of the model: a resumed run must match it.
  std::string psf_tiles = "none";

  /// The resolved settings in a fixed order, each with its resume rule. Doubles are written in
  /// their shortest exact form, so text equality is value equality.
  std::vector<Setting> settings() const;
  /// "key=value ..." on one line.
  std::string to_text() const;
  /// Throws Error naming the option and value when a setting is out of range.
  void validate() const;
  /// Throws Error when a branch is too large for an image of height x width (before any work).
  void check_fits(std::int64_t height, std::int64_t width) const;
};

}  // namespace astroclear
