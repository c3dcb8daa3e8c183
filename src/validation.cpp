// HeldOutLoss and ValidationTrack (Notes [held-out exposures], [early stopping]).
#include "src/validation.hpp"

#include <cmath>

#include "common/error.hpp"

namespace astroclear {

HeldOutLoss::HeldOutLoss(const LocalStack& held_out, double huber_delta, PsfDecoder::Mode mode, torch::Device device)
    : held_out_(held_out), delta_(huber_delta) {
  if (held_out.local_count() == 0) return;
  decoder_.emplace(held_out.psfs, held_out.height(), held_out.width(), mode, device);
  terms_ = HuberTerms::make(held_out.images, held_out.sigmas, held_out.good, huber_delta);
}

double HeldOutLoss::operator()(const torch::Tensor& latent, mpi::Communicator& comm) const {
  torch::NoGradGuard no_grad;
  double sum = 0;
  if (decoder_) sum = decoder_->huber_sum(latent, terms_).item<double>();
  comm.all_reduce_sum(&sum, 1);
  return held_out_.good_pixels > 0 ? sum / held_out_.good_pixels : 0.0;
}

std::vector<HeldOutLoss::ExposureFit> HeldOutLoss::per_exposure(const torch::Tensor& latent) const {
  torch::NoGradGuard no_grad;
  std::vector<ExposureFit> fits;
  if (!decoder_) return fits;
  const torch::Tensor yhat = decoder_->forward(latent);
  for (std::int64_t t = 0; t < held_out_.local_count(); ++t) {
    const torch::Tensor good = held_out_.good[t].to(yhat.device());
    const torch::Tensor sigma = held_out_.sigmas[t].to(yhat.device());
    const torch::Tensor y = held_out_.images[t];
    const torch::Tensor chi = good * (y - yhat[t]) / sigma;
    ExposureFit fit;
    fit.huber_sum = masked_huber_sum(yhat[t], y, sigma, good, delta_).item<double>();
    fit.good_pixels = good.sum().item<double>();
    fit.chi_sum = chi.sum().item<double>();
    fit.chi2_sum = (chi * chi).sum().item<double>();
    fit.outliers = (chi.abs() > 3).sum().item<double>();
    fits.push_back(fit);
  }
  return fits;
}

torch::Tensor HeldOutLoss::chi(const torch::Tensor& latent) const {
  torch::NoGradGuard no_grad;
  if (!decoder_) return torch::zeros({0, held_out_.height(), held_out_.width()});
  return (terms_.target - decoder_->forward(latent) * terms_.weight).to(torch::kCPU);
}

bool ValidationTrack::due(int iteration, bool last) const {
  if (!iterations_.empty() && iterations_.back() >= iteration) return false;
  return last || iteration % config_.every == 0;
}

void ValidationTrack::record(int iteration, double loss, const std::function<torch::Tensor()>& latent) {
  iterations_.push_back(iteration);
  losses_.push_back(loss);
  if (best_ >= 0 && !(loss < losses_[best_])) return;
  best_ = static_cast<int>(losses_.size()) - 1;
  if (config_.stop == StopRule::kBest) best_latent_ = latent();
}

bool ValidationTrack::exhausted() const {
  return config_.stop == StopRule::kBest && best_ >= 0 &&
         iterations_.back() - iterations_[best_] >= config_.patience;
}

void ValidationTrack::restore(std::vector<std::int64_t> iterations, std::vector<double> losses,
                              torch::Tensor best_latent) {
  if (iterations.size() != losses.size()) throw Error("validation record: iterations and losses differ in length");
  iterations_ = std::move(iterations);
  losses_ = std::move(losses);
  best_ = -1;
  for (std::size_t k = 0; k < losses_.size(); ++k) {
    if (best_ < 0 || losses_[k] < losses_[best_]) best_ = static_cast<int>(k);
  }
  best_latent_ = std::move(best_latent);
}

std::string ValidationTrack::stop_reason(int iteration, int limit) const {
  if (best_ < 0) return "no held-out score was recorded";
  const std::string best = "lowest held-out loss " + std::to_string(best_loss()) + " at iteration " +
                           std::to_string(best_iteration());
  if (config_.stop == StopRule::kLast) return "the last iteration (" + std::to_string(iteration) + "), --stop last; " + best;
  if (exhausted()) {
    return "iteration " + std::to_string(best_iteration()) + " kept: " + best + ", none lower in the " +
           std::to_string(iterations_.back() - best_iteration()) + " iterations after it (--patience " +
           std::to_string(config_.patience) + ")";
  }
  return "iteration " + std::to_string(best_iteration()) + " kept: " + best + " when the iteration limit (" +
         std::to_string(limit) + ") was reached";
}

}  // namespace astroclear
