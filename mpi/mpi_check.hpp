// ASTROCLEAR_CHECK_MPI: every MPI call goes through it and throws Error with the call, its line and the rank.
#pragma once

#include <mpi.h>

#include <string>

#include "common/check.hpp"

namespace astroclear::mpi::detail {

/// MPI's text for an error code.
inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

}  // namespace astroclear::mpi::detail

#define ASTROCLEAR_CHECK_MPI(call)                                                                \
  do {                                                                                            \
    const int mpi_code_ = (call);                                                                 \
    ASTROCLEAR_CHECK_CALL(mpi_code_ == MPI_SUCCESS, #call, ::astroclear::mpi::detail::mpi_error_text(mpi_code_)); \
  } while (0)
