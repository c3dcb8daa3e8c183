// Shared test helpers: temporary folders, running the astroclear executable, simulated stacks.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "io/file_tree.hpp"
#include "jobs/commands.hpp"

namespace astroclear::testing {

/// A fresh folder under the system temp dir, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("astroclear-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { io::remove_tree(path_.string()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};

/// Runs a shell command, capturing its output and exit code.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

/// Writes a simulated stack of `exposures` x `size` px into `dir` (stack.toml inside).
inline void simulate_into(const std::string& dir, int exposures, int height, int width, std::uint64_t seed) {
  jobs::SimulateOptions options;
  options.output_dir = dir;
  options.config.exposures = exposures;
  options.config.height = height;
  options.config.width = width;
  options.config.seed = seed;
  jobs::write_simulated_stack(options);
}

}  // namespace astroclear::testing
