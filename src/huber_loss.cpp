// Masked Huber loss, plain and folded (see Note [folded mask]).
#include "src/huber_loss.hpp"

namespace astroclear {

torch::Tensor huber(const torch::Tensor& r, double delta) {
  torch::Tensor a = r.abs();
  return torch::where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta));
}

torch::Tensor masked_huber_sum(const torch::Tensor& yhat, const torch::Tensor& y, const torch::Tensor& sigma,
                               const torch::Tensor& good, double delta) {
  return (good * huber(y / sigma - yhat / sigma, delta)).sum();
}

HuberTerms HuberTerms::make(const torch::Tensor& y, const torch::Tensor& sigma, const torch::Tensor& good,
                            double delta) {
  HuberTerms terms;
  terms.weight = good / sigma;
  terms.target = y * terms.weight;
  terms.delta = delta;
  return terms;
}

torch::Tensor HuberTerms::sum(const torch::Tensor& yhat) const {
  // at::huber_loss is one fused kernel; with reduction Sum it needs no temporary per pixel.
  return torch::huber_loss(yhat * weight, target, at::Reduction::Sum, delta);
}

}  // namespace astroclear
