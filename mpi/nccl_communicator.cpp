// NcclCommunicator: NCCL bootstrap over MPI and the device all-reduce.
#include "mpi/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include "mpi/mpi_check.hpp"

#define ASTROCLEAR_CHECK_CUDA(call)                                                                \
  do {                                                                                             \
    const cudaError_t cuda_status_ = (call);                                                       \
    ASTROCLEAR_CHECK_CALL(cuda_status_ == cudaSuccess, #call, cudaGetErrorString(cuda_status_));   \
  } while (0)

#define ASTROCLEAR_CHECK_NCCL(call)                                                                \
  do {                                                                                             \
    const ncclResult_t nccl_status_ = (call);                                                      \
    ASTROCLEAR_CHECK_CALL(nccl_status_ == ncclSuccess, #call, ncclGetErrorString(nccl_status_));   \
  } while (0)

namespace astroclear::mpi {

/// The one owner of an ncclComm_t, movable like c10d's NCCLComm. Its destructor finalises the
/// communicator (ncclCommFinalize waits for the collectives already issued on it) before
/// destroying it, so teardown never frees resources that a queued all-reduce still uses; it is
/// never aborted mid-collective. Failures there are logged, never thrown.
class NcclComm {
 public:
  NcclComm(const MpiCommunicator& control, int cuda_device) {
    ASTROCLEAR_CHECK_CUDA(cudaSetDevice(cuda_device));
    ncclUniqueId id{};
    if (control.rank() == 0) ASTROCLEAR_CHECK_NCCL(ncclGetUniqueId(&id));
    ASTROCLEAR_CHECK_MPI(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, control.handle()));
    ASTROCLEAR_CHECK_NCCL(ncclCommInitRank(&comm_, control.size(), id, control.rank()));
  }
  NcclComm(NcclComm&& other) noexcept : comm_(std::exchange(other.comm_, nullptr)) {}
  NcclComm& operator=(NcclComm&& other) noexcept {
    if (this != &other) {
      release();
      comm_ = std::exchange(other.comm_, nullptr);
    }
    return *this;
  }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  ~NcclComm() { release(); }

  ncclComm_t get() const { return comm_; }

 private:
  void release() noexcept {
    if (comm_ == nullptr) return;
    if (const ncclResult_t status = ncclCommFinalize(comm_); status != ncclSuccess) {
      std::fprintf(stderr, "astroclear: ncclCommFinalize failed: %s\n", ncclGetErrorString(status));
    }
    if (const ncclResult_t status = ncclCommDestroy(comm_); status != ncclSuccess) {
      std::fprintf(stderr, "astroclear: ncclCommDestroy failed: %s\n", ncclGetErrorString(status));
    }
    comm_ = nullptr;
  }

  ncclComm_t comm_ = nullptr;
};

NcclCommunicator::NcclCommunicator(MPI_Comm parent, int cuda_device)
    : control_(parent), cuda_device_(cuda_device), nccl_(std::make_unique<NcclComm>(control_, cuda_device)) {}

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

void NcclCommunicator::exchange(const float* send, std::size_t send_count, int destination, float* receive,
                                std::size_t receive_count, int source, MemorySpace space) {
  stats_.bytes_exchanged += destination >= 0 ? send_count * sizeof(float) : 0;
  const auto start = std::chrono::steady_clock::now();
  if (space == MemorySpace::kHost) {
    control_.exchange(send, send_count, destination, receive, receive_count, source, space);
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return;
  }
  // Stream 0 (Note [nccl stream]); the group lets the send and the receive proceed together.
  // Asynchronous: the seconds count the launch only.
  ASTROCLEAR_CHECK_NCCL(ncclGroupStart());
  if (destination >= 0) ASTROCLEAR_CHECK_NCCL(ncclSend(send, send_count, ncclFloat32, destination, nccl_->get(), nullptr));
  if (source >= 0) ASTROCLEAR_CHECK_NCCL(ncclRecv(receive, receive_count, ncclFloat32, source, nccl_->get(), nullptr));
  ASTROCLEAR_CHECK_NCCL(ncclGroupEnd());
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  MPI_Comm part = control_.split_handle(color, key);
  auto out = std::make_unique<NcclCommunicator>(part, cuda_device_);
  ASTROCLEAR_CHECK_MPI(MPI_Comm_free(&part));
  return out;
}

}  // namespace astroclear::mpi
