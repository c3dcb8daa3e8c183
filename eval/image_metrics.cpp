// image_metrics: relative L2, PSNR and SSIM (Wang et al. 2004, K1 = 0.01, K2 = 0.03).
#include "eval/image_metrics.hpp"

#include <cmath>

#include "common/error.hpp"

namespace astroclear {
namespace {

torch::Tensor gaussian_window(int size, double sigma) {
  torch::Tensor r = torch::arange(size, torch::kFloat64) - (size - 1) / 2.0;
  torch::Tensor g = torch::exp(-r * r / (2 * sigma * sigma));
  torch::Tensor w = g.view({-1, 1}) * g.view({1, -1});
  return (w / w.sum()).view({1, 1, size, size});
}

}  // namespace

ImageMetrics image_metrics(const torch::Tensor& image, const torch::Tensor& truth, double softening, int border) {
  if (image.sizes() != truth.sizes() || image.dim() != 2) {
    throw Error("image metrics: the image is " + c10::str(image.sizes()) + ", the truth " + c10::str(truth.sizes()));
  }
  if (!(softening > 0)) throw Error("image metrics: the asinh softening must be > 0");
  const std::int64_t h = image.size(0) - 2 * border, w = image.size(1) - 2 * border;
  if (h < 16 || w < 16) throw Error("image metrics: the border leaves less than 16 x 16 pixels");
  torch::NoGradGuard no_grad;
  torch::Tensor a = torch::nan_to_num(image.to(torch::kFloat64), 0.0, 0.0, 0.0).narrow(0, border, h).narrow(1, border, w);
  torch::Tensor t = truth.to(torch::kFloat64).narrow(0, border, h).narrow(1, border, w);

  ImageMetrics m;
  m.relative_l2 = ((a - t).norm() / t.norm()).item<double>();
  torch::Tensor sa = torch::asinh(a / softening), st = torch::asinh(t / softening);
  const double range = (st.max() - st.min()).item<double>();
  const double mse = (sa - st).pow(2).mean().item<double>();
  m.psnr = 10 * std::log10(range * range / std::max(mse, 1e-300));

  const torch::Tensor window = gaussian_window(11, 1.5);
  auto blur = [&](const torch::Tensor& x) { return torch::conv2d(x.view({1, 1, h, w}), window); };
  const double c1 = std::pow(0.01 * range, 2), c2 = std::pow(0.03 * range, 2);
  torch::Tensor mu_a = blur(sa), mu_t = blur(st);
  torch::Tensor var_a = blur(sa * sa) - mu_a * mu_a, var_t = blur(st * st) - mu_t * mu_t;
  torch::Tensor cov = blur(sa * st) - mu_a * mu_t;
  torch::Tensor ssim = ((2 * mu_a * mu_t + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_t * mu_t + c1) * (var_a + var_t + c2));
  m.ssim = ssim.mean().item<double>();
  return m;
}

}  // namespace astroclear
