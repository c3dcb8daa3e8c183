// TrainConfig text form and validation.
#include "src/config.hpp"

#include <iomanip>
#include <sstream>

#include "mpi/error.hpp"

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

std::vector<std::pair<std::string, std::string>> TrainConfig::settings() const {
  std::string sizes;
  for (std::size_t i = 0; i < kernel_sizes.size(); ++i) sizes += (i ? "," : "") + std::to_string(kernel_sizes[i]);
  return {{"kernel_sizes", "[" + sizes + "]"},
          {"huber_delta", exact_text(huber_delta)},
          {"learning_rate", exact_text(learning_rate)},
          {"iterations", std::to_string(iterations)},
          {"seed", std::to_string(seed)},
          {"init", init},
          {"decoder", decoder},
          {"fft_min_psf_size", std::to_string(fft_min_psf_size)},
          {"precision", precision}};
}

std::string TrainConfig::to_text() const {
  std::string text;
  for (const auto& [key, value] : settings()) text += (text.empty() ? "" : " ") + key + "=" + value;
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
  if (init != "identity" && init != "random") throw Error("--init: '" + init + "' is not identity or random");
  if (decoder != "auto" && decoder != "fft" && decoder != "direct") {
    throw Error("--decoder: '" + decoder + "' is not auto, fft or direct");
  }
  if (precision != "float32" && precision != "bf16") {
    throw Error("--precision: '" + precision + "' is not float32 or bf16");
  }
  if (log_every < 1) throw Error("--log-every: must be >= 1, got " + std::to_string(log_every));
}

}  // namespace astroclear
