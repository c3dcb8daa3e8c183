// The communicator interface the trainer sees: sums over ranks, with MPI, NCCL or one-process backends.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace astroclear::mpi {

/// Where a buffer lives: host memory, or the rank's CUDA device.
enum class MemorySpace { kHost, kCuda };

/// Bytes and seconds spent in data collectives (not counting control messages).
struct CommStats {
  std::size_t bytes_all_reduced = 0;
  std::size_t all_reduce_calls = 0;
  std::size_t bytes_exchanged = 0;  ///< sent by exchange() (halos)
  double seconds = 0.0;
};

// Note [communicator]: the interface is torch-free (raw float buffers) so that the NCCL and MPI
// implementations compile without LibTorch; mpi/all_reduce.hpp adapts tensors to it. Control
// collectives (flags, counts, error text) always go through MPI on the host, whatever the backend.

/// Collectives across the ranks that train one encoder. One process is a communicator of size 1
/// on which every collective returns at once.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "local", "mpi" or "nccl".
  virtual std::string backend() const = 0;
  /// Whether all_reduce_sum accepts buffers in `space` directly.
  virtual bool supports(MemorySpace space) const = 0;

  /// In-place sum over ranks of `count` floats in `space`. On CUDA the call is asynchronous on
  /// the rank's stream (see Note [nccl stream]).
  virtual void all_reduce_sum(float* data, std::size_t count, MemorySpace space) = 0;

  /// Host control collectives: in-place sum of doubles, max of ints, broadcast of bytes.
  virtual void all_reduce_sum(double* data, std::size_t count) = 0;
  virtual void all_reduce_max(int* data, std::size_t count) = 0;
  virtual void broadcast(void* bytes, std::size_t count, int root) = 0;
  virtual void barrier() = 0;
  /// Point to point on the host, for gathering outputs on rank 0.
  virtual void send(const float* data, std::size_t count, int destination, int tag) = 0;
  virtual void receive(float* data, std::size_t count, int source, int tag) = 0;

  /// Sends `send_count` floats to `destination` while receiving `receive_count` from `source`, in
  /// `space` (a halo exchange); either rank may be -1 for none. Every rank of a pattern calls it
  /// at the same step, so pairs match without tags. On CUDA asynchronous like all_reduce_sum.
  virtual void exchange(const float* send, std::size_t send_count, int destination, float* receive,
                        std::size_t receive_count, int source, MemorySpace space) = 0;

  /// Collective. The communicator of the ranks that pass the same `color`, ordered by `key` (then
  /// by rank), with this one's backend.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = CommStats{}; }

  /// Broadcasts a string from `root` (control path).
  std::string broadcast_string(const std::string& text, int root);

  /// Collective agreement after local work that may have failed: every rank passes its own error
  /// text ("" when fine). If any rank failed, every rank throws CollectiveError with the message of
  /// the lowest failing rank, so no rank is left waiting in a later collective. Its rank() is that
  /// rank's `origin` when given (the rank an error came from, in another communicator), else its rank here.
  void agree_or_throw(const std::string& local_error, int origin = -1);

  /// Runs `work` on the ranks where `participates` is true (all by default), catching its Error,
  /// then agrees: every rank throws CollectiveError if any failed. For validation and for
  /// single-writer output (`participates = rank() == 0`).
  void collectively(const std::function<void()>& work, bool participates = true);

 protected:
  CommStats stats_;
};

/// A communicator of one rank that needs no MPI (unit tests, library use).
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  bool supports(MemorySpace) const override { return true; }
  void all_reduce_sum(float*, std::size_t, MemorySpace) override {}
  void all_reduce_sum(double*, std::size_t) override {}
  void all_reduce_max(int*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
  void barrier() override {}
  void send(const float*, std::size_t, int, int) override;
  void receive(float*, std::size_t, int, int) override;
  void exchange(const float*, std::size_t, int destination, float*, std::size_t, int source, MemorySpace) override;
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<LocalCommunicator>(); }
};

}  // namespace astroclear::mpi
