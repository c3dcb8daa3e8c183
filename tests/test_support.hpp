// Shared test helpers: temporary folders, running the astroclear executable, simulated stacks, errors.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "common/error.hpp"
#include "io/file_tree.hpp"
#include "io/fits_file.hpp"
#include "jobs/simulate_command.hpp"

namespace astroclear::testing {

/// `call` must throw an Error whose message holds `text`; a failure shows the message, or that
/// nothing was thrown.
inline void expect_error(const std::function<void()>& call, const std::string& text) {
  std::string message = "(no error)";
  try {
    call();
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(text), std::string::npos) << message;
}

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

/// The planes of an MEF exposure as `simulate` writes it, with the MASK header's cards.
struct MefPlanes {
  io::Image image, variance;
  io::MaskImage mask;
  std::vector<io::HeaderCard> mask_cards;
};

inline MefPlanes read_planes(const std::string& path) {
  io::FitsFile f = io::FitsFile::open(path);
  MefPlanes p;
  f.move_to("IMAGE");
  p.image = f.read_image();
  f.move_to("MASK");
  p.mask = f.read_mask();
  p.mask_cards = f.read_cards();
  f.move_to("VARIANCE");
  p.variance = f.read_image();
  return p;
}

/// Writes a MASK HDU with the mask-plane names (MP_* cards) of `from`.
inline void write_mask_with_plane_names(io::FitsFile& f, const MefPlanes& from) {
  f.write_mask(from.mask, "MASK");
  for (const auto& c : from.mask_cards) {
    if (c.key.rfind("MP_", 0) == 0) f.write_card(c);
  }
}

}  // namespace astroclear::testing
