// The one exception type of astroclear: what failed, where (file, HDU, key, call) and on which rank.
#pragma once

#include <stdexcept>
#include <string>

namespace astroclear {

// Note [error layer]: Error and the checking macros (common/check.hpp) are the bottom layer of the
// build (target astroclear_common): mpi/, io/, src/, eval/ and jobs/ all throw them, and none of
// them has to see another layer's headers to do so.

/// Raised for every failure a user can act on. The message names the file, HDU or key, the value
/// found and the value expected; the rank is filled in when the error crosses a rank boundary or
/// comes from a checked call (ASTROCLEAR_CHECK_CALL).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, int rank = -1) : std::runtime_error(what), rank_(rank) {}
  /// The rank that raised it, or -1 when not known.
  int rank() const noexcept { return rank_; }

 private:
  int rank_;
};

/// An Error every rank raised together (after Communicator::agree_or_throw): the ranks can stop
/// in order, with MPI_Finalize, instead of MPI_Abort.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

}  // namespace astroclear
