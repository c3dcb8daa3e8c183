// The process rank of error messages and the thrower behind ASTROCLEAR_CHECK_CALL.
#include "common/check.hpp"

#include <atomic>

namespace astroclear {
namespace {

std::atomic<int> g_process_rank{-1};

/// "mpi/nccl_communicator.cpp" from an absolute __FILE__: the folder and the file name.
std::string source_location(const char* file) {
  const std::string path(file);
  const std::size_t last = path.rfind('/');
  if (last == std::string::npos || last == 0) return path;
  const std::size_t folder = path.rfind('/', last - 1);
  return folder == std::string::npos ? path : path.substr(folder + 1);
}

}  // namespace

int process_rank() noexcept { return g_process_rank.load(std::memory_order_relaxed); }

void set_process_rank(int rank) noexcept { g_process_rank.store(rank, std::memory_order_relaxed); }

namespace detail {

void throw_failed_call(const char* call, const char* file, int line, const std::string& reason) {
  const int rank = process_rank();
  std::string where = source_location(file) + ":" + std::to_string(line);
  if (rank >= 0) where += " on rank " + std::to_string(rank);
  throw Error(std::string(call) + " failed at " + where + ": " + reason, rank);
}

}  // namespace detail
}  // namespace astroclear
