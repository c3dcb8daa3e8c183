// The decoder: the latent image convolved with each exposure's PSF, directly or through the FFT.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "src/huber_loss.hpp"

namespace astroclear {

/// Smallest n' >= n whose only prime factors are 2, 3 and 5 (fast FFT lengths).
std::int64_t fast_fft_size(std::int64_t n);

/// Linear (zero-padded, not circular) "same"-size convolution of images (..., H, W) with
/// kernels (n, kh, kw) through the FFT. Used by the simulator and the tests.
torch::Tensor fft_convolve(const torch::Tensor& images, const torch::Tensor& kernels);

/// yhat(t) = f(t) * x for the exposures this rank owns. PSFs are fixed (not learned).
class PsfDecoder {
 public:
  enum class Mode { kDirect, kFft };

  /// `psfs`: one odd-sized 2-D kernel per exposure (sizes may differ; they are centred in the
  /// largest). Spectra (FFT mode) are computed once here, on `device`.
  PsfDecoder(const std::vector<torch::Tensor>& psfs, std::int64_t height, std::int64_t width, Mode mode,
             torch::Device device);

  /// latent (H, W) -> reconstructions (n, H, W).
  torch::Tensor forward(const torch::Tensor& latent) const;
  /// The adjoint summed over exposures: (n, H, W) -> sum_t f(t)^T v(t), (H, W). In FFT mode the
  /// sum is taken in the frequency domain (n forward transforms and one inverse); in direct
  /// mode it is the gradient of forward().
  torch::Tensor adjoint_sum(const torch::Tensor& v) const;
  /// terms.sum(forward(latent)): the loss of the reconstructions, differentiable in `latent`. In
  /// FFT mode a few exposures at a time, with the gradient computed on the way (Note [chunked
  /// decoder loss] in psf_decoder.cpp); no stack-sized tensor is made or kept for the backward.
  torch::Tensor huber_sum(const torch::Tensor& latent, const HuberTerms& terms) const;
  /// FFT mode: the loss of the reconstructions (a scalar of latent's dtype) and, with
  /// `with_gradient`, its gradient in `latent` (Note [chunked decoder loss]).
  std::pair<torch::Tensor, torch::Tensor> fft_huber_sum(const torch::Tensor& latent, const HuberTerms& terms,
                                                        bool with_gradient) const;

  Mode mode() const { return mode_; }
  /// "fft" or "direct", as in --decoder and the ACDECOD header card.
  const char* mode_name() const { return mode_ == Mode::kFft ? "fft" : "direct"; }
  /// Bytes of the fixed tensors it keeps on the device: the PSF spectra (FFT) or kernels (direct).
  std::int64_t resident_bytes() const { return mode_ == Mode::kFft ? spectra_.nbytes() : flipped_.nbytes(); }
  std::int64_t kernel_height() const { return kernel_h_; }
  std::int64_t kernel_width() const { return kernel_w_; }

 private:
  /// sum_t of the spectrum of f(t)^T v(t) for v (c, H, W) and those exposures' `spectra`.
  torch::Tensor adjoint_spectrum(const torch::Tensor& v, const torch::Tensor& spectra) const;
  /// The (H, W) image of a spectrum of the FFT grid, cut where adjoint_spectrum placed it.
  torch::Tensor from_spectrum(const torch::Tensor& spectrum) const;

  Mode mode_;
  std::int64_t height_, width_, kernel_h_, kernel_w_, fft_h_ = 0, fft_w_ = 0;
  torch::Tensor flipped_;  ///< direct: (n, 1, kh, kw), flipped because conv2d correlates
  torch::Tensor spectra_;  ///< fft: (n, fft_h, fft_w / 2 + 1) complex
};

/// The largest side of any of the kernels (at least 1).
std::int64_t largest_psf_side(const std::vector<torch::Tensor>& psfs);

/// Stacks odd kernels of any sizes into one (n, kh, kw) tensor, each centred.
torch::Tensor stack_centred(const std::vector<torch::Tensor>& kernels);

}  // namespace astroclear
