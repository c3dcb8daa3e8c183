// Image metrics of a restored image against the truth: relative L2, and PSNR and SSIM on an asinh stretch.
#pragma once

#include <torch/torch.h>

namespace astroclear {

struct ImageMetrics {
  double relative_l2 = 0;  ///< ||image - truth|| / ||truth||, linear flux
  double psnr = 0;         ///< dB, asinh stretch, peak = the stretched truth's range
  double ssim = 0;         ///< mean SSIM (Gaussian window sigma 1.5 px), asinh stretch
};

/// Both (H, W), compared `border` pixels inside the edges. The stretch is asinh(v / softening):
/// linear within a few `softening` (use the noise level), logarithmic above, so faint structure
/// and bright cores both count. Non-finite pixels of `image` count as 0.
ImageMetrics image_metrics(const torch::Tensor& image, const torch::Tensor& truth, double softening, int border);

}  // namespace astroclear
