// ImageMM: the multiplicative majorise-minimise restoration of a stack, the strongest classical peer.
#pragma once

#include <torch/torch.h>

#include "eval/iteration_hooks.hpp"
#include "mpi/communicator.hpp"
#include "src/psf_decoder.hpp"
#include "src/stack.hpp"

namespace astroclear {

// Note [ImageMM]: the restoration of Sukurdeep, Budavari, Connolly and Navarro (AJ 170, 233,
// 2025; arXiv:2501.03002). It minimises the weighted squared residuals of all exposures,
// sum_t || W(t)^(1/2) (y(t) - f(t) * x) ||^2 with W(t) = m(t) / sigma(t)^2, under x >= 0, by the
// multiplicative majorise-minimise update
//   x <- x * clip( sum_t f(t)^T W(t) (y(t) + b(t)) / sum_t f(t)^T W(t) (f(t) * x + b(t)), 1/kappa, kappa )
// (kappa = 2). Each step lowers a quadratic majoriser of the objective, and the clip keeps a step
// from moving any pixel by more than a factor kappa. The data are sky-subtracted, so a pedestal
// b(t) (in units of the exposure's median sigma, standing for the subtracted sky) keeps y + b
// positive and lets the background settle at its level instead of being clipped at zero. The
// robust variant recomputes the weights every iteration as W(t) psi(r)/r for the Huber function
// of the scaled residuals r = (y - f * x) / sigma (delta = 2): pixels that the model misses by
// many sigmas (cosmic rays left in, a wrong PSF core) weigh less. The start is the inverse-
// variance coadd clipped to a small positive floor. Both sums run over all ranks: one all-reduce
// of two images per iteration, so any split of the exposures gives the same result.

struct ImageMmConfig {
  int iterations = 1000;  ///< the most, with StopRule::kBest (docs/science.md, "Held-out stopping")
  double kappa = 2.0;       ///< the largest factor one step moves a pixel by
  double pedestal = 10.0;   ///< b(t) in units of the exposure's median sigma
  bool robust = true;       ///< Huber weights, recomputed every iteration
  double huber_delta = 2.0; ///< of the robust weights, in sigmas
  ValidationConfig validation;  ///< held-out exposures and when to stop (Note [early stopping])
  /// Throws Error naming the option when a setting is out of range.
  void validate() const;
};

/// Collective. `stack` must be normalised; returns x (H, W) in calibrated flux, on the CPU: the
/// last iterate, or with held-out exposures and StopRule::kBest the kept one.
torch::Tensor image_mm(const LocalStack& stack, const PsfDecoder& decoder, const ImageMmConfig& config,
                       mpi::Communicator& comm, const IterationHooks& hooks = {});

}  // namespace astroclear
