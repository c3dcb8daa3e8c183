// astroclear inspect: print a checkpoint's header (a file, or a folder's latest valid checkpoint).
#include "jobs/inspect_command.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include "common/error.hpp"
#include "io/checkpoint_store.hpp"
#include "jobs/cli.hpp"

namespace astroclear::jobs {

Command add_inspect_command(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* command =
      app.add_subcommand("inspect", "print a checkpoint's iteration, loss, configuration, inputs and ranks");
  command->add_option("checkpoint", options->path, "checkpoint file, or checkpoint folder (its latest valid one)")
      ->required();
  return {command, [options](const mpi::MpiEnvironment& env) { return env.rank() == 0 ? run_inspect(*options) : 0; }};
}

int run_inspect(const InspectOptions& options) {
  std::string path = options.path;
  io::Checkpoint checkpoint;
  if (std::filesystem::is_directory(path)) {
    std::vector<std::string> skipped;
    const auto found = io::CheckpointStore(path, 1).load_latest(skipped);
    for (const auto& why : skipped) std::cout << "skipped     " << why << "\n";
    if (!found) throw Error(path + ": no usable checkpoint in this folder");
    path = found->path;
    checkpoint = found->checkpoint;
  } else {
    checkpoint = io::read_checkpoint_file(path);
  }
  std::cout << "checkpoint  " << path << "\n" << io::describe_checkpoint(checkpoint) << std::endl;
  return kExitDone;
}

}  // namespace astroclear::jobs
