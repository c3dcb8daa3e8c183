// The runtime options every distributed subcommand takes.
#include "jobs/command.hpp"

#include <algorithm>
#include <thread>

#include "jobs/cli.hpp"

namespace astroclear::jobs {

void add_runtime_options(CLI::App* command, RuntimeOptions& options) {
  add_choice(command, "--device", options.device, "where to compute: auto (a GPU when one is visible), cpu or cuda");
  // More threads than the node has cores only slows a rank down; 0 shares the cores among the ranks.
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  add_number(command, "--threads", options.threads, "CPU threads per rank (0: the node's cores / its ranks)",
             Range{0, cores});
  add_choice(command, "--comm", options.comm, "all-reduce backend: auto (NCCL on GPUs), mpi or nccl");
  add_choice(command, "--tf32", options.tf32,
             "on a GPU, TF32 math in convolutions and matrix products: default (LibTorch's), on or off");
}

void add_validation_options(CLI::App* command, ValidationConfig& options) {
  add_number(command, "--validation-exposures", options.exposures,
             "exposures held out of the fit to score it (spread over the seeing); default: a tenth, "
             "at least 1 from 3 exposures up; 0: none",
             Range{0, 1e6})
      ->default_str("auto");
  add_number(command, "--validate-every", options.every,
             "score the latent image on the held-out exposures every N iterations", Range{1, 1e9});
  add_choice(command, "--stop", options.stop,
             "best: keep the latent image of the lowest held-out loss and stop after --patience without a "
             "lower one; last: run every iteration and keep the last");
  add_number(command, "--patience", options.patience,
             "with --stop best: iterations without a lower held-out loss before stopping", Range{1, 1e9});
}

}  // namespace astroclear::jobs
