// MpiEnvironment: MPI_Init_thread/MPI_Finalize, node-local ranks, abort and communicator factory.
#include "mpi/mpi_environment.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "mpi/mpi_check.hpp"
#include "mpi/mpi_communicator.hpp"
#ifdef ASTROCLEAR_WITH_NCCL
#include "mpi/nccl_communicator.hpp"
#endif

namespace astroclear::mpi {

MpiEnvironment::MpiEnvironment(int& argc, char**& argv) {
  int provided = 0;
  ASTROCLEAR_CHECK_MPI(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
  ASTROCLEAR_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  set_process_rank(rank_);
  ASTROCLEAR_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  MPI_Comm node = MPI_COMM_NULL;
  ASTROCLEAR_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  ASTROCLEAR_CHECK_MPI(MPI_Comm_rank(node, &local_rank_));
  ASTROCLEAR_CHECK_MPI(MPI_Comm_size(node, &local_size_));
  ASTROCLEAR_CHECK_MPI(MPI_Comm_free(&node));
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && MPI_Finalize() != MPI_SUCCESS) std::fprintf(stderr, "astroclear: MPI_Finalize failed\n");
}

void MpiEnvironment::abort(int exit_code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest.
}

bool nccl_available() {
#ifdef ASTROCLEAR_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> MpiEnvironment::make_communicator(Backend backend, int cuda_device) const {
  if (backend == Backend::kAuto) backend = (cuda_device >= 0 && nccl_available()) ? Backend::kNccl : Backend::kMpi;
  if (backend == Backend::kNccl) {
#ifdef ASTROCLEAR_WITH_NCCL
    if (cuda_device < 0) throw Error("--comm nccl needs a CUDA device (--device cuda)");
    return std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, cuda_device);
#else
    throw Error("--comm nccl: this astroclear was built without NCCL (ASTROCLEAR_WITH_NCCL=OFF)");
#endif
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
}

}  // namespace astroclear::mpi
