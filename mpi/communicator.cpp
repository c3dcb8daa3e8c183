// Backend-independent parts of Communicator: string broadcast and the error agreement.
#include "mpi/communicator.hpp"

#include "common/error.hpp"

namespace astroclear::mpi {

std::string Communicator::broadcast_string(const std::string& text, int root) {
  double length = rank() == root ? static_cast<double>(text.size()) : 0.0;
  // Lengths travel as a sum in which only the root contributes.
  all_reduce_sum(&length, 1);
  std::string out = rank() == root ? text : std::string(static_cast<std::size_t>(length), '\0');
  if (!out.empty()) broadcast(out.data(), out.size(), root);
  return out;
}

void Communicator::agree_or_throw(const std::string& local_error, int origin) {
  // The lowest failing rank wins: max over (size - rank) of the failing ranks.
  int failing = local_error.empty() ? 0 : size() - rank();
  all_reduce_max(&failing, 1);
  if (failing == 0) return;
  const int root = size() - failing;
  const std::string message = broadcast_string(local_error, root);
  int where = origin >= 0 ? origin : root;
  broadcast(&where, sizeof where, root);
  throw CollectiveError(message, where);
}

void Communicator::collectively(const std::function<void()>& work, bool participates) {
  std::string error;
  int origin = -1;
  if (participates) {
    try {
      work();
    } catch (const Error& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
      origin = e.rank();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  agree_or_throw(error, origin);
}

void LocalCommunicator::send(const float*, std::size_t, int, int) {
  throw Error("LocalCommunicator::send: a one-rank communicator has no peer");
}
void LocalCommunicator::receive(float*, std::size_t, int, int) {
  throw Error("LocalCommunicator::receive: a one-rank communicator has no peer");
}

void LocalCommunicator::exchange(const float*, std::size_t, int destination, float*, std::size_t, int source,
                                 MemorySpace) {
  if (destination >= 0 || source >= 0) throw Error("LocalCommunicator::exchange: a one-rank communicator has no peer");
}

}  // namespace astroclear::mpi
