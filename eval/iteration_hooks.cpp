// score_iterate and iterate_result (Note [early stopping]).
#include "eval/iteration_hooks.hpp"

namespace astroclear {

bool score_iterate(const IterationHooks& hooks, int iteration, const torch::Tensor& x, double flux_unit, bool last,
                   mpi::Communicator& comm) {
  if (hooks.track == nullptr || hooks.held_out == nullptr) return false;
  ValidationTrack& track = *hooks.track;
  if (track.due(iteration, last)) {
    const double loss = (*hooks.held_out)(hooks.field ? hooks.field->frame(x) : x, comm);
    track.record(iteration, loss, [&] {
      return hooks.field ? hooks.field->whole(x * flux_unit).clone() : (x * flux_unit).to(torch::kCPU).clone();
    });
  }
  return track.exhausted();
}

torch::Tensor iterate_result(const IterationHooks& hooks, StopRule stop, const torch::Tensor& x, double flux_unit) {
  if (hooks.track != nullptr && stop == StopRule::kBest && hooks.track->best_latent().defined()) {
    return hooks.track->best_latent();
  }
  return hooks.field ? hooks.field->whole(x * flux_unit) : (x * flux_unit).to(torch::kCPU);
}

}  // namespace astroclear
