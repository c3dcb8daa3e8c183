// astroclear inspect: a checkpoint's iteration, loss, configuration, inputs and ranks.
#pragma once

#include <string>

#include "jobs/command.hpp"

namespace astroclear::jobs {

struct InspectOptions {
  std::string path;  ///< a checkpoint file, or a checkpoint folder (its latest valid checkpoint)
};

/// Adds `inspect` and its options to `app`; it runs on rank 0 only.
Command add_inspect_command(CLI::App& app);

/// Prints a checkpoint's header: iteration, loss, configuration, inputs, ranks.
int run_inspect(const InspectOptions& options);

}  // namespace astroclear::jobs
