// Trainer: the training loop and its collectives (docs/design.md, "Exposure sharding").
#include "src/trainer.hpp"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <type_traits>

#include "mpi/all_reduce.hpp"
#include "common/error.hpp"

namespace astroclear {
namespace {

/// The key of a parameter in Adam's state map: the TensorImpl address as text in LibTorch 1.x
/// (what c10::guts::to_string makes of a pointer), the address itself in LibTorch 2.x.
template <class StateMap>
typename StateMap::key_type adam_key(const StateMap&, const torch::Tensor& p) {
  using Key = typename StateMap::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

}  // namespace

PsfDecoder::Mode choose_decoder(DecoderChoice choice, int fft_min_psf_size, std::int64_t psf_size) {
  switch (choice) {
    case DecoderChoice::kFft: return PsfDecoder::Mode::kFft;
    case DecoderChoice::kDirect: return PsfDecoder::Mode::kDirect;
    case DecoderChoice::kAuto: break;
  }
  return psf_size >= fft_min_psf_size ? PsfDecoder::Mode::kFft : PsfDecoder::Mode::kDirect;
}

Trainer::Trainer(const TrainConfig& config, const LocalStack& stack, mpi::Communicator& comm, torch::Device device,
                 const mpi::TileRanks* tiles)
    : config_(config),
      stack_(stack),
      comm_(comm),
      field_(comm, tiles),
      encoder_(stack.exposure_ids, stack.total_exposures, config),
      decoder_(stack.psfs, stack.height(), stack.width(), choose_decoder(config.decoder, config.fft_min_psf_size, largest_psf_side(stack.psfs)),
               device),
      device_(device) {
  config_.validate();
  encoder_->to(device);
  const mpi::TileRanks* tiled = field_.tiles();
  if (tiled) encoder_->tile(tiled->tile.halo, *tiled->exposure_group);
  if (config_.init == Init::kIdentity) {
    // Inverse-variance weight of each exposure from its median good sigma (over the field).
    std::vector<double> weights;
    for (double s : stack_.median_sigmas(tiled ? tiled->exposure_group.get() : nullptr)) weights.push_back(1.0 / (s * s));
    encoder_->initialise_from(stack_.images, torch::tensor(weights, torch::kFloat64).to(device), field_.exposure_sum());
  }
  terms_ = HuberTerms::make(stack_.images, stack_.sigmas, stack_.good, config_.huber_delta);
  optimizer_ = std::make_unique<torch::optim::Adam>(encoder_->parameters(),
                                                    torch::optim::AdamOptions(config_.learning_rate));
}

void Trainer::profile_stages(bool on) {
  profiling_ = on;
  stages_ = StageSeconds{};
}

void Trainer::mark(double& stage) {
  if (!profiling_) return;
  if (device_.is_cuda()) torch::cuda::synchronize();
  const auto now = std::chrono::steady_clock::now();
  stage += std::chrono::duration<double>(now - mark_).count();
  mark_ = now;
}

void Trainer::validate_on(const LocalStack& held_out) {
  held_out_.emplace(held_out, config_.huber_delta, decoder_.mode(), device_);
  track_.emplace(config_.validation);
}

void Trainer::warm_start(const torch::Tensor& latent) {
  torch::NoGradGuard no_grad;
  encoder_->set_prior((field_.tile_of(latent) / stack_.flux_unit).to(device_, torch::kFloat32).clamp_min(0).contiguous());
  encoder_->pointwise_weight.zero_();
  encoder_->pointwise_bias.zero_();
}

void Trainer::score(const torch::Tensor& latent) {
  const double loss = (*held_out_)(latent, comm_);
  track_->record(iteration_, loss, [&] { return field_.whole(field_.inner(latent) * stack_.flux_unit).clone(); });
}

void Trainer::step() {
  pending_losses_.push_back(compute_gradients());
  optimizer_->step();
  mark(stages_.optimizer);
  if (profiling_) ++stages_.iterations;
  // The forward pass made the latent image of the parameters before this step: score it now.
  if (latent_to_score_.defined()) {
    score(latent_to_score_);
    latent_to_score_ = torch::Tensor();
  }
  ++iteration_;
}

torch::Tensor Trainer::compute_gradients() {
  if (profiling_) mark_ = std::chrono::steady_clock::now();  // the stages start here
  optimizer_->zero_grad();
  torch::Tensor x = field_.frame(encoder_->forward(stack_.images, field_.exposure_sum()));
  if (track_ && track_->due(iteration_)) latent_to_score_ = x.detach();
  mark(stages_.encoder_forward);
  torch::Tensor loss = decoder_.huber_sum(x, terms_) / stack_.good_pixels;
  mark(stages_.decoder_and_loss);
  loss.backward();
  mark(stages_.backward);
  // One small all-reduce per iteration: the loss and the gradients of the replicated parameters.
  std::vector<torch::Tensor> parts{loss.detach().view({1})};
  for (const auto& p : encoder_->replicated_parameters()) parts.push_back(p.grad().view({-1}));
  torch::Tensor buffer = torch::cat(parts);
  mpi::all_reduce_sum_(buffer, comm_);
  std::int64_t offset = 1;
  for (auto& p : encoder_->replicated_parameters()) {
    p.mutable_grad().view({-1}).copy_(buffer.narrow(0, offset, p.numel()));
    offset += p.numel();
  }
  if (const mpi::TileRanks* tiled = field_.tiles()) {
    // The exposures' parameters see the whole field: their gradients are sums over the tiles.
    std::vector<torch::Tensor> sharded;
    for (const auto& p : encoder_->parameters()) {
      if (!encoder_->is_replicated(p)) sharded.push_back(p);
    }
    std::vector<torch::Tensor> grads;
    for (const auto& p : sharded) grads.push_back(p.grad().reshape({-1}));
    torch::Tensor all = torch::cat(grads);
    mpi::all_reduce_sum_(all, *tiled->exposure_group);
    std::int64_t at = 0;
    for (auto& p : sharded) {
      p.mutable_grad().view({-1}).copy_(all.narrow(0, at, p.numel()));
      at += p.numel();
    }
  }
  mark(stages_.reduce);
  return buffer[0];
}

const std::vector<double>& Trainer::loss_history() {
  if (!pending_losses_.empty()) {
    torch::Tensor values = torch::stack(pending_losses_).to(torch::kCPU, torch::kFloat64);
    for (std::int64_t i = 0; i < values.numel(); ++i) loss_history_.push_back(values[i].item<double>());
    pending_losses_.clear();
  }
  return loss_history_;
}

// Note [diverged training]: a learning rate far too large (or data the model cannot represent) can
// drive the loss to inf or NaN, after which every parameter is NaN and so is the image. The loss is
// checked wherever it is read back anyway (each progress line, every checkpoint's state, the
// result), so a diverged run stops within --log-every iterations, with an error naming the
// iteration, before a checkpoint or an output holds a non-finite value; the last checkpoint written
// before it stays in the folder.
void Trainer::check_loss_is_finite() {
  const std::vector<double>& losses = loss_history();
  const auto bad = std::find_if(losses.begin(), losses.end(), [](double v) { return !std::isfinite(v); });
  if (bad == losses.end()) return;
  std::ostringstream message;
  message << "training diverged: the loss is " << *bad << " at iteration " << (bad - losses.begin() + 1)
          << " (--learning-rate " << config_.learning_rate
          << "); nothing was written; earlier checkpoints, if any, are kept. Try a lower --learning-rate";
  throw CollectiveError(message.str());
}

void Trainer::train(const std::function<void(const TrainProgress&)>& progress,
                    const std::function<bool(int)>& keep_going) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const int first = iteration_;
  while (iteration_ < config_.iterations && !(track_ && track_->exhausted())) {
    step();
    if (progress && (iteration_ % config_.log_every == 0 || iteration_ == config_.iterations || iteration_ == 1)) {
      check_loss_is_finite();  // synchronises, so the timing below is honest
      const double loss = loss_history().back();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      TrainProgress p;
      p.iteration = iteration_;
      p.iterations = config_.iterations;
      p.loss = loss;
      p.ms_per_iteration = 1e3 * seconds / (iteration_ - first);
      p.eta_seconds = p.ms_per_iteration * 1e-3 * (config_.iterations - iteration_);
      if (track_ && !track_->empty()) {
        p.validating = true;
        p.held_out_loss = track_->last_loss();
        p.best_iteration = track_->best_iteration();
      }
      progress(p);
    }
    if (keep_going && !keep_going(iteration_)) return;  // stopped from outside: score nothing more
  }
  // The last latent image is scored even off the `every` grid: a kBest run may keep it.
  if (track_ && track_->due(iteration_, /*last=*/true) && !track_->exhausted()) {
    torch::NoGradGuard no_grad;
    score(field_.frame(encoder_->forward(stack_.images, field_.exposure_sum())));
  }
}

TrainerState Trainer::state() {
  check_loss_is_finite();
  TrainerState s;
  s.iteration = iteration_;
  s.loss_history = loss_history();
  auto& adam = optimizer_->state();
  for (const auto& item : encoder_->named_parameters()) {
    const torch::Tensor& p = item.value();
    TensorState t;
    t.name = item.key();
    t.sharded = !encoder_->is_replicated(p);
    t.value = p.detach().to(torch::kCPU).clone();
    const auto found = adam.find(adam_key(adam, p));
    if (found == adam.end()) {  // no step taken yet: Adam starts from zero moments
      t.exp_avg = torch::zeros_like(t.value);
      t.exp_avg_sq = torch::zeros_like(t.value);
    } else {
      const auto& moments = static_cast<const torch::optim::AdamParamState&>(*found->second);
      t.exp_avg = moments.exp_avg().to(torch::kCPU).clone();
      t.exp_avg_sq = moments.exp_avg_sq().to(torch::kCPU).clone();
      t.adam_step = moments.step();
    }
    s.tensors.push_back(std::move(t));
  }
  return s;
}

void Trainer::restore(const TrainerState& s) {
  const auto named = encoder_->named_parameters();
  if (named.size() != s.tensors.size()) {
    throw Error("checkpoint holds " + std::to_string(s.tensors.size()) + " parameter tensors; this network has " +
                std::to_string(named.size()));
  }
  torch::NoGradGuard no_grad;
  auto& adam = optimizer_->state();
  for (std::size_t i = 0; i < named.size(); ++i) {
    const TensorState& t = s.tensors[i];
    torch::Tensor p = named[i].value();
    if (t.name != named[i].key() || t.value.sizes() != p.sizes()) {
      throw Error("checkpoint tensor " + t.name + " " + c10::str(t.value.sizes()) + " does not fit this network's " +
                  named[i].key() + " " + c10::str(p.sizes()));
    }
    p.copy_(t.value);
    adam.erase(adam_key(adam, p));
    if (t.adam_step > 0) {
      auto moments = std::make_unique<torch::optim::AdamParamState>();
      moments->step(t.adam_step);
      moments->exp_avg(t.exp_avg.to(p.device()).clone());
      moments->exp_avg_sq(t.exp_avg_sq.to(p.device()).clone());
      adam[adam_key(adam, p)] = std::move(moments);
    }
  }
  iteration_ = s.iteration;
  pending_losses_.clear();
  loss_history_ = s.loss_history;
}

torch::Tensor Trainer::latent() {
  torch::NoGradGuard no_grad;
  return field_.whole(encoder_->forward(stack_.images, field_.exposure_sum()) * stack_.flux_unit);
}

torch::Tensor Trainer::result() {
  check_loss_is_finite();
  if (track_ && config_.validation.stop == StopRule::kBest && track_->best_latent().defined()) {
    return track_->best_latent();
  }
  return latent();
}

torch::Tensor Trainer::held_out_chi_residuals(const torch::Tensor& latent) {
  if (field_.tiled()) throw Error("chi residual maps are not made on tiles (--tiles): run them without tiles");
  if (!held_out_) return torch::zeros({0, stack_.height(), stack_.width()});
  return held_out_->chi((latent / stack_.flux_unit).to(stack_.images.device(), torch::kFloat32));
}

torch::Tensor Trainer::chi_residuals(const torch::Tensor& latent) {
  if (field_.tiled()) throw Error("chi residual maps are not made on tiles (--tiles): run them without tiles");
  torch::NoGradGuard no_grad;
  torch::Tensor yhat = decoder_.forward((latent / stack_.flux_unit).to(stack_.images.device(), torch::kFloat32));
  return (terms_.target - yhat * terms_.weight).to(torch::kCPU);
}

}  // namespace astroclear
