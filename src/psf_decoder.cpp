// PsfDecoder: direct grouped convolution and cached-spectrum FFT convolution.
#include "src/psf_decoder.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace astroclear {

std::int64_t fast_fft_size(std::int64_t n) {
  for (std::int64_t m = std::max<std::int64_t>(n, 1);; ++m) {
    std::int64_t r = m;
    for (std::int64_t p : {2, 3, 5}) {
      while (r % p == 0) r /= p;
    }
    if (r == 1) return m;
  }
}

std::int64_t largest_psf_side(const std::vector<torch::Tensor>& psfs) {
  std::int64_t side = 1;
  for (const auto& p : psfs) side = std::max({side, p.size(0), p.size(1)});
  return side;
}

torch::Tensor stack_centred(const std::vector<torch::Tensor>& kernels) {
  std::int64_t kh = 1, kw = 1;
  for (const auto& k : kernels) {
    if (k.dim() != 2 || k.size(0) % 2 == 0 || k.size(1) % 2 == 0) throw Error("PSF kernels must be 2-D and odd-sized");
    kh = std::max(kh, k.size(0));
    kw = std::max(kw, k.size(1));
  }
  torch::Tensor out = torch::zeros({static_cast<std::int64_t>(kernels.size()), kh, kw}, kernels.at(0).options());
  for (std::size_t t = 0; t < kernels.size(); ++t) {
    const auto& k = kernels[t];
    const std::int64_t oy = (kh - k.size(0)) / 2, ox = (kw - k.size(1)) / 2;
    out[static_cast<std::int64_t>(t)].narrow(0, oy, k.size(0)).narrow(1, ox, k.size(1)).copy_(k);
  }
  return out;
}

namespace {

/// Spectra of kernels (n, kh, kw) placed at the origin of an (fh, fw) grid.
torch::Tensor kernel_spectra(const torch::Tensor& kernels, std::int64_t fh, std::int64_t fw) {
  return torch::fft::rfft2(kernels, std::vector<std::int64_t>{fh, fw});
}

/// The "same" window (h, w) of the full linear convolutions whose spectra on the (fh, fw) grid are
/// `product`: rows kh/2 .. kh/2 + h, columns kw/2 .. kw/2 + w (PsfDecoder::adjoint_spectrum undoes it).
torch::Tensor same_window(const torch::Tensor& product, std::int64_t fh, std::int64_t fw, std::int64_t kh,
                          std::int64_t kw, std::int64_t h, std::int64_t w) {
  return torch::fft::irfft2(product, std::vector<std::int64_t>{fh, fw}).narrow(-2, kh / 2, h).narrow(-1, kw / 2, w);
}

/// Full linear convolution through the FFT, cropped to the "same" window of (H, W).
torch::Tensor convolve_with_spectra(const torch::Tensor& images, const torch::Tensor& spectra, std::int64_t fh,
                                    std::int64_t fw, std::int64_t kh, std::int64_t kw) {
  torch::Tensor x = torch::fft::rfft2(images, std::vector<std::int64_t>{fh, fw});
  return same_window(x * spectra, fh, fw, kh, kw, images.size(-2), images.size(-1));
}

}  // namespace

torch::Tensor fft_convolve(const torch::Tensor& images, const torch::Tensor& kernels) {
  const std::int64_t kh = kernels.size(-2), kw = kernels.size(-1);
  const std::int64_t fh = fast_fft_size(images.size(-2) + kh - 1), fw = fast_fft_size(images.size(-1) + kw - 1);
  return convolve_with_spectra(images, kernel_spectra(kernels, fh, fw), fh, fw, kh, kw);
}

PsfDecoder::PsfDecoder(const std::vector<torch::Tensor>& psfs, std::int64_t height, std::int64_t width, Mode mode,
                       torch::Device device)
    : mode_(mode), height_(height), width_(width) {
  torch::Tensor kernels = stack_centred(psfs).to(torch::kFloat32);
  kernel_h_ = kernels.size(1);
  kernel_w_ = kernels.size(2);
  if (mode_ == Mode::kDirect) {
    flipped_ = kernels.flip({1, 2}).unsqueeze(1).contiguous().to(device);
  } else {
    fft_h_ = fast_fft_size(height_ + kernel_h_ - 1);
    fft_w_ = fast_fft_size(width_ + kernel_w_ - 1);
    spectra_ = kernel_spectra(kernels.to(device), fft_h_, fft_w_);
  }
}

torch::Tensor PsfDecoder::forward(const torch::Tensor& latent) const {
  if (mode_ == Mode::kDirect) {
    torch::Tensor x = latent.view({1, 1, height_, width_});
    return torch::conv2d(x, flipped_, {}, torch::IntArrayRef{1, 1}, torch::IntArrayRef{kernel_h_ / 2, kernel_w_ / 2}).squeeze(0);
  }
  return convolve_with_spectra(latent, spectra_, fft_h_, fft_w_, kernel_h_, kernel_w_);
}

torch::Tensor PsfDecoder::adjoint_sum(const torch::Tensor& v) const {
  if (mode_ == Mode::kDirect) {
    torch::AutoGradMode record(true);  // also under a caller's NoGradGuard
    torch::Tensor probe = torch::zeros({height_, width_}, v.options()).requires_grad_(true);
    return torch::autograd::grad({forward(probe)}, {probe}, {v})[0];
  }
  return from_spectrum(adjoint_spectrum(v, spectra_));
}

torch::Tensor PsfDecoder::adjoint_spectrum(const torch::Tensor& v, const torch::Tensor& spectra) const {
  // forward() crops rows kh/2 .. kh/2 + H of the full convolution: its adjoint places v there,
  // correlates (conjugate spectrum) and keeps rows 0 .. H. The correlation's wrap-around lands
  // beyond H + kh/2, outside what is kept, because the grid holds H + kh - 1 rows.
  torch::Tensor placed = torch::constant_pad_nd(v, {kernel_w_ / 2, fft_w_ - width_ - kernel_w_ / 2, kernel_h_ / 2,
                                                    fft_h_ - height_ - kernel_h_ / 2});
  return (torch::fft::rfft2(placed) * spectra.conj()).sum(0);
}

torch::Tensor PsfDecoder::from_spectrum(const torch::Tensor& spectrum) const {
  return torch::fft::irfft2(spectrum, std::vector<std::int64_t>{fft_h_, fft_w_})
      .narrow(0, 0, height_)
      .narrow(1, 0, width_)
      .contiguous();
}

// Note [chunked decoder loss]: written as autograd sees it, the FFT decoder and the loss make
// several stack-sized tensors (the products with the spectra, the FFT grids the reconstructions
// are cut from, the weighted reconstructions, the per-pixel Huber terms), keep one of them for
// the backward pass and make as many again there: on 33 x 4200^2, about four planes of 2.3 GB
// at the peak of an iteration. The latent image is the only input that needs a gradient, and the
// loss is a sum over exposures. So huber_sum runs the exposures in chunks of kLossChunk: each
// chunk's reconstructions, loss and gradient dL/dyhat = weight * clamp(weight * yhat - target,
// -delta, delta), and the adjoint of that gradient, summed in the frequency domain. After the
// last chunk one inverse transform gives dL/dx, which the backward pass only scales. The same
// transforms as before, and no tensor larger than a chunk.
namespace {

constexpr std::int64_t kLossChunk = 4;

struct ChunkedFftLoss : public torch::autograd::Function<ChunkedFftLoss> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& latent,
                               const PsfDecoder* decoder, const HuberTerms* terms) {
    auto [loss, gradient] = decoder->fft_huber_sum(latent, *terms, /*with_gradient=*/true);
    ctx->save_for_backward({gradient});
    return loss;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    return {grads[0] * ctx->get_saved_variables()[0], torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> PsfDecoder::fft_huber_sum(const torch::Tensor& latent, const HuberTerms& terms,
                                                                  bool with_gradient) const {
  const std::int64_t n = spectra_.size(0);
  const torch::Tensor x = torch::fft::rfft2(latent, std::vector<std::int64_t>{fft_h_, fft_w_});
  torch::Tensor loss = torch::zeros({}, latent.options().dtype(torch::kFloat64));
  torch::Tensor spectrum;
  for (std::int64_t first = 0; first < n; first += kLossChunk) {
    const std::int64_t count = std::min(kLossChunk, n - first);
    const torch::Tensor spectra = spectra_.narrow(0, first, count);
    const torch::Tensor weight = terms.weight.narrow(0, first, count);
    const torch::Tensor target = terms.target.narrow(0, first, count);
    // weight * yhat, with the FFT grid it is cut from gone at the end of the statement
    torch::Tensor weighted = same_window(x * spectra, fft_h_, fft_w_, kernel_h_, kernel_w_, height_, width_) * weight;
    loss += torch::huber_loss(weighted, target, at::Reduction::Sum, terms.delta);
    if (!with_gradient) continue;
    // dL/dyhat, in place of the weighted reconstructions
    const torch::Tensor grad = weighted.sub_(target).clamp_(-terms.delta, terms.delta).mul_(weight);
    const torch::Tensor part = adjoint_spectrum(grad, spectra);
    spectrum = spectrum.defined() ? spectrum.add_(part) : part;
  }
  return {loss.to(latent.scalar_type()), with_gradient ? from_spectrum(spectrum) : torch::Tensor()};
}

torch::Tensor PsfDecoder::huber_sum(const torch::Tensor& latent, const HuberTerms& terms) const {
  if (mode_ == Mode::kDirect) return terms.sum(forward(latent));
  if (torch::GradMode::is_enabled() && latent.requires_grad()) return ChunkedFftLoss::apply(latent, this, &terms);
  return fft_huber_sum(latent, terms, /*with_gradient=*/false).first;
}

}  // namespace astroclear
