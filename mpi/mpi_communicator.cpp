// MpiCommunicator: host collectives through MPI, chunked so counts above INT_MAX work.
#include "mpi/mpi_communicator.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <exception>

#include "common/error.hpp"
#include "mpi/mpi_check.hpp"

namespace astroclear::mpi {
namespace {

constexpr std::size_t kMaxChunk = static_cast<std::size_t>(INT_MAX) / 2;

template <typename Fn>
void for_chunks(std::size_t count, Fn&& fn) {
  for (std::size_t offset = 0; offset < count; offset += kMaxChunk) {
    fn(offset, static_cast<int>(std::min(kMaxChunk, count - offset)));
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm parent) {
  ASTROCLEAR_CHECK_MPI(MPI_Comm_dup(parent, &comm_));
  ASTROCLEAR_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
  ASTROCLEAR_CHECK_MPI(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_NULL && !finalized) {
    if (MPI_Comm_free(&comm_) != MPI_SUCCESS) std::fprintf(stderr, "astroclear: MPI_Comm_free failed\n");
  }
}

void MpiCommunicator::all_reduce_sum(float* data, std::size_t count, MemorySpace space) {
  if (space != MemorySpace::kHost) throw Error("MpiCommunicator: device buffers must be staged on the host");
  stats_.bytes_all_reduced += count * sizeof(float);
  stats_.all_reduce_calls += 1;
  if (size_ == 1) return;
  const auto start = std::chrono::steady_clock::now();
  for_chunks(count, [&](std::size_t offset, int n) {
    ASTROCLEAR_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, data + offset, n, MPI_FLOAT, MPI_SUM, comm_));
  });
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void MpiCommunicator::all_reduce_sum(double* data, std::size_t count) {
  if (size_ == 1) return;
  for_chunks(count, [&](std::size_t offset, int n) {
    ASTROCLEAR_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, data + offset, n, MPI_DOUBLE, MPI_SUM, comm_));
  });
}

void MpiCommunicator::all_reduce_max(int* data, std::size_t count) {
  if (size_ == 1) return;
  for_chunks(count, [&](std::size_t offset, int n) {
    ASTROCLEAR_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, data + offset, n, MPI_INT, MPI_MAX, comm_));
  });
}

void MpiCommunicator::broadcast(void* bytes, std::size_t count, int root) {
  if (size_ == 1) return;
  auto* base = static_cast<char*>(bytes);
  for_chunks(count, [&](std::size_t offset, int n) {
    ASTROCLEAR_CHECK_MPI(MPI_Bcast(base + offset, n, MPI_BYTE, root, comm_));
  });
}

void MpiCommunicator::barrier() {
  if (size_ > 1) ASTROCLEAR_CHECK_MPI(MPI_Barrier(comm_));
}

void MpiCommunicator::send(const float* data, std::size_t count, int destination, int tag) {
  for_chunks(count, [&](std::size_t offset, int n) {
    ASTROCLEAR_CHECK_MPI(MPI_Send(data + offset, n, MPI_FLOAT, destination, tag, comm_));
  });
}

void MpiCommunicator::receive(float* data, std::size_t count, int source, int tag) {
  for_chunks(count, [&](std::size_t offset, int n) {
    ASTROCLEAR_CHECK_MPI(MPI_Recv(data + offset, n, MPI_FLOAT, source, tag, comm_, MPI_STATUS_IGNORE));
  });
}

void MpiCommunicator::exchange(const float* send, std::size_t send_count, int destination, float* receive,
                               std::size_t receive_count, int source, MemorySpace space) {
  if (space != MemorySpace::kHost) throw Error("MpiCommunicator: device buffers must be staged on the host");
  if (send_count > kMaxChunk || receive_count > kMaxChunk) throw Error("MpiCommunicator::exchange: halo too large");
  stats_.bytes_exchanged += destination >= 0 ? send_count * sizeof(float) : 0;
  const auto start = std::chrono::steady_clock::now();
  ASTROCLEAR_CHECK_MPI(MPI_Sendrecv(send, destination >= 0 ? static_cast<int>(send_count) : 0, MPI_FLOAT,
                                    destination >= 0 ? destination : MPI_PROC_NULL, 0, receive,
                                    source >= 0 ? static_cast<int>(receive_count) : 0, MPI_FLOAT,
                                    source >= 0 ? source : MPI_PROC_NULL, 0, comm_, MPI_STATUS_IGNORE));
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

MPI_Comm MpiCommunicator::split_handle(int color, int key) const {
  MPI_Comm part = MPI_COMM_NULL;
  ASTROCLEAR_CHECK_MPI(MPI_Comm_split(comm_, color, key, &part));
  return part;
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  MPI_Comm part = split_handle(color, key);
  auto out = std::make_unique<MpiCommunicator>(part);
  ASTROCLEAR_CHECK_MPI(MPI_Comm_free(&part));
  return out;
}

}  // namespace astroclear::mpi
