// TrainConfig text form and validation.
#include "src/config.hpp"

#include <sstream>

#include "mpi/error.hpp"

namespace astroclear {

std::string TrainConfig::to_text() const {
  std::ostringstream out;
  out << "kernel_sizes=[";
  for (std::size_t i = 0; i < kernel_sizes.size(); ++i) out << (i ? "," : "") << kernel_sizes[i];
  out << "] huber_delta=" << huber_delta << " learning_rate=" << learning_rate << " iterations=" << iterations
      << " seed=" << seed << " init=" << init << " decoder=" << decoder << " fft_min_psf_size=" << fft_min_psf_size;
  return out.str();
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
  if (log_every < 1) throw Error("--log-every: must be >= 1, got " + std::to_string(log_every));
}

}  // namespace astroclear
