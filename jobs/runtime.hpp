// Per-rank runtime: CPU threads, the CUDA device of the rank, and the communicator.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "jobs/command.hpp"
#include "mpi/communicator.hpp"
#include "mpi/mpi_environment.hpp"

namespace astroclear::jobs {

struct Runtime {
  torch::Device device{torch::kCPU};
  int threads = 1;
  std::unique_ptr<mpi::Communicator> comm;
};

/// Sets LibTorch's thread count, binds the rank to GPU (local rank modulo visible devices) when
/// asked or available, and builds the communicator (NCCL on GPUs when built, else MPI).
Runtime make_runtime(const RuntimeOptions& options, const mpi::MpiEnvironment& env);

}  // namespace astroclear::jobs
