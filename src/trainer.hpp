// Trainer: Adam on the encoder of this rank's exposures, with the sharding collectives of docs/design.md.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "mpi/communicator.hpp"
#include "mpi/tile_grid.hpp"
#include "src/config.hpp"
#include "src/encoder.hpp"
#include "src/field_view.hpp"
#include "src/huber_loss.hpp"
#include "src/psf_decoder.hpp"
#include "src/stack.hpp"
#include "src/validation.hpp"

namespace astroclear {

/// What the trainer reports every `log_every` iterations (the same values on every rank).
struct TrainProgress {
  int iteration = 0;   ///< iterations done
  int iterations = 0;  ///< iterations planned
  double loss = 0.0;   ///< global loss of the latest iteration
  double ms_per_iteration = 0.0;
  double eta_seconds = 0.0;
  bool validating = false;    ///< held-out exposures are scored (the two below are meaningful)
  double held_out_loss = 0.0;  ///< the latest held-out loss per good pixel
  int best_iteration = -1;     ///< the iteration of the lowest held-out loss so far
};

/// Seconds spent in each stage of the iterations run with profiling on (Trainer::profile_stages).
/// Communication is inside encoder_forward and backward (the image all-reduces) and reduce (the
/// loss and the replicated gradients); Communicator::stats() has it on its own. With the FFT
/// decoder, decoder_and_loss holds the decoder's backward too (Note [chunked decoder loss]).
struct StageSeconds {
  double encoder_forward = 0, decoder_and_loss = 0, backward = 0, reduce = 0, optimizer = 0;
  int iterations = 0;
};

/// One trained tensor of this rank with its Adam state, as CPU copies (checkpoints).
struct TensorState {
  std::string name;
  bool sharded = true;  ///< axis 0 = this rank's exposures, in exposure_ids order; false = replicated
  torch::Tensor value, exp_avg, exp_avg_sq;
  std::int64_t adam_step = 0;
};

/// What a checkpoint takes from one rank's trainer and gives back to it (docs/design.md, "Checkpoints").
struct TrainerState {
  int iteration = 0;
  std::vector<double> loss_history;
  std::vector<TensorState> tensors;  ///< in the encoder's parameter order
};

/// Trains one shared encoder on the exposures of `stack` (this rank's), all-reducing with `comm`.
/// On one process `comm` is a communicator of size 1 and every collective returns at once.
class Trainer {
 public:
  /// `stack` must be normalised (LocalStack::normalise), its images and PSFs on `device`; its sigmas
  /// and mask are read once, here, and may stay on the host (LocalStack::to_for_training).
  /// With `tiles` (a grid of more than one tile, Note [tiles]) the stack holds this rank's tile
  /// frames, `comm` is every rank, and the latent image of the forward pass is the tile's; latent(),
  /// result() and the held-out record's kept image are the whole field on rank 0 (FieldView::whole)
  /// and empty on the other ranks.
  Trainer(const TrainConfig& config, const LocalStack& stack, mpi::Communicator& comm, torch::Device device,
          const mpi::TileRanks* tiles = nullptr);

  /// Scores the latent image on `held_out` (this rank's held-out exposures, normalised with the
  /// fit's flux unit, images and PSFs on the device; it must outlive the trainer) as
  /// config.validation says (Notes [held-out exposures], [early stopping]).
  void validate_on(const LocalStack& held_out);

  /// Note [warm start]: training starts at `latent` (H, W; calibrated flux, >= 0, like result()),
  /// which the encoder adds before its final ReLU, with its pointwise weights and bias set to 0.
  /// Before the first iteration.
  void warm_start(const torch::Tensor& latent);

  /// Runs the remaining iterations up to config.iterations, or until the held-out loss has not
  /// improved for config.validation.patience iterations (StopRule::kBest). Collective. After every
  /// iteration `keep_going(iteration)` (when given; it must answer the same on every rank) may
  /// stop early. Ends by scoring the last latent image when it is due and not yet scored.
  void train(const std::function<void(const TrainProgress&)>& progress = {},
             const std::function<bool(int)>& keep_going = {});
  /// One iteration: compute_gradients() then Adam. Collective.
  void step();
  /// Forward, loss, backward and the all-reduce of the replicated gradients, leaving every
  /// parameter's gradient in place; returns the global loss (a device scalar). Collective.
  torch::Tensor compute_gradients();

  int iteration() const { return iteration_; }
  /// Global loss of every iteration so far (synchronises with the device).
  const std::vector<double>& loss_history();
  /// Note [diverged training]: throws CollectiveError naming the first iteration whose loss is not
  /// finite. The loss is all-reduced, so every rank throws at the same call. Synchronises.
  void check_loss_is_finite();
  /// x = F_theta(y) in calibrated flux units, (H, W), on the CPU. Collective.
  torch::Tensor latent();
  /// The run's result: with held-out exposures and StopRule::kBest the kept latent image of the
  /// lowest held-out loss, else latent(). Collective.
  torch::Tensor result();
  /// The held-out record, or nullptr without held-out exposures.
  const ValidationTrack* validation() const { return track_ ? &*track_ : nullptr; }
  ValidationTrack* validation() { return track_ ? &*track_ : nullptr; }
  /// Chi residuals good * (y - f * x) / sigma of this rank's fitted exposures for the latent image
  /// `latent` (calibrated flux, as latent() and result() give it), (n, H, W), on the CPU.
  torch::Tensor chi_residuals(const torch::Tensor& latent);
  /// The same for this rank's held-out exposures (none without validate_on).
  torch::Tensor held_out_chi_residuals(const torch::Tensor& latent);

  /// Copies of every parameter, Adam moment and step, the iteration and the loss history.
  TrainerState state();
  /// Continues from `state` (this rank's exposures): after it the next step() is exactly the one
  /// the run that saved it would have taken. Throws Error when names or shapes differ.
  void restore(const TrainerState& state);

  /// With profiling on, every stage waits for the device before its time is taken (slower: for
  /// benchmarks only). Resets the accumulated times.
  void profile_stages(bool on);
  const StageSeconds& stage_seconds() const { return stages_; }

  const PsfDecoder& decoder() const { return decoder_; }
  Encoder& encoder() { return encoder_; }

 private:
  TrainConfig config_;
  const LocalStack& stack_;
  mpi::Communicator& comm_;
  FieldView field_;  ///< the whole field, or this rank's tile of it (Note [tiles])
  Encoder encoder_;
  PsfDecoder decoder_;
  HuberTerms terms_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  int iteration_ = 0;
  std::vector<torch::Tensor> pending_losses_;  ///< device scalars not yet read back
  std::vector<double> loss_history_;
  torch::Device device_;
  std::optional<HeldOutLoss> held_out_;
  std::optional<ValidationTrack> track_;
  torch::Tensor latent_to_score_;  ///< this iteration's latent image (its frame on tiles), when it is to be scored
  /// Scores `latent` (normalised, on the device) as the latent image after iteration_ iterations.
  void score(const torch::Tensor& latent);
  bool profiling_ = false;
  StageSeconds stages_;
  std::chrono::steady_clock::time_point mark_;
  /// Profiling: waits for the device and adds the time since the last mark to `stage`.
  void mark(double& stage);
};

/// The decoder `choice` picks for PSFs whose largest side is `psf_size` (kAuto: the FFT from
/// `fft_min_psf_size` up).
PsfDecoder::Mode choose_decoder(DecoderChoice choice, int fft_min_psf_size, std::int64_t psf_size);

}  // namespace astroclear
