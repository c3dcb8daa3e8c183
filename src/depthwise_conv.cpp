// depthwise_conv2d: register-blocked CPU forward and weight gradient (Notes [depthwise forward], [CPU dispatch]).
#include "src/depthwise_conv.hpp"

#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#include "src/cpu_kernels.hpp"

namespace astroclear {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

/// LibTorch's depthwise convolution: for other devices and dtypes, and inputs that need a gradient.
torch::Tensor library_forward(const torch::Tensor& padded, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::conv2d(padded, weight, bias, torch::IntArrayRef{1, 1}, torch::IntArrayRef{0, 0},
                       torch::IntArrayRef{1, 1}, padded.size(1));
}

/// What the backward pass of a convolution of fixed inputs needs: dL/dw and dL/db, not dL/dinput.
std::tuple<torch::Tensor, torch::Tensor> library_weight_gradients(const torch::Tensor& grad,
                                                                  const torch::Tensor& padded,
                                                                  const torch::Tensor& weight) {
  const std::vector<std::int64_t> bias_sizes{weight.size(0)};
  auto [grad_input, grad_weight, grad_bias] =
      at::convolution_backward(grad, padded, weight, bias_sizes, {1, 1}, {0, 0}, {1, 1}, /*transposed=*/false, {0, 0},
                               weight.size(0), {false, true, true});
  return {grad_weight, grad_bias};
}

/// Note [re-padded inputs]: LibTorch's convolution keeps its input for the backward pass, so a
/// branch that pads the exposures and convolves them keeps one padded copy of the stack until the
/// backward; with three branches that is three stack-sized planes (7 GB of an H100's memory for
/// 33 x 4200^2). The exposures are already resident and never change, so this convolution keeps
/// only them and pads again in the backward pass: one more pad per branch and iteration, a
/// fraction of a millisecond on a GPU, against a 2.3 GB plane per branch.
struct RePaddedConv : public torch::autograd::Function<RePaddedConv> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& images, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    ctx->save_for_backward({images, weight});
    return library_forward(reflect_pad(images, weight.size(2) / 2), weight, bias);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& images = saved[0];
    const torch::Tensor& weight = saved[1];
    auto [grad_weight, grad_bias] = library_weight_gradients(grads[0], reflect_pad(images, weight.size(2) / 2), weight);
    return {torch::Tensor(), grad_weight, grad_bias};
  }
};

/// The window of a frame (1, n, h + 2 halo, w + 2 halo) that a branch of half-width pad reads.
torch::Tensor window(const torch::Tensor& frame, std::int64_t halo, std::int64_t pad) {
  const std::int64_t h = frame.size(2) - 2 * halo, w = frame.size(3) - 2 * halo;
  return frame.narrow(2, halo - pad, h + 2 * pad).narrow(3, halo - pad, w + 2 * pad);
}

/// The same for a tile's frame (Note [tiles]): keeps only the frame, cuts the window again in the backward.
struct FramedConv : public torch::autograd::Function<FramedConv> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& frame, std::int64_t halo,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    ctx->save_for_backward({frame, weight});
    ctx->saved_data["halo"] = halo;
    return library_forward(window(frame, halo, weight.size(2) / 2).contiguous(), weight, bias);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& frame = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor input = window(frame, ctx->saved_data["halo"].toInt(), weight.size(2) / 2).contiguous();
    auto [grad_weight, grad_bias] = library_weight_gradients(grads[0], input, weight);
    return {torch::Tensor(), torch::Tensor(), grad_weight, grad_bias};
  }
};

/// Eight floats, one AVX register (two SSE ones in the generic build).
typedef float Lanes __attribute__((vector_size(32)));

/// Eight floats from any address (by reference: a Lanes return value changes the ABI in the generic build).
__attribute__((always_inline)) inline void load(Lanes& v, const float* p) { std::memcpy(&v, p, sizeof v); }

/// taps[j] += sum_x g[x] * in[x + j] for j < J over one image row: J dot products that share the
/// loads of g and run as J independent chains of fused multiply-adds (Note [depthwise weight gradient]).
template <int J>
__attribute__((always_inline)) inline void row_taps(const float* g, const float* in, std::int64_t width, double* taps) {
  Lanes sum[J] = {};
  std::int64_t x = 0;
  for (; x + 8 <= width; x += 8) {
    Lanes gx, inx;
    load(gx, g + x);
    for (int j = 0; j < J; ++j) {
      load(inx, in + x + j);
      sum[j] += gx * inx;
    }
  }
  for (int j = 0; j < J; ++j) {
    float total = 0.0f;
    for (int l = 0; l < 8; ++l) total += sum[j][l];
    for (std::int64_t r = x; r < width; ++r) total += g[r] * in[r + j];
    taps[j] += total;
  }
}

/// U x 8 consecutive outputs of one row: out[x] = bias + sum_ij w[i k + j] in[i padded_width + x + j].
/// Each tap's weight is loaded once for U independent accumulators (Note [depthwise forward]).
template <int U>
__attribute__((always_inline)) inline void row_outputs(const float* in, std::int64_t padded_width, const float* w,
                                                       std::int64_t k, float bias, float* out) {
  Lanes sum[U];
  for (int u = 0; u < U; ++u) sum[u] = Lanes{} + bias;
  for (std::int64_t i = 0; i < k; ++i) {
    const float* in_row = in + i * padded_width;
    for (std::int64_t j = 0; j < k; ++j) {
      const float tap = w[i * k + j];
      for (int u = 0; u < U; ++u) {
        Lanes v;
        load(v, in_row + 8 * u + j);
        sum[u] += tap * v;
      }
    }
  }
  std::memcpy(out, sum, sizeof sum);
}

/// Output rows [first_row, last_row) of one channel: `in` (padded rows of `padded_width`), `w`
/// (k x k), `out` (rows of `width`). Inlined into an AVX2 + FMA build and a generic one.
__attribute__((always_inline)) inline void channel_rows(const float* in, std::int64_t padded_width, std::int64_t width,
                                                        std::int64_t k, const float* w, float bias, float* out,
                                                        std::int64_t first_row, std::int64_t last_row) {
  for (std::int64_t y = first_row; y < last_row; ++y) {
    const float* in_row = in + y * padded_width;
    float* out_row = out + y * width;
    std::int64_t x = 0;
    for (; x + 32 <= width; x += 32) row_outputs<4>(in_row + x, padded_width, w, k, bias, out_row + x);
    for (; x + 8 <= width; x += 8) row_outputs<1>(in_row + x, padded_width, w, k, bias, out_row + x);
    for (; x < width; ++x) {
      float sum = bias;
      for (std::int64_t i = 0; i < k; ++i) {
        for (std::int64_t j = 0; j < k; ++j) sum += w[i * k + j] * in_row[i * padded_width + x + j];
      }
      out_row[x] = sum;
    }
  }
}

/// dL/dw (k x k taps) and dL/db of one channel: `g` (height x width), `in` (padded rows of
/// `padded_width`). Inlined into an AVX2 + FMA build and a generic one (Note [CPU dispatch]).
__attribute__((always_inline)) inline void channel_gradient(const float* g, const float* in, std::int64_t height,
                                                            std::int64_t width, std::int64_t padded_width,
                                                            std::int64_t k, double* taps, double* bias) {
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
      double* row = taps + i * k;
      // Up to eight taps of this kernel row at a time: eight accumulators fill the FMA pipelines.
      std::int64_t j = 0;
      for (; j + 8 <= k; j += 8) row_taps<8>(g_row, in_row + j, width, row + j);
      switch (k - j) {
        case 7: row_taps<7>(g_row, in_row + j, width, row + j); break;
        case 6: row_taps<6>(g_row, in_row + j, width, row + j); break;
        case 5: row_taps<5>(g_row, in_row + j, width, row + j); break;
        case 4: row_taps<4>(g_row, in_row + j, width, row + j); break;
        case 3: row_taps<3>(g_row, in_row + j, width, row + j); break;
        case 2: row_taps<2>(g_row, in_row + j, width, row + j); break;
        case 1: row_taps<1>(g_row, in_row + j, width, row + j); break;
        default: break;
      }
    }
  }
  *bias = bias_sum;
}

// Note [CPU dispatch]: GCC's target_clones("arch=haswell") dispatches on the CPU model, not on its
// features: on AMD EPYC (AVX2, FMA and AVX-512 all present) it ran the generic SSE2 build, 10x
// below what the loops can do. Each kernel is built twice, generic and AVX2 + FMA, and the build
// is picked from the CPU's features.
#if defined(__x86_64__) && defined(__GNUC__)
#define ASTROCLEAR_AVX2_BUILD 1
__attribute__((target("avx2,fma"))) void channel_gradient_avx2(const float* g, const float* in, std::int64_t height,
                                                               std::int64_t width, std::int64_t padded_width,
                                                               std::int64_t k, double* taps, double* bias) {
  channel_gradient(g, in, height, width, padded_width, k, taps, bias);
}

__attribute__((target("avx2,fma"))) void channel_rows_avx2(const float* in, std::int64_t padded_width,
                                                           std::int64_t width, std::int64_t k, const float* w,
                                                           float bias, float* out, std::int64_t first_row,
                                                           std::int64_t last_row) {
  channel_rows(in, padded_width, width, k, w, bias, out, first_row, last_row);
}
#endif

bool cpu_has_avx2_fma() {
#ifdef ASTROCLEAR_AVX2_BUILD
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
#else
  return false;
#endif
}

/// channel_gradient in the best build for this CPU.
void dispatch_channel_gradient(const float* g, const float* in, std::int64_t height, std::int64_t width,
                               std::int64_t padded_width, std::int64_t k, double* taps, double* bias) {
#ifdef ASTROCLEAR_AVX2_BUILD
  if (cpu_has_avx2_fma()) return channel_gradient_avx2(g, in, height, width, padded_width, k, taps, bias);
#endif
  channel_gradient(g, in, height, width, padded_width, k, taps, bias);
}

/// channel_rows in the best build for this CPU.
void dispatch_channel_rows(const float* in, std::int64_t padded_width, std::int64_t width, std::int64_t k,
                           const float* w, float bias, float* out, std::int64_t first_row, std::int64_t last_row) {
#ifdef ASTROCLEAR_AVX2_BUILD
  if (cpu_has_avx2_fma()) return channel_rows_avx2(in, padded_width, width, k, w, bias, out, first_row, last_row);
#endif
  channel_rows(in, padded_width, width, k, w, bias, out, first_row, last_row);
}

/// The depthwise convolution of CPU float32 tensors (Note [depthwise forward]), rows in parallel.
torch::Tensor cpu_forward(const torch::Tensor& padded_input, const torch::Tensor& weight_input,
                          const torch::Tensor& bias_input) {
  const torch::Tensor padded = padded_input.contiguous();
  const torch::Tensor weight = weight_input.contiguous();
  const torch::Tensor bias = bias_input.contiguous();
  const std::int64_t n = padded.size(1), k = weight.size(2);
  const std::int64_t height = padded.size(2) - k + 1, width = padded.size(3) - k + 1;
  const std::int64_t padded_width = padded.size(3), padded_plane = padded.size(2) * padded_width;
  torch::Tensor out = torch::empty({1, n, height, width}, padded.options());
  const float* in = padded.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, n * height, 16, [&](std::int64_t first, std::int64_t last) {
    while (first < last) {  // rows of one channel at a time
      const std::int64_t c = first / height, y = first % height;
      const std::int64_t rows = std::min(last - first, height - y);
      dispatch_channel_rows(in + c * padded_plane, padded_width, width, k, w + c * k * k, b[c], o + c * height * width,
                            y, y + rows);
      first += rows;
    }
  });
  return out;
}

struct DepthwiseConv : public torch::autograd::Function<DepthwiseConv> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& padded, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    ctx->save_for_backward({padded});
    ctx->saved_data["kernel"] = weight.size(2);
    return cpu_forward(padded, weight, bias);
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
        dispatch_channel_gradient(g + c * height * width, in + c * padded_plane, height, width, padded_width, k,
                                  taps.data(), &bias);
        for (std::int64_t t = 0; t < k * k; ++t) gw[c * k * k + t] = static_cast<float>(taps[t]);
        gb[c] = static_cast<float>(bias);
      }
    });
    return {torch::Tensor(), grad_weight, grad_bias};
  }
};

}  // namespace

torch::Tensor reflect_pad(const torch::Tensor& images, std::int64_t pad) {
  if (pad == 0) return images;
  if (images.is_cpu() && images.scalar_type() == torch::kBFloat16) {
    // LibTorch 1.13 has no CPU reflection pad for bf16: mirrored rows, then mirrored columns,
    // without a float32 copy (the GPU memory count of a bf16 iteration runs here).
    const auto mirror = [pad](const torch::Tensor& x, std::int64_t dim) {
      const std::int64_t n = x.size(dim);
      return torch::cat({x.narrow(dim, 1, pad).flip(dim), x, x.narrow(dim, n - 1 - pad, pad).flip(dim)}, dim);
    };
    return mirror(mirror(images, -2), -1);
  }
  return torch::nn::functional::pad(images,
                                    torch::nn::functional::PadFuncOptions({pad, pad, pad, pad}).mode(torch::kReflect));
}

bool runs_fast_cpu_kernel(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias) {
  return fast_cpu_kernels() && input.device().is_cpu() && input.scalar_type() == torch::kFloat32 &&
         weight.scalar_type() == torch::kFloat32 && bias.scalar_type() == torch::kFloat32 && input.size(0) == 1 &&
         !input.requires_grad();
}

torch::Tensor depthwise_conv2d(const torch::Tensor& padded, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!runs_fast_cpu_kernel(padded, weight, bias)) return library_forward(padded, weight, bias);
  if (torch::GradMode::is_enabled() && (weight.requires_grad() || bias.requires_grad())) {
    return DepthwiseConv::apply(padded, weight, bias);
  }
  return cpu_forward(padded, weight, bias);
}

torch::Tensor reflect_padded_depthwise_conv2d(const torch::Tensor& images, const torch::Tensor& weight,
                                              const torch::Tensor& bias) {
  if (images.requires_grad() || !torch::GradMode::is_enabled()) {
    return library_forward(reflect_pad(images, weight.size(2) / 2), weight, bias);
  }
  return RePaddedConv::apply(images, weight, bias);  // Note [re-padded inputs]
}

torch::Tensor frame_window(const torch::Tensor& frame, std::int64_t halo, std::int64_t pad) {
  return window(frame, halo, pad);
}

torch::Tensor framed_depthwise_conv2d(const torch::Tensor& frame, std::int64_t halo, const torch::Tensor& weight,
                                      const torch::Tensor& bias) {
  if (frame.requires_grad() || !torch::GradMode::is_enabled()) {
    return library_forward(window(frame, halo, weight.size(2) / 2).contiguous(), weight, bias);
  }
  return FramedConv::apply(frame, halo, weight, bias);
}

}  // namespace astroclear
