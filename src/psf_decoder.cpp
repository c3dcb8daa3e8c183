// PsfDecoder: direct grouped convolution and cached-spectrum FFT convolution.
#include "src/psf_decoder.hpp"

#include <algorithm>

#include "mpi/error.hpp"

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

/// Full linear convolution through the FFT, cropped to the "same" window of (H, W).
torch::Tensor convolve_with_spectra(const torch::Tensor& images, const torch::Tensor& spectra, std::int64_t fh,
                                    std::int64_t fw, std::int64_t kh, std::int64_t kw) {
  const std::int64_t h = images.size(-2), w = images.size(-1);
  torch::Tensor x = torch::fft::rfft2(images, std::vector<std::int64_t>{fh, fw});
  torch::Tensor full = torch::fft::irfft2(x * spectra, std::vector<std::int64_t>{fh, fw});
  return full.narrow(-2, kh / 2, h).narrow(-1, kw / 2, w);
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
  // forward() crops rows kh/2 .. kh/2 + H of the full convolution: its adjoint places v there,
  // correlates (conjugate spectrum) and keeps rows 0 .. H. The correlation's wrap-around lands
  // beyond H + kh/2, outside what is kept, because the grid holds H + kh - 1 rows.
  torch::Tensor placed = torch::constant_pad_nd(v, {kernel_w_ / 2, fft_w_ - width_ - kernel_w_ / 2, kernel_h_ / 2,
                                                    fft_h_ - height_ - kernel_h_ / 2});
  torch::Tensor spectrum = (torch::fft::rfft2(placed) * spectra_.conj()).sum(0);
  return torch::fft::irfft2(spectrum, std::vector<std::int64_t>{fft_h_, fft_w_})
      .narrow(0, 0, height_)
      .narrow(1, 0, width_)
      .contiguous();
}

}  // namespace astroclear
