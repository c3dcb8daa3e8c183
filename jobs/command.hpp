// What every astroclear subcommand shares: exit codes, where and how it runs, and how main runs it.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/choices.hpp"
#include "mpi/mpi_environment.hpp"
#include "src/config.hpp"

namespace CLI {
class App;
}

namespace astroclear {

namespace jobs {

/// Exit codes (README "Exit codes"; the Slurm scripts act on them).
inline constexpr int kExitDone = 0;            ///< finished: outputs written
inline constexpr int kExitError = 1;           ///< a real error: do not retry unchanged
inline constexpr int kExitUsage = 2;           ///< bad command line
inline constexpr int kExitAboveTolerance = 3;  ///< compare: the images differ by more than --tolerance
inline constexpr int kExitCheckpointed = 75;   ///< stopped by SIGUSR1/SIGTERM after a checkpoint: resume to finish

/// Where a rank computes.
enum class Device {
  kAuto,  ///< CUDA when LibTorch has it and a GPU is visible, else the CPU
  kCpu,
  kCuda,  ///< an error when no GPU is visible
};

/// TF32 in cuDNN convolutions and cuBLAS matrix products (GPUs only).
enum class Tf32 { kDefault, kOn, kOff };

/// Where and how a command runs: device, threads, communicator backend.
struct RuntimeOptions {
  Device device = Device::kAuto;
  int threads = 0;  ///< per rank; 0 = the node's cores shared among its ranks
  mpi::Backend comm = mpi::Backend::kAuto;
  Tf32 tf32 = Tf32::kDefault;  ///< kDefault leaves LibTorch's choice
};

/// Adds --device, --threads, --comm and --tf32 to a subcommand.
void add_runtime_options(CLI::App* command, RuntimeOptions& options);

/// Adds --validation-exposures, --validate-every, --stop and --patience (Notes [held-out
/// exposures], [early stopping]) to a subcommand.
void add_validation_options(CLI::App* command, ValidationConfig& options);

/// A subcommand registered with CLI11, and how to run it once its options are parsed.
struct Command {
  CLI::App* app = nullptr;
  /// Returns the exit code; errors throw (main turns them into messages and codes).
  std::function<int(const mpi::MpiEnvironment&)> run;
};

}  // namespace jobs

template <>
inline const std::vector<std::pair<std::string, jobs::Device>>& choices<jobs::Device>() {
  static const std::vector<std::pair<std::string, jobs::Device>> names{
      {"auto", jobs::Device::kAuto}, {"cpu", jobs::Device::kCpu}, {"cuda", jobs::Device::kCuda}};
  return names;
}
template <>
inline const std::vector<std::pair<std::string, jobs::Tf32>>& choices<jobs::Tf32>() {
  static const std::vector<std::pair<std::string, jobs::Tf32>> names{
      {"default", jobs::Tf32::kDefault}, {"on", jobs::Tf32::kOn}, {"off", jobs::Tf32::kOff}};
  return names;
}
template <>
inline const std::vector<std::pair<std::string, mpi::Backend>>& choices<mpi::Backend>() {
  static const std::vector<std::pair<std::string, mpi::Backend>> names{
      {"auto", mpi::Backend::kAuto}, {"mpi", mpi::Backend::kMpi}, {"nccl", mpi::Backend::kNccl}};
  return names;
}

}  // namespace astroclear
