// TrainConfig text form and validation.
#include "src/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "common/error.hpp"

namespace astroclear {

namespace {

/// The shortest decimal text that reads back as exactly `value`.
std::string exact_text(double value) {
  for (int digits = 6; digits <= 17; ++digits) {
    std::ostringstream out;
    out << std::setprecision(digits) << value;
    if (std::stod(out.str()) == value) return out.str();
  }
  return std::to_string(value);
}

/// 16 hexadecimal digits.
std::string checksum_hex(std::uint64_t value) {
  char text[20];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

void check_target_fwhm(double target_fwhm) {
  if (!(target_fwhm >= 0 && target_fwhm <= 50)) {
    throw Error("--target-fwhm: must be in [0, 50] pixels (0: no target, a deconvolved image), got " +
                std::to_string(target_fwhm));
  }
}

std::vector<Setting> TrainConfig::settings() const {
  std::string sizes;
  for (std::size_t i = 0; i < kernel_sizes.size(); ++i) sizes += (i ? "," : "") + std::to_string(kernel_sizes[i]);
  using O = OnResume;
  // What may change on resume: how long to train, and how the same model is computed (the
  // decoder's convolution; the encoder's precision, since parameters and Adam's moments are
  // float32 in either). Everything else changes what the parameters mean.
  return {{"kernel_sizes", "[" + sizes + "]", O::kMustMatch, ""},
          {"huber_delta", exact_text(huber_delta), O::kMustMatch, ""},
          {"learning_rate", exact_text(learning_rate), O::kMustMatch, ""},
          {"iterations", std::to_string(iterations), O::kMayChange, ""},
          {"seed", std::to_string(seed), O::kMustMatch, ""},
          {"init", name_of(init), O::kMustMatch, ""},
          {"decoder", name_of(decoder), O::kMayChange, ""},
          {"fft_min_psf_size", std::to_string(fft_min_psf_size), O::kMayChange, ""},
          {"precision", name_of(precision), O::kMayChange, name_of(Precision::kFloat32)},
          // Which exposures are held out is checked with the inputs (check_compatible); how
          // often they are scored and when to stop may change.
          {"validate_every", std::to_string(validation.every), O::kMayChange, "none"},
          {"stop", name_of(validation.stop), O::kMayChange, "none"},
          {"patience", std::to_string(validation.patience), O::kMayChange, "none"},
          {"target_fwhm", exact_text(target_fwhm), O::kMustMatch, "0"},
          {"warm_start", warm_start.empty() ? std::string("none") : checksum_hex(warm_start_checksum), O::kMustMatch,
           "none"},
          {"psf_tiles", psf_tiles, O::kMustMatch, "none"}};
}

std::string TrainConfig::to_text() const {
  std::string text;
  for (const Setting& s : settings()) text += (text.empty() ? "" : " ") + s.key + "=" + s.value;
  return text;
}

void TrainConfig::validate() const {
  if (kernel_sizes.empty()) throw Error("--kernel-sizes: at least one branch is needed");
  for (int k : kernel_sizes) {
    if (k < 1 || k % 2 == 0) throw Error("--kernel-sizes: " + std::to_string(k) + " is not a positive odd size");
  }
  if (!(huber_delta > 0)) throw Error("--huber-delta: must be > 0, got " + std::to_string(huber_delta));
  if (!(learning_rate > 0)) throw Error("--learning-rate: must be > 0, got " + std::to_string(learning_rate));
  if (iterations < 1) throw Error("--iterations: must be >= 1, got " + std::to_string(iterations));
  if (log_every < 1) throw Error("--log-every: must be >= 1, got " + std::to_string(log_every));
  check_target_fwhm(target_fwhm);
}

int kernel_halo(const std::vector<int>& kernel_sizes) {
  int halo = 0;
  for (int k : kernel_sizes) halo = std::max(halo, k / 2);
  return halo;
}

void TrainConfig::check_fits(std::int64_t height, std::int64_t width) const {
  const std::int64_t side = std::min(height, width);
  for (int k : kernel_sizes) {
    // Reflect padding by k / 2 needs more than k / 2 pixels on each side.
    if (k / 2 >= side) {
      throw Error("--kernel-sizes: a branch of " + std::to_string(k) + " px needs an image of at least " +
                  std::to_string(k / 2 + 1) + " px a side, but the stack is " + std::to_string(height) + " x " +
                  std::to_string(width) + " px");
    }
  }
}

void ValidationConfig::validate(int exposures_in_stack) const {
  if (exposures != kAutomatic && exposures < 0) {
    throw Error("--validation-exposures: must be >= 0, got " + std::to_string(exposures));
  }
  if (exposures != kAutomatic && exposures > exposures_in_stack - 1) {
    throw Error("--validation-exposures: " + std::to_string(exposures) + " held out of a stack of " +
                std::to_string(exposures_in_stack) + " exposures would leave " +
                std::to_string(exposures_in_stack - exposures) +
                " to fit; at most " + std::to_string(exposures_in_stack - 1) + " can be held out");
  }
  if (every < 1) throw Error("--validate-every: must be >= 1, got " + std::to_string(every));
  if (patience < 1) throw Error("--patience: must be >= 1, got " + std::to_string(patience));
}

int ValidationConfig::held_out_count(int exposures_in_stack) const {
  if (exposures != kAutomatic) return exposures;
  if (exposures_in_stack < 3) return 0;
  return std::max(1, static_cast<int>(std::lround(0.1 * exposures_in_stack)));
}

}  // namespace astroclear
