// Communicator over MPI: MPI_Allreduce on host buffers; the control path of every backend.
#pragma once

#include <mpi.h>

#include "mpi/communicator.hpp"

namespace astroclear::mpi {

/// Owns a duplicate of the communicator it was built from (MPI_Comm_dup / MPI_Comm_free).
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm parent);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  bool supports(MemorySpace space) const override { return space == MemorySpace::kHost; }
  void all_reduce_sum(float* data, std::size_t count, MemorySpace space) override;
  void all_reduce_sum(double* data, std::size_t count) override;
  void all_reduce_max(int* data, std::size_t count) override;
  void broadcast(void* bytes, std::size_t count, int root) override;
  void barrier() override;
  void send(const float* data, std::size_t count, int destination, int tag) override;
  void receive(float* data, std::size_t count, int source, int tag) override;
  void exchange(const float* send, std::size_t send_count, int destination, float* receive, std::size_t receive_count,
                int source, MemorySpace space) override;
  std::unique_ptr<Communicator> split(int color, int key) override;
  /// The MPI communicator of split(color, key), for backends that bootstrap on it (the caller frees it).
  MPI_Comm split_handle(int color, int key) const;

  MPI_Comm handle() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace astroclear::mpi
