// astroclear inspect: print a checkpoint's header (a file, or a folder's latest valid checkpoint).
#include <filesystem>
#include <iostream>

#include "io/checkpoint_store.hpp"
#include "jobs/commands.hpp"
#include "mpi/error.hpp"

namespace astroclear::jobs {

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
