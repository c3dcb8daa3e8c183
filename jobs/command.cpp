// The runtime options every distributed subcommand takes.
#include "jobs/command.hpp"

#include "jobs/cli.hpp"

namespace astroclear::jobs {

void add_runtime_options(CLI::App* command, RuntimeOptions& options) {
  add_choice(command, "--device", options.device, "where to compute: auto (a GPU when one is visible), cpu or cuda");
  command->add_option("--threads", options.threads, "CPU threads per rank (default: cores / ranks on the node)");
  add_choice(command, "--comm", options.comm, "all-reduce backend: auto (NCCL on GPUs), mpi or nccl");
  add_choice(command, "--tf32", options.tf32,
             "on a GPU, TF32 math in convolutions and matrix products: default (LibTorch's), on or off");
}

}  // namespace astroclear::jobs
