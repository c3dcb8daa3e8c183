// Depthwise convolution of fixed inputs with a fast CPU forward and weight gradient (the CPU hot spot).
#pragma once

#include <torch/torch.h>

namespace astroclear {

// Note [depthwise weight gradient]: profiling the encoder on CPUs (LibTorch 1.13, oneDNN) shows
// the depthwise convolutions' backward taking about two thirds of an iteration: oneDNN runs the
// forward, but the weight gradient falls back to a slow generic path. The inputs are the
// exposures, which need no gradient, so the backward needs only dL/dw[c,i,j] = sum_p g[c,p] *
// x[c,p+(i,j)] and dL/db[c] = sum_p g[c,p]. depthwise_conv2d computes those with one pass per
// channel over the image, the k x k row dot products running from L1, up to eight taps at a time
// so that each load of g feeds eight independent multiply-add chains, channels in parallel
// (deterministic: each channel's sums always run in the same order, whatever the thread count).
//
// Note [depthwise forward]: the forward computes 32 outputs of a row at a time, each tap's weight
// loaded once for four 8-wide accumulators, which beats oneDNN's depthwise forward on CPUs for
// every branch size (docs/performance.md has the timings of both). Its sums run in a different
// order from oneDNN's, so the two agree to float rounding (~1e-7 relative), not bit for bit.
//
// On CUDA, for other dtypes, for inputs that need a gradient, or with set_fast_cpu_kernels(false),
// it is plain torch::conv2d.

/// Depthwise convolution (groups = channels, no padding) of `padded` (1, n, H + k - 1, W + k - 1),
/// with `weight` (n, 1, k, k) and `bias` (n): (1, n, H, W). The fast CPU paths need a `padded`
/// that does not require a gradient (the exposures); otherwise LibTorch's convolution runs.
torch::Tensor depthwise_conv2d(const torch::Tensor& padded, const torch::Tensor& weight, const torch::Tensor& bias);

/// Whether depthwise_conv2d runs astroclear's CPU kernels for these arguments (else LibTorch's).
bool runs_fast_cpu_kernel(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias);

/// `images` (1, n, H, W) reflect-padded by `pad` on every side.
torch::Tensor reflect_pad(const torch::Tensor& images, std::int64_t pad);

/// depthwise_conv2d(reflect_pad(images, k / 2), weight, bias) through LibTorch's convolution (the
/// GPU path), keeping only `images` for the backward pass, which pads them again (Note [re-padded
/// inputs] in depthwise_conv.cpp): no stack-sized padded copy lives from the forward to the backward.
torch::Tensor reflect_padded_depthwise_conv2d(const torch::Tensor& images, const torch::Tensor& weight,
                                              const torch::Tensor& bias);

/// The window (1, n, h + 2 pad, w + 2 pad) of a tile's frame (1, n, h + 2 halo, w + 2 halo) that a
/// branch of half-width pad <= halo reads (a view).
torch::Tensor frame_window(const torch::Tensor& frame, std::int64_t halo, std::int64_t pad);

/// depthwise_conv2d of frame_window(frame, halo, k / 2) through LibTorch's convolution, keeping only
/// the frame for the backward pass (as reflect_padded_depthwise_conv2d keeps only the images).
torch::Tensor framed_depthwise_conv2d(const torch::Tensor& frame, std::int64_t halo, const torch::Tensor& weight,
                                      const torch::Tensor& bias);

}  // namespace astroclear
