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
  terms.weight = torch::empty_like(y);
  terms.target = torch::empty_like(y);
  for (std::int64_t t = 0; t < y.size(0); ++t) {  // Note [noise planes on the host]
    const torch::Tensor weight = good[t].to(y.device()) / sigma[t].to(y.device());
    terms.weight[t].copy_(weight);
    terms.target[t].copy_(y[t] * weight);
  }
  terms.delta = delta;
  return terms;
}

torch::Tensor HuberTerms::sum(const torch::Tensor& yhat) const {
  // One call; LibTorch 1.13 still makes a per-pixel temporary for the Sum (PsfDecoder::huber_sum
  // runs it a few exposures at a time).
  return torch::huber_loss(yhat * weight, target, at::Reduction::Sum, delta);
}

}  // namespace astroclear
