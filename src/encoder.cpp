// EncoderImpl: parameters per exposure and branch, the forward pass, and both initialisations.
#include "src/encoder.hpp"

#include <cmath>
#include <random>

#include "common/error.hpp"

#include "mpi/all_reduce.hpp"
#include "src/depthwise_conv.hpp"
#include "src/pointwise_sum.hpp"
#include "src/sync_batch_norm.hpp"

namespace astroclear {
namespace {

constexpr double kBatchNormEps = 1e-5;

/// A generator that depends on (seed, exposure, branch) only: the same on every rank and device.
std::mt19937_64 generator_for(std::uint64_t seed, int exposure, int branch) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(exposure), static_cast<std::uint32_t>(branch + 1000)};
  return std::mt19937_64(seq);
}

torch::Tensor uniform(std::mt19937_64& rng, std::int64_t count, double bound) {
  std::uniform_real_distribution<double> dist(-bound, bound);
  torch::Tensor t = torch::empty({count}, torch::kFloat64);
  auto* p = t.data_ptr<double>();
  for (std::int64_t i = 0; i < count; ++i) p[i] = dist(rng);
  return t.to(torch::kFloat32);
}

}  // namespace

EncoderImpl::EncoderImpl(const std::vector<int>& exposure_ids, int total_exposures, const TrainConfig& config)
    : kernel_sizes(config.kernel_sizes),
      compute_type_(config.precision == Precision::kBf16 ? torch::kBFloat16 : torch::kFloat32) {
  const auto n = static_cast<std::int64_t>(exposure_ids.size());
  const auto branches = static_cast<std::int64_t>(kernel_sizes.size());
  const bool identity = config.init == Init::kIdentity;
  torch::Tensor point = torch::empty({n, branches});
  // PyTorch's default Conv2d initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and bias.
  const double point_bound = 1.0 / std::sqrt(static_cast<double>(total_exposures * branches));
  for (std::int64_t b = 0; b < branches; ++b) {
    const std::int64_t k = kernel_sizes[b];
    torch::Tensor weight = torch::empty({n, 1, k, k});
    torch::Tensor bias = torch::zeros({n});
    for (std::int64_t t = 0; t < n; ++t) {
      auto rng = generator_for(config.seed, exposure_ids[t], static_cast<int>(b));
      if (identity) {
        // A centred delta with a small perturbation that lets the branches differ.
        torch::Tensor w = uniform(rng, k * k, 1e-2 / static_cast<double>(k * k)).view({k, k});
        w[k / 2][k / 2] += 1.0;
        weight[t][0].copy_(w);
      } else {
        weight[t][0].copy_(uniform(rng, k * k, 1.0 / static_cast<double>(k)).view({k, k}));
        bias[t] = uniform(rng, 1, 1.0 / static_cast<double>(k))[0];
        point[t][b] = uniform(rng, 1, point_bound)[0];
      }
    }
    depthwise_weight.push_back(register_parameter("depthwise_weight_" + std::to_string(b), weight));
    depthwise_bias.push_back(register_parameter("depthwise_bias_" + std::to_string(b), bias));
    norm_weight.push_back(register_parameter("norm_weight_" + std::to_string(b), torch::ones({n})));
    norm_bias.push_back(register_parameter("norm_bias_" + std::to_string(b), torch::zeros({n})));
  }
  if (identity) point.fill_(1.0 / static_cast<double>(total_exposures * branches));
  pointwise_weight = register_parameter("pointwise_weight", point);
  auto rng = generator_for(config.seed, -1, -1);
  pointwise_bias = register_parameter("pointwise_bias", identity ? torch::zeros({1}) : uniform(rng, 1, point_bound));
}

void EncoderImpl::initialise_from(const torch::Tensor& images, const torch::Tensor& weights, mpi::Communicator& comm) {
  torch::NoGradGuard no_grad;
  double total = weights.sum().item<double>();
  comm.all_reduce_sum(&total, 1);
  const double branches = static_cast<double>(kernel_sizes.size());
  for (std::size_t b = 0; b < kernel_sizes.size(); ++b) {
    torch::Tensor h = branch(b, images).to(torch::kFloat32);  // (1, n, H, W)
    torch::Tensor mean, var;
    if (exposure_group_ != nullptr) {  // Note [field batch norm]
      std::tie(mean, var) = field_moments(h, *exposure_group_);
      mean = mean.to(h.device(), torch::kFloat32);
      var = var.to(h.device(), torch::kFloat32);
    } else {
      mean = h.mean({0, 2, 3});
      var = h.var({0, 2, 3}, /*unbiased=*/false);
    }
    norm_weight[b].copy_(torch::sqrt(var + kBatchNormEps));
    norm_bias[b].copy_(mean);
    pointwise_weight.select(1, static_cast<std::int64_t>(b)).copy_(weights.to(torch::kFloat32) / (total * branches));
  }
}

void EncoderImpl::check_cache(const torch::Tensor& images) {
  const auto version = static_cast<std::int64_t>(images._version());
  if (!cache_source_.defined() || !cache_source_.is_same(images) || cache_version_ != version) {
    padded_.assign(kernel_sizes.size(), torch::Tensor());
    bf16_images_ = torch::Tensor();
    cache_source_ = images;
    cache_version_ = version;
  }
}

void EncoderImpl::tile(std::int64_t halo, mpi::Communicator& exposure_group) {
  if (halo < kernel_halo(kernel_sizes)) {
    throw Error("encoder: a tile's halo of " + std::to_string(halo) + " px is narrower than the largest branch's");
  }
  halo_ = halo;
  exposure_group_ = &exposure_group;
}

torch::Tensor EncoderImpl::padded(std::size_t b, const torch::Tensor& images) {
  // Note [padded inputs]; on a tile, the branch's window of the frame (Note [tiles])
  check_cache(images);
  if (!padded_[b].defined()) {
    const std::int64_t pad = kernel_sizes[b] / 2;
    padded_[b] = exposure_group_ != nullptr ? frame_window(images.unsqueeze(0), halo_, pad).contiguous()
                                            : reflect_pad(images.unsqueeze(0), pad);
  }
  return padded_[b];
}

torch::Tensor EncoderImpl::in_bf16(const torch::Tensor& images) {
  // Note [bf16 encoder]; rounded once and kept beside the float32 exposures (half a plane more).
  check_cache(images);
  if (!bf16_images_.defined()) bf16_images_ = images.to(torch::kBFloat16);
  return bf16_images_;
}

// The ReLU runs in place: no convolution keeps its output for the backward pass, which lowers the
// CPU's peak memory (docs/performance.md); the GPU path's peak, in the backward, is unchanged.
torch::Tensor EncoderImpl::branch(std::size_t b, const torch::Tensor& images) {
  const torch::Tensor& weight = depthwise_weight[b];
  const torch::Tensor& bias = depthwise_bias[b];
  const bool tiled = exposure_group_ != nullptr;
  if (compute_type_ == torch::kBFloat16 && tiled) {
    return framed_depthwise_conv2d(in_bf16(images).unsqueeze(0), halo_, weight.to(compute_type_), bias.to(compute_type_))
        .relu_();
  }
  if (compute_type_ == torch::kBFloat16) {  // Note [bf16 encoder]
    return reflect_padded_depthwise_conv2d(in_bf16(images).unsqueeze(0), weight.to(compute_type_),
                                           bias.to(compute_type_))
        .relu_();
  }
  const torch::Tensor input = images.unsqueeze(0);  // (1, n, H, W)
  if (runs_fast_cpu_kernel(input, weight, bias)) return depthwise_conv2d(padded(b, images), weight, bias).relu_();
  if (tiled) return framed_depthwise_conv2d(input, halo_, weight, bias).relu_();
  return reflect_padded_depthwise_conv2d(input, weight, bias).relu_();
}

torch::Tensor EncoderImpl::partial_sum(const torch::Tensor& images) {
  torch::Tensor z;
  for (std::size_t b = 0; b < kernel_sizes.size(); ++b) {
    torch::Tensor h = exposure_group_ != nullptr  // Note [field batch norm]
                          ? field_batch_norm(branch(b, images), norm_weight[b], norm_bias[b], kBatchNormEps,
                                             *exposure_group_)
                          : torch::batch_norm(branch(b, images), norm_weight[b], norm_bias[b], {}, {},
                                              /*training=*/true, 0.1, kBatchNormEps, /*cudnn_enabled=*/true);
    // (1, 1, H, W): the pointwise sum over this branch's channels
    torch::Tensor part = pointwise_sum(h, pointwise_weight.select(1, static_cast<std::int64_t>(b)).to(compute_type_))
                             .to(torch::kFloat32);
    z = z.defined() ? z + part : part;
  }
  return z.view({z.size(2), z.size(3)});
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& images, mpi::Communicator& comm) {
  torch::Tensor z = mpi::all_reduce_sum(partial_sum(images), comm) + pointwise_bias;
  if (prior_.defined()) z = z + prior_;
  return torch::relu(z);
}

}  // namespace astroclear
