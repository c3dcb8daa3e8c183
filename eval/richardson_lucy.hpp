// Multi-frame Richardson-Lucy: the classical peer of AstroClearNet on the same stack.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "mpi/communicator.hpp"
#include "src/psf_decoder.hpp"
#include "src/stack.hpp"
#include "eval/iteration_hooks.hpp"

namespace astroclear {

// Note [multi-frame Richardson-Lucy]: the update for exposures t with PSFs f(t) is
//   x <- x * sum_t f(t)^T [w(t) (y(t) + b(t)) / (f(t) * x + b(t))] / sum_t f(t)^T w(t)
// with w(t) = m(t) / s(t)^2 (mask over the exposure's median good variance: bad pixels count
// nothing, shallow exposures less) and a pedestal b(t) = pedestal * s(t). Sky-subtracted data
// are negative in half the empty pixels; the pedestal stands for the subtracted sky, so that
// y + b stays positive (it is clipped at 0, which at 10 sigma never happens) and the update
// keeps x >= 0. f^T is the decoder's adjoint (PsfDecoder::adjoint_sum). Both sums run over all
// ranks: one all-reduce of an image per iteration. The start is the inverse-variance coadd
// clipped at a small positive floor (a multiplicative update cannot lift a pixel from 0).

struct RichardsonLucyConfig {
  int iterations = 1000;  // the peak of SSIM and PSNR on simulated 256-512 px stacks (docs/science.md)
  double pedestal = 10.0;  ///< b(t) in units of the exposure's median sigma
  ValidationConfig validation;  ///< held-out exposures and when to stop (Note [early stopping])
  void validate() const;
};

/// Collective. `stack` must be normalised; returns x (H, W) in calibrated flux, on the CPU: the
/// last iterate, or with held-out exposures and StopRule::kBest the kept one.
torch::Tensor richardson_lucy(const LocalStack& stack, const PsfDecoder& decoder, const RichardsonLucyConfig& config,
                              mpi::Communicator& comm, const IterationHooks& hooks = {});

}  // namespace astroclear
