// kernel_to_target: Richardson-Lucy on a PSF, for Note [target resolution].
#include "src/target_resolution.hpp"

#include <cmath>

#include "common/error.hpp"

namespace astroclear {
namespace {

constexpr int kKernelIterations = 500;

/// "same" 2-D convolution of one kernel with another (zero padding), in float64.
torch::Tensor convolve_same(const torch::Tensor& image, const torch::Tensor& kernel) {
  const auto kh = kernel.size(0), kw = kernel.size(1);
  return torch::conv2d(image.view({1, 1, image.size(0), image.size(1)}), kernel.flip({0, 1}).view({1, 1, kh, kw}), {},
                       1, torch::IntArrayRef{kh / 2, kw / 2})
      .view({image.size(0), image.size(1)});
}

}  // namespace

torch::Tensor gaussian_kernel(std::int64_t size, double fwhm) {
  const double sigma = fwhm / (2 * std::sqrt(2 * std::log(2.0)));
  const double c = (size - 1) / 2.0;
  torch::Tensor yy = torch::arange(size, torch::kFloat64).view({-1, 1}) - c;
  torch::Tensor xx = torch::arange(size, torch::kFloat64).view({1, -1}) - c;
  torch::Tensor g = torch::exp(-(yy * yy + xx * xx) / (2 * sigma * sigma));
  return g / g.sum();
}

torch::Tensor kernel_to_target(const torch::Tensor& f, const torch::Tensor& g, double& residual) {
  const torch::Tensor psf = f.to(torch::kCPU, torch::kFloat64).clamp_min(0);
  const torch::Tensor target = g.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor mirrored = target.flip({0, 1});
  torch::Tensor h = psf / psf.sum();
  for (int i = 0; i < kKernelIterations; ++i) {
    const torch::Tensor model = convolve_same(h, target).clamp_min(1e-30);
    h = h * convolve_same(psf / model, mirrored);
  }
  // Values the iterations drove towards 0 are set to 0: as float32 subnormals they would slow every
  // FFT of the decoder several times over.
  h = torch::where(h > 1e-9 * h.max(), h, torch::zeros_like(h));
  h = h / h.sum();
  residual = ((convolve_same(h, target) - psf).norm() / psf.norm()).item<double>();
  return h.to(f.scalar_type());
}

double restore_to_target(LocalStack& stack, double target_fwhm) {
  if (target_fwhm <= 0) return 0;
  double worst = 0;
  for (auto& psf : stack.psfs) {
    const std::int64_t size = std::min(psf.size(0), psf.size(1)) | 1;  // odd
    const torch::Tensor g = gaussian_kernel(std::min<std::int64_t>(size, 2 * static_cast<std::int64_t>(std::ceil(2 * target_fwhm)) + 1), target_fwhm);
    double residual = 0;
    const torch::Device device = psf.device();
    psf = kernel_to_target(psf, g, residual).to(device);
    worst = std::max(worst, residual);
  }
  return worst;
}

}  // namespace astroclear
