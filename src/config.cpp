// TrainConfig text form and validation.
#include "src/config.hpp"

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

}  // namespace

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
          {"precision", name_of(precision), O::kMayChange, name_of(Precision::kFloat32)}};
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
  if (iterations < 0) throw Error("--iterations: must be >= 0, got " + std::to_string(iterations));
  if (log_every < 1) throw Error("--log-every: must be >= 1, got " + std::to_string(log_every));
}

}  // namespace astroclear
