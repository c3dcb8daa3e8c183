// depthwise_conv2d: oneDNN forward, a cache-friendly weight gradient on CPUs (Note [depthwise weight gradient]).
#include "src/depthwise_conv.hpp"

#include <ATen/Parallel.h>

#include <vector>

namespace astroclear {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

torch::Tensor depthwise_forward(const torch::Tensor& padded, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::conv2d(padded, weight, bias, torch::IntArrayRef{1, 1}, torch::IntArrayRef{0, 0},
                       torch::IntArrayRef{1, 1}, padded.size(1));
}

/// Sum of a[x] * b[x] over one image row.
inline float row_dot(const float* a, const float* b, std::int64_t width) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t x = 0; x < width; ++x) sum += a[x] * b[x];
  return sum;
}

/// dL/dw (k x k taps) and dL/db of one channel: `g` (height x width), `in` (padded rows of
/// `padded_width`). Built twice, for AVX2 + FMA and for any x86-64, and picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=haswell", "default")))
#endif
void channel_gradient(const float* g, const float* in, std::int64_t height, std::int64_t width,
                      std::int64_t padded_width, std::int64_t k, double* taps, double* bias) {
  for (std::int64_t t = 0; t < k * k; ++t) taps[t] = 0.0;
  double bias_sum = 0.0;
  for (std::int64_t y = 0; y < height; ++y) {
    const float* g_row = g + y * width;
    float row_sum = 0.0f;
#pragma omp simd reduction(+ : row_sum)
    for (std::int64_t x = 0; x < width; ++x) row_sum += g_row[x];
    bias_sum += row_sum;
    for (std::int64_t i = 0; i < k; ++i) {
      const float* in_row = in + (y + i) * padded_width;
      for (std::int64_t j = 0; j < k; ++j) taps[i * k + j] += row_dot(g_row, in_row + j, width);
    }
  }
  *bias = bias_sum;
}

struct DepthwiseConv : public torch::autograd::Function<DepthwiseConv> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& padded, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    ctx->save_for_backward({padded});
    ctx->saved_data["kernel"] = weight.size(2);
    return depthwise_forward(padded, weight, bias);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const torch::Tensor padded = ctx->get_saved_variables()[0].contiguous();
    const torch::Tensor grad = grads[0].contiguous();
    const std::int64_t k = ctx->saved_data["kernel"].toInt();
    const std::int64_t n = grad.size(1), height = grad.size(2), width = grad.size(3);
    const std::int64_t padded_width = padded.size(3), padded_plane = padded.size(2) * padded_width;
    torch::Tensor grad_weight = torch::empty({n, 1, k, k}, grad.options());
    torch::Tensor grad_bias = torch::empty({n}, grad.options());
    const float* g = grad.data_ptr<float>();
    const float* in = padded.data_ptr<float>();
    float* gw = grad_weight.data_ptr<float>();
    float* gb = grad_bias.data_ptr<float>();
    at::parallel_for(0, n, 1, [&](std::int64_t first, std::int64_t last) {
      std::vector<double> taps(static_cast<std::size_t>(k * k));
      for (std::int64_t c = first; c < last; ++c) {
        double bias = 0.0;
        channel_gradient(g + c * height * width, in + c * padded_plane, height, width, padded_width, k, taps.data(),
                         &bias);
        for (std::int64_t t = 0; t < k * k; ++t) gw[c * k * k + t] = static_cast<float>(taps[t]);
        gb[c] = static_cast<float>(bias);
      }
    });
    return {torch::Tensor(), grad_weight, grad_bias};
  }
};

}  // namespace

torch::Tensor depthwise_conv2d(const torch::Tensor& padded, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool fast_cpu_backward = padded.device().is_cpu() && padded.scalar_type() == torch::kFloat32 &&
                                 !padded.requires_grad() && torch::GradMode::is_enabled();
  if (!fast_cpu_backward) return depthwise_forward(padded, weight, bias);
  return DepthwiseConv::apply(padded, weight, bias);
}

}  // namespace astroclear
