// AstroClearNet's encoder: multi-scale depthwise branches, ReLU, BatchNorm, pointwise sum, ReLU.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "mpi/communicator.hpp"
#include "src/config.hpp"

namespace astroclear {

// Note [sharded encoder]: every parameter belongs to one exposure except the pointwise bias
// (docs/design.md, "Exposure sharding"). A rank holds the parameters of the exposures it owns, initialised from
// (seed, global exposure index, branch) alone, so any split of the exposures starts from the same
// network. forward() all-reduces the rank's partial pointwise sum before the bias and the ReLU.

// Note [bf16 encoder]: with precision = "bf16" the encoder computes in bfloat16 (8 significant
// bits) and keeps float32 where sums are long or the values are few:
// - bf16: a copy of the exposures (made once), the depthwise kernels and biases (cast from the
//   float32 parameters each iteration), the convolution, ReLU and BatchNorm outputs, and the
//   gradients that flow back through them;
// - float32: the parameters, their gradients and Adam's moments, BatchNorm's statistics and the
//   pointwise sum's accumulation (LibTorch and cuDNN accumulate bf16 in float32), the sum over
//   branches, the all-reduce, the decoder and the loss (FFTs and sums over the whole stack).
// On a GPU this halves the encoder's saved activations (GpuMemory.* counts them) and the bytes
// the encoder's memory-bound kernels move. A bf16 run ends about as far from a float32 one as a
// float32 run on another rank count does, well inside the spread of seeds: the training's own
// sensitivity to rounding, not bf16, sets how far apart two runs end (docs/performance.md, "bf16",
// has the figures; Precision.Bf16EncoderStaysCloseToFloat32 holds the bound). astroclear's CPU
// kernels are float32 only, so on CPUs bf16 runs LibTorch's slower operations: the option is for
// GPUs.

// Note [warm start]: training can start from a classical restoration x_c (the output of `rl` or
// `mm`, the combination of AstroClearNet and ImageMM its authors name as the next step). The
// encoder then computes ReLU(sum + bias + x_c) and its pointwise weights and bias start at 0, so
// the latent image starts exactly at x_c, and the network learns a correction to it under the
// robust Huber loss, with the held-out exposures deciding how far to go: at worst it keeps x_c.

/// F_theta: exposures (n, H, W) -> latent image (H, W), non-negative.
struct EncoderImpl : torch::nn::Module {
  /// `exposure_ids`: the global indices this rank owns; `total_exposures`: n over all ranks.
  EncoderImpl(const std::vector<int>& exposure_ids, int total_exposures, const TrainConfig& config);

  /// Collective. Data-dependent start for init = "identity": each branch starts as the identity
  /// (centred delta kernel, BatchNorm undoing its own normalisation) and the pointwise weights
  /// as the inverse-variance weights of the exposures, so that x starts at the weighted mean of
  /// the exposures. `weights`: this rank's exposures' 1/sigma^2 (n).
  void initialise_from(const torch::Tensor& images, const torch::Tensor& weights, mpi::Communicator& comm);

  /// Partial pointwise sum of this rank's exposures (n, H, W) -> (H, W), before the all-reduce.
  torch::Tensor partial_sum(const torch::Tensor& images);
  /// The latent image: ReLU(all-reduce(partial_sum) + bias + prior). Collective.
  torch::Tensor forward(const torch::Tensor& images, mpi::Communicator& comm);

  /// Note [tiles]: from now on the images are a tile's frames (n, h + 2 halo, w + 2 halo), whose
  /// ring holds the neighbouring tiles' pixels (reflected beyond the field's edges); the branches
  /// read their windows of it, BatchNorm takes its statistics over `exposure_group` (Note [field
  /// batch norm]), and the latent image is the tile's (h, w). Before the first forward.
  void tile(std::int64_t halo, mpi::Communicator& exposure_group);

  /// Note [warm start]: a fixed image (H, W), the same on every rank, added before the final ReLU.
  void set_prior(torch::Tensor prior) { prior_ = std::move(prior); }

  /// Parameters whose gradients must be summed over ranks (the pointwise bias).
  std::vector<torch::Tensor> replicated_parameters() const { return {pointwise_bias}; }
  /// Whether `p` is one of replicated_parameters(); every other parameter is sharded by exposure.
  bool is_replicated(const torch::Tensor& p) const { return p.is_same(pointwise_bias); }

  std::vector<int> kernel_sizes;
  std::vector<torch::Tensor> depthwise_weight;  ///< per branch (n, 1, k, k)
  std::vector<torch::Tensor> depthwise_bias;    ///< per branch (n)
  std::vector<torch::Tensor> norm_weight;       ///< per branch (n), BatchNorm gamma
  std::vector<torch::Tensor> norm_bias;         ///< per branch (n), BatchNorm beta
  torch::Tensor pointwise_weight;               ///< (n, branches)
  torch::Tensor pointwise_bias;                 ///< (1), replicated on every rank

 private:
  torch::Tensor branch(std::size_t b, const torch::Tensor& images);  // ReLU(conv) before BatchNorm
  torch::Tensor padded(std::size_t b, const torch::Tensor& images);  // reflect-padded for branch b, cached
  torch::Tensor in_bf16(const torch::Tensor& images);                 // the bf16 copy of the exposures, cached
  /// Forget the cached copies of `images` when they are not the images they were made from.
  void check_cache(const torch::Tensor& images);

  torch::ScalarType compute_type_;  ///< of the convolutions and activations: float32 or bfloat16
  torch::Tensor prior_;              ///< Note [warm start]; undefined: none
  std::int64_t halo_ = 0;                           ///< Note [tiles]: of the frames
  mpi::Communicator* exposure_group_ = nullptr;     ///< Note [tiles]; nullptr: the whole field

  // Note [padded inputs]: the exposures never change during training, so where astroclear's CPU
  // kernels run, each branch's reflect-padded copy is made once and kept (one stack-sized tensor
  // per branch) instead of padding three stack-sized tensors every iteration. On GPUs memory is
  // the scarcer resource and a pad takes a fraction of a millisecond, so it is redone, in the
  // backward pass too (Note [re-padded inputs] in depthwise_conv.cpp).
  // The caches (these padded copies, and the bf16 copy of Note [bf16 encoder]) hold the images
  // they were made from (so their storage cannot be reused by another tensor) and their version
  // counter (so an in-place change invalidates them).
  torch::Tensor cache_source_;
  std::int64_t cache_version_ = -1;
  std::vector<torch::Tensor> padded_;
  torch::Tensor bf16_images_;
};
TORCH_MODULE(Encoder);

}  // namespace astroclear
