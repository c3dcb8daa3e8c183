// The MPI environment of the MPI test binary, and helpers that keep ranks in step.
#pragma once

#include <memory>
#include <string>

#include "mpi/communicator.hpp"
#include "mpi/mpi_environment.hpp"
#include "tests/test_support.hpp"

namespace astroclear::testing {

extern const mpi::MpiEnvironment* g_mpi_env;

/// True on every rank iff `ok` on every rank: assert on this, never on a local predicate alone.
inline bool on_all_ranks(mpi::Communicator& comm, bool ok) {
  int bad = ok ? 0 : 1;
  comm.all_reduce_max(&bad, 1);
  return bad == 0;
}

/// Collective: rank 0 simulates a stack of `exposures` of height x width into a temporary folder
/// that `holder` keeps (rank 0 only); every rank gets the path of its manifest.
inline std::string simulated_manifest(mpi::Communicator& comm, std::unique_ptr<TempDir>& holder, int exposures,
                                      int height, int width, std::uint64_t seed) {
  std::string dir;
  if (comm.rank() == 0) {
    holder = std::make_unique<TempDir>();
    dir = holder->path().string();
    simulate_into(dir, exposures, height, width, seed);
  }
  return comm.broadcast_string(dir, 0) + "/stack.toml";
}

}  // namespace astroclear::testing
