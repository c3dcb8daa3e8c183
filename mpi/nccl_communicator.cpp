// NcclCommunicator: NCCL bootstrap over MPI and the device all-reduce.
#include "mpi/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "mpi/mpi_check.hpp"

#define ASTROCLEAR_CHECK_CUDA(call)                                                                 \
  do {                                                                                              \
    cudaError_t status_ = (call);                                                                   \
    if (status_ != cudaSuccess)                                                                     \
      throw ::astroclear::Error(std::string(#call) + " failed: " + cudaGetErrorString(status_));   \
  } while (0)

#define ASTROCLEAR_CHECK_NCCL(call)                                                                 \
  do {                                                                                              \
    ncclResult_t status_ = (call);                                                                  \
    if (status_ != ncclSuccess)                                                                     \
      throw ::astroclear::Error(std::string(#call) + " failed: " + ncclGetErrorString(status_));   \
  } while (0)

namespace astroclear::mpi {

/// Owns one ncclComm_t; destroyed (never aborted mid-collective) in its destructor.
class NcclComm {
 public:
  NcclComm(const MpiCommunicator& control, int cuda_device) {
    ASTROCLEAR_CHECK_CUDA(cudaSetDevice(cuda_device));
    ncclUniqueId id{};
    if (control.rank() == 0) ASTROCLEAR_CHECK_NCCL(ncclGetUniqueId(&id));
    ASTROCLEAR_CHECK_MPI(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, control.handle()));
    ASTROCLEAR_CHECK_NCCL(ncclCommInitRank(&comm_, control.size(), id, control.rank()));
  }
  ~NcclComm() {
    if (comm_ != nullptr && ncclCommDestroy(comm_) != ncclSuccess) {
      std::fprintf(stderr, "astroclear: ncclCommDestroy failed\n");
    }
  }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  ncclComm_t get() const { return comm_; }

 private:
  ncclComm_t comm_ = nullptr;
};

NcclCommunicator::NcclCommunicator(MPI_Comm parent, int cuda_device)
    : control_(parent), nccl_(std::make_unique<NcclComm>(control_, cuda_device)) {}

NcclCommunicator::~NcclCommunicator() = default;

void NcclCommunicator::all_reduce_sum(float* data, std::size_t count, MemorySpace space) {
  if (space == MemorySpace::kHost) {
    control_.all_reduce_sum(data, count, space);
    return;
  }
  stats_.bytes_all_reduced += count * sizeof(float);
  stats_.all_reduce_calls += 1;
  const auto start = std::chrono::steady_clock::now();
  // Stream 0: see Note [nccl stream]. Asynchronous: the seconds count the launch only.
  ASTROCLEAR_CHECK_NCCL(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, nccl_->get(), nullptr));
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

}  // namespace astroclear::mpi
