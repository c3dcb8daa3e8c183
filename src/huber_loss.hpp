// The masked Huber loss of sigma-scaled residuals (docs/design.md, "The model").
#pragma once

#include <torch/torch.h>

namespace astroclear {

/// Huber function of r: 0.5 r^2 for |r| <= delta, delta (|r| - 0.5 delta) above.
torch::Tensor huber(const torch::Tensor& r, double delta);

/// sum_i good_i * H_delta(y_i / sigma_i, yhat_i / sigma_i). Masked pixels contribute nothing
/// and receive exactly zero gradient. The caller divides by the global good-pixel count.
torch::Tensor masked_huber_sum(const torch::Tensor& yhat, const torch::Tensor& y, const torch::Tensor& sigma,
                               const torch::Tensor& good, double delta);

// Note [folded mask]: the trainer keeps two planes instead of three: target = good * y / sigma and
// weight = good / sigma. A masked pixel then has residual weight * yhat - target = 0 whatever yhat
// is, so it adds 0 to the loss and its gradient weight * H'(0) is exactly 0.

// Note [noise planes on the host]: once the folded planes exist, the loss never reads the sigmas
// or the mask again. So train and bench leave them on the host (LocalStack::to_for_training) and
// HuberTerms::make takes them to y's device one exposure at a time: two stack-sized planes fewer
// in GPU memory (4.7 GB for 33 x 4200^2) for a transfer of each plane once, when training starts.

/// Planes for the folded form of masked_huber_sum.
struct HuberTerms {
  torch::Tensor target;  ///< good * y / sigma
  torch::Tensor weight;  ///< good / sigma
  double delta = 1.0;

  /// The planes on y's device; `sigma` and `good` may be on another (the host), and are read one
  /// exposure (index 0) at a time.
  static HuberTerms make(const torch::Tensor& y, const torch::Tensor& sigma, const torch::Tensor& good, double delta);
  /// Same value as masked_huber_sum(yhat, y, sigma, good, delta).
  torch::Tensor sum(const torch::Tensor& yhat) const;
};

}  // namespace astroclear
