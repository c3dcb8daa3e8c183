// Restoring to a target resolution: each PSF as a narrow Gaussian target convolved with a kernel of its own.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "src/stack.hpp"

namespace astroclear {

// Note [target resolution]: deconvolving a sampled image to a delta function is ill-posed (Magain,
// Courbin and Sohy 1998): no finite stack of exposures determines the sky at frequencies its PSFs
// have removed, and a restoration that tries turns noise into single-pixel speckles. Restoring to
// a target resolution instead asks for the sky convolved with a narrow Gaussian g (FWHM
// `target_fwhm` pixels), which the data do determine. Each exposure's PSF f(t) is written as
// h(t) * g with a kernel h(t) >= 0 of the PSF's size and sum 1, found by Richardson-Lucy
// iterations on the PSF itself (h <- h g^T(f / (g * h)), from h = f); the decoder then convolves
// the latent image with h(t) instead of f(t), and the latent image is the sky at the target
// resolution: it needs no reconvolution before it is scored or used. Where a PSF is hardly
// broader than the target, h(t) is close to a delta and the match is only approximate; the
// relative residual |h * g - f| / |f| of the worst PSF is reported.

/// A centred Gaussian of FWHM `fwhm` pixels on an odd square of `size` pixels, sum 1.
torch::Tensor gaussian_kernel(std::int64_t size, double fwhm);

/// h >= 0 of f's (odd) size and sum 1 with h * g close to f (Note [target resolution]); the
/// relative residual |h * g - f| / |f| in `residual`.
torch::Tensor kernel_to_target(const torch::Tensor& f, const torch::Tensor& g, double& residual);

/// Replaces every PSF of `stack` by its kernel to a Gaussian target of FWHM `target_fwhm` pixels;
/// returns the largest relative residual. A target of 0 leaves the stack as it is (returns 0).
double restore_to_target(LocalStack& stack, double target_fwhm);

}  // namespace astroclear
