// The MPI environment of the MPI test binary, and helpers that keep ranks in step.
#pragma once

#include <memory>
#include <string>

#include "mpi/communicator.hpp"
#include "mpi/mpi_environment.hpp"

namespace astroclear::testing {

extern const mpi::MpiEnvironment* g_mpi_env;

/// True on every rank iff `ok` on every rank: assert on this, never on a local predicate alone.
inline bool on_all_ranks(mpi::Communicator& comm, bool ok) {
  int bad = ok ? 0 : 1;
  comm.all_reduce_max(&bad, 1);
  return bad == 0;
}

}  // namespace astroclear::testing
