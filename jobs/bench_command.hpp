// astroclear bench: training iterations timed on simulated stacks, as a table and JSON lines.
#pragma once

#include <string>
#include <vector>

#include "jobs/command.hpp"
#include "src/config.hpp"

namespace astroclear {

namespace jobs {

/// Whose kernels run on CPUs (set_fast_cpu_kernels).
enum class CpuKernels {
  kAstroclear,  ///< astroclear's own
  kLibtorch,    ///< LibTorch's operations, as on GPUs
};

struct BenchOptions {
  std::vector<int> sizes{256};
  int exposures = 33;
  std::vector<DecoderChoice> decoders{DecoderChoice::kFft};
  int warmup = 3;
  int iterations = 10;
  std::string json;               ///< also write one JSON object per line here
  bool overwrite = false;         ///< replace an existing `json` file
  std::string stack;              ///< time on this manifest's stack instead of simulated ones; "" = simulate
  std::string work_dir = "/tmp";  ///< where the simulated stacks are written (removed after)
  std::string reference;          ///< reference_acn.py to run on the same stacks (rank 0, FFT decoder); "" = none
  std::string python = "/usr/bin/python3";
  bool scaling = false;          ///< on P > 1 ranks, also time rank 0 alone: speed-up and efficiency
  int solution_iterations = 0;   ///< > 0: time to solution over a fresh run this long (and the reference's)
  CpuKernels cpu_kernels = CpuKernels::kAstroclear;
  Precision precision = Precision::kFloat32;
  std::string tiles = "1x1";     ///< the grid of tiles, RxC (Note [tiles])
  RuntimeOptions runtime;
};

/// Adds `bench` and its options to `app`.
Command add_bench_command(CLI::App& app);

/// Times training iterations on simulated stacks and prints a table (and JSON lines).
int run_bench(const BenchOptions& options, const mpi::MpiEnvironment& env);

}  // namespace jobs

template <>
inline const std::vector<std::pair<std::string, jobs::CpuKernels>>& choices<jobs::CpuKernels>() {
  static const std::vector<std::pair<std::string, jobs::CpuKernels>> names{
      {"astroclear", jobs::CpuKernels::kAstroclear}, {"libtorch", jobs::CpuKernels::kLibtorch}};
  return names;
}

}  // namespace astroclear
