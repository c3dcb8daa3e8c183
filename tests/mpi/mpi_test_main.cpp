// GoogleTest main for the MPI suite: one MpiEnvironment, output from rank 0 only.
#include <gtest/gtest.h>

#include "mpi/mpi_environment.hpp"
#include "tests/mpi/mpi_test_env.hpp"

namespace astroclear::testing {
const mpi::MpiEnvironment* g_mpi_env = nullptr;
}

int main(int argc, char** argv) {
  astroclear::mpi::MpiEnvironment env(argc, argv);
  astroclear::testing::g_mpi_env = &env;
  ::testing::InitGoogleTest(&argc, argv);
  if (env.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  // Every rank's verdict counts: the suite fails if any rank failed.
  auto comm = env.make_communicator(astroclear::mpi::Backend::kMpi, -1);
  int any = failed != 0 ? 1 : 0;
  comm->all_reduce_max(&any, 1);
  return any;
}
