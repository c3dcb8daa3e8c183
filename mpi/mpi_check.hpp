// ASTROCLEAR_CHECK_MPI: every MPI call goes through it and throws Error with the call's text.
#pragma once

#include <mpi.h>

#include <string>

#include "mpi/error.hpp"

namespace astroclear::mpi::detail {

inline void check_mpi(int code, const char* call, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
              std::string(text, static_cast<std::size_t>(length)));
}

}  // namespace astroclear::mpi::detail

#define ASTROCLEAR_CHECK_MPI(call) ::astroclear::mpi::detail::check_mpi((call), #call, __FILE__, __LINE__)
