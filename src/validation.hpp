// Held-out exposures: how well a latent image predicts exposures the fit never saw, and when to stop.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/config.hpp"
#include "mpi/communicator.hpp"
#include "src/psf_decoder.hpp"
#include "src/stack.hpp"

namespace astroclear {

// Note [held-out exposures]: real data has no truth, but a stack has many exposures of the same
// sky. Some of them are held out: they take no part in the fit (not in the loss, and for
// AstroClearNet not as encoder inputs either), and a latent image x is scored by how well it
// predicts them, the masked Huber loss per good pixel of H(y/sigma, (f * x)/sigma) over the held-
// out exposures: the misfit of a prediction of data the method never saw. A restoration that
// fits the noise of the exposures it saw, or invents sources, predicts the others worse; one that
// is still too smooth predicts them worse too. So the held-out loss falls, reaches a minimum and
// rises again, and the minimum is where to stop. It is summed over the ranks that hold held-out
// exposures, so any split gives the same value to float rounding.
//
// Note [early stopping]: every `every` iterations the current latent image is scored; with
// StopRule::kBest the run keeps the latent image of the lowest score so far and ends once
// `patience` iterations have passed without a lower one (or at the iteration limit), and its
// output is that kept image. With kLast it runs to the limit and its output is the last image;
// the scores are still recorded. The record (every score, and the kept image) goes into
// checkpoints, so a resumed run continues it exactly.

/// The held-out loss of latent images (Note [held-out exposures]) for this rank's held-out
/// exposures, which may be none.
class HeldOutLoss {
 public:
  /// `held_out` normalised like the fit's exposures (same flux unit), its images and PSFs on
  /// `device`. `good_pixels` of it counts over all ranks.
  HeldOutLoss(const LocalStack& held_out, double huber_delta, PsfDecoder::Mode mode, torch::Device device);

  /// Collective. The loss per good held-out pixel of `latent` (H, W), in the stack's normalised
  /// units, on the held-out images' device.
  double operator()(const torch::Tensor& latent, mpi::Communicator& comm) const;

  /// This rank's exposures one by one: per exposure, the Huber loss sum, the good pixels, and the
  /// sums of chi and chi^2 and the count of |chi| > 3, with chi = good (y - f * x) / sigma.
  struct ExposureFit {
    double huber_sum = 0, good_pixels = 0, chi_sum = 0, chi2_sum = 0, outliers = 0;
  };
  std::vector<ExposureFit> per_exposure(const torch::Tensor& latent) const;
  /// Chi maps good (y - f * x) / sigma of this rank's held-out exposures for `latent`
  /// (normalised), (n, H, W), on the CPU.
  torch::Tensor chi(const torch::Tensor& latent) const;

 private:
  const LocalStack& held_out_;
  double delta_;
  std::optional<PsfDecoder> decoder_;  ///< none where this rank holds no held-out exposure
  HuberTerms terms_;
};

/// The held-out losses of one run and the latent image it keeps (Note [early stopping]).
class ValidationTrack {
 public:
  explicit ValidationTrack(const ValidationConfig& config) : config_(config) {}

  /// Whether the latent image after `iteration` iterations is to be scored: not scored yet, and
  /// on the `every` grid or the `last` of the run.
  bool due(int iteration, bool last = false) const;
  /// Records the score of the latent image after `iteration` iterations; `latent` (calibrated,
  /// on the CPU) is made only when asked for, when this score is the lowest so far.
  void record(int iteration, double loss, const std::function<torch::Tensor()>& latent);
  /// A kBest run has gone `patience` iterations past its lowest score.
  bool exhausted() const;

  const std::vector<std::int64_t>& iterations() const { return iterations_; }
  const std::vector<double>& losses() const { return losses_; }
  bool empty() const { return iterations_.empty(); }
  int best_iteration() const { return best_ < 0 ? -1 : static_cast<int>(iterations_[best_]); }
  double best_loss() const { return best_ < 0 ? 0.0 : losses_[best_]; }
  double last_loss() const { return losses_.empty() ? 0.0 : losses_.back(); }
  /// The kept latent image (kBest), undefined before the first score or with kLast.
  const torch::Tensor& best_latent() const { return best_latent_; }
  /// Continues a record read from a checkpoint.
  void restore(std::vector<std::int64_t> iterations, std::vector<double> losses, torch::Tensor best_latent);
  /// Why the run ended where it did, for the log and the output header.
  std::string stop_reason(int iteration, int limit) const;

 private:
  ValidationConfig config_;
  std::vector<std::int64_t> iterations_;
  std::vector<double> losses_;
  int best_ = -1;  ///< index into losses_
  torch::Tensor best_latent_;
};

}  // namespace astroclear
