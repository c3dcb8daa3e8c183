// What the iterative restorations (rl, mm) share: progress reports and held-out scoring.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "mpi/communicator.hpp"
#include "src/config.hpp"
#include "src/field_view.hpp"
#include "src/validation.hpp"

namespace astroclear {

/// Where an iterative restoration reports to and scores on held-out exposures (both optional).
struct IterationHooks {
  /// Called after every iteration with the relative change of x (same on all ranks).
  std::function<void(int, double)> progress;
  /// The held-out loss, and the record it goes into: the latent image after every
  /// track->due(iteration) iterations (the start, 0, included) is scored, and the run ends once
  /// the record is exhausted (Note [early stopping]).
  const HeldOutLoss* held_out = nullptr;
  ValidationTrack* track = nullptr;
  /// Where the field lives: with tiles (Note [tiles]) the stack holds this rank's tile frames and
  /// the iterate is the tile's; nullptr: the whole field on every rank.
  const FieldView* field = nullptr;
};

/// Collective, for the iterative restorations: scores `x` (normalised) as the iterate after
/// `iteration` iterations when the hooks' record says it is due or when `last`; true when the
/// record is exhausted and the iterations should end.
bool score_iterate(const IterationHooks& hooks, int iteration, const torch::Tensor& x, double flux_unit, bool last,
                   mpi::Communicator& comm);

/// The result of an iterative restoration: the kept iterate (kBest with a record) or `x`, in
/// calibrated flux on the CPU; the whole field (with tiles on rank 0 only: FieldView::whole).
/// Collective with tiles.
torch::Tensor iterate_result(const IterationHooks& hooks, StopRule stop, const torch::Tensor& x, double flux_unit);

}  // namespace astroclear
