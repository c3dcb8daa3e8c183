// Communicator over NCCL for CUDA buffers; control collectives go through the MPI communicator it wraps.
#pragma once

#include <memory>

#include "mpi/communicator.hpp"
#include "mpi/mpi_communicator.hpp"

namespace astroclear::mpi {

class NcclComm;  // move-only owner of ncclComm_t (nccl_communicator.cpp)

// Note [nccl stream]: collectives run on CUDA's legacy default stream, which is LibTorch's
// default current stream. NCCL work is therefore ordered after the kernels that produced the
// buffer and before the kernels that read it, with no host synchronisation and no dependency on
// LibTorch's CUDA headers (the CI LibTorch has none).

/// NCCL all-reduce of device buffers. Built once per run: rank 0 calls ncclGetUniqueId, MPI_Bcast
/// sends it, every rank calls ncclCommInitRank after cudaSetDevice(cuda_device).
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm parent, int cuda_device);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return control_.rank(); }
  int size() const override { return control_.size(); }
  std::string backend() const override { return "nccl"; }
  bool supports(MemorySpace space) const override { return true; }
  void all_reduce_sum(float* data, std::size_t count, MemorySpace space) override;
  void all_reduce_sum(double* data, std::size_t count) override { control_.all_reduce_sum(data, count); }
  void all_reduce_max(int* data, std::size_t count) override { control_.all_reduce_max(data, count); }
  void broadcast(void* bytes, std::size_t count, int root) override { control_.broadcast(bytes, count, root); }
  void barrier() override { control_.barrier(); }
  void send(const float* data, std::size_t count, int destination, int tag) override {
    control_.send(data, count, destination, tag);
  }
  void receive(float* data, std::size_t count, int source, int tag) override {
    control_.receive(data, count, source, tag);
  }
  void exchange(const float* send, std::size_t send_count, int destination, float* receive, std::size_t receive_count,
                int source, MemorySpace space) override;
  /// A new NCCL communicator bootstrapped over the split MPI one (ncclCommInitRank, as at start).
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  // Declaration order is teardown order reversed: NCCL goes before the MPI communicator.
  MpiCommunicator control_;
  int cuda_device_;
  std::unique_ptr<NcclComm> nccl_;
};

}  // namespace astroclear::mpi
