// Checked C calls (MPI, CUDA, NCCL): a failure throws Error naming the call, its source line and the rank.
#pragma once

#include <string>

#include "common/error.hpp"

namespace astroclear {

/// This process's MPI rank, for error messages: -1 until MpiEnvironment has started MPI.
int process_rank() noexcept;
/// Called once by MpiEnvironment, after MPI_Comm_rank.
void set_process_rank(int rank) noexcept;

namespace detail {
/// Throws Error("CALL failed at FOLDER/FILE:LINE on rank R: REASON"), with Error::rank() = R.
[[noreturn]] void throw_failed_call(const char* call, const char* file, int line, const std::string& reason);
}  // namespace detail

}  // namespace astroclear

/// Throws Error when `ok` is false: the message gives `call` (the call's source text), the source
/// file and line, this process's rank, and `reason` (evaluated only on failure). Each C library
/// wraps it in a macro of its own (ASTROCLEAR_CHECK_MPI, ASTROCLEAR_CHECK_CUDA, ASTROCLEAR_CHECK_NCCL).
#define ASTROCLEAR_CHECK_CALL(ok, call, reason)                                      \
  do {                                                                               \
    if (!(ok)) ::astroclear::detail::throw_failed_call((call), __FILE__, __LINE__, (reason)); \
  } while (0)
