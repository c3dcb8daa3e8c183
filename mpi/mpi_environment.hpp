// MPI start-up and shut-down for the process, and the world's ranks as astroclear sees them.
#pragma once

#include <memory>
#include <string>

#include "mpi/communicator.hpp"

namespace astroclear::mpi {

/// Which implementation carries the data all-reduces.
enum class Backend { kAuto, kMpi, kNccl };

/// Owns MPI_Init_thread / MPI_Finalize. Create exactly one, first thing in main; it must outlive
/// every communicator made from it. A plain run without mpirun is a world of one rank.
class MpiEnvironment {
 public:
  MpiEnvironment(int& argc, char**& argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Rank and rank count on this node (MPI_Comm_split_type SHARED).
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  /// Stops every rank of the world at once; used when one rank fails outside a collective.
  [[noreturn]] void abort(int exit_code) const;

  /// A communicator over the world. kNccl needs the rank's CUDA device index (cuda_device_for in
  /// partition.hpp); kAuto picks NCCL when `cuda_device >= 0` and NCCL was built, else MPI.
  std::unique_ptr<Communicator> make_communicator(Backend backend, int cuda_device) const;

 private:
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
};

/// Whether this build carries the NCCL communicator.
bool nccl_available();

}  // namespace astroclear::mpi
