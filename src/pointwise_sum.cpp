// pointwise_sum: one pass over the features forward and one backward (Note [pointwise sum]).
#include "src/pointwise_sum.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "src/cpu_kernels.hpp"

namespace astroclear {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

/// Pixels per block: the unit of parallel work and of the fixed summation order of dL/da.
constexpr std::int64_t kBlock = 16384;

struct PointwiseSum : public torch::autograd::Function<PointwiseSum> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& features, const torch::Tensor& weight) {
    const torch::Tensor h = features.contiguous();
    const torch::Tensor a = weight.contiguous();
    ctx->save_for_backward({h, a});
    const std::int64_t n = h.size(1), pixels = h.size(2) * h.size(3);
    torch::Tensor out = torch::empty({1, 1, h.size(2), h.size(3)}, h.options());
    const float* hp = h.data_ptr<float>();
    const float* ap = a.data_ptr<float>();
    float* zp = out.data_ptr<float>();
    at::parallel_for(0, pixels, kBlock, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t p = first; p < last; ++p) zp[p] = ap[0] * hp[p];
      for (std::int64_t c = 1; c < n; ++c) {
        const float ac = ap[c];
        const float* hc = hp + c * pixels;
        for (std::int64_t p = first; p < last; ++p) zp[p] += ac * hc[p];
      }
    });
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& h = saved[0];
    const torch::Tensor& a = saved[1];
    const torch::Tensor g = grads[0].contiguous();
    const std::int64_t n = h.size(1), pixels = h.size(2) * h.size(3);
    const std::int64_t blocks = (pixels + kBlock - 1) / kBlock;
    torch::Tensor grad_features = torch::empty_like(h);
    std::vector<double> partial(static_cast<std::size_t>(n * blocks));
    const float* hp = h.data_ptr<float>();
    const float* ap = a.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* dh = grad_features.data_ptr<float>();
    at::parallel_for(0, n * blocks, 1, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t item = first; item < last; ++item) {
        const std::int64_t c = item / blocks, begin = (item % blocks) * kBlock;
        const std::int64_t end = std::min(pixels, begin + kBlock);
        const float ac = ap[c];
        const float* hc = hp + c * pixels;
        float* dhc = dh + c * pixels;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (std::int64_t p = begin; p < end; ++p) {
          dhc[p] = ac * gp[p];
          dot += hc[p] * gp[p];
        }
        partial[static_cast<std::size_t>(item)] = dot;
      }
    });
    torch::Tensor grad_weight = torch::empty({n}, a.options());
    float* da = grad_weight.data_ptr<float>();
    for (std::int64_t c = 0; c < n; ++c) {
      double sum = 0.0;
      for (std::int64_t b = 0; b < blocks; ++b) sum += partial[static_cast<std::size_t>(c * blocks + b)];
      da[c] = static_cast<float>(sum);
    }
    return {grad_features, grad_weight};
  }
};

}  // namespace

torch::Tensor pointwise_sum(const torch::Tensor& features, const torch::Tensor& weight) {
  const std::int64_t n = features.size(1);
  const bool fast_cpu = fast_cpu_kernels() && features.device().is_cpu() && features.scalar_type() == torch::kFloat32 &&
                        weight.scalar_type() == torch::kFloat32 && features.size(0) == 1;
  if (!fast_cpu) return torch::conv2d(features, weight.reshape({1, n, 1, 1}));
  return PointwiseSum::apply(features, weight);
}

}  // namespace astroclear
