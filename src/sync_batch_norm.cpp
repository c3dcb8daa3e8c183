// field_batch_norm: BatchNorm over the tiles of a field (Note [field batch norm]).
#include "src/sync_batch_norm.hpp"

namespace astroclear {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Sums (float64, CPU) of `values` (any device) over `group`, in place.
torch::Tensor summed(const torch::Tensor& values, mpi::Communicator& group) {
  torch::Tensor host = values.to(torch::kCPU, torch::kFloat64).contiguous().clone();
  group.all_reduce_sum(host.data_ptr<double>(), static_cast<std::size_t>(host.numel()));
  return host;
}

/// The type the affine steps compute in: float32 for bf16 activations (rounded once, at the end,
/// as torch::batch_norm does), else the activations' own.
torch::ScalarType compute_type(const torch::Tensor& h) {
  return h.scalar_type() == torch::kBFloat16 ? torch::kFloat32 : h.scalar_type();
}

/// (n) -> (1, n, 1, 1) on `like`'s device, in compute_type(like).
torch::Tensor per_channel(const torch::Tensor& v, const torch::Tensor& like) {
  return v.to(like.device(), compute_type(like)).view({1, -1, 1, 1});
}

struct FieldBatchNorm : public torch::autograd::Function<FieldBatchNorm> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& gamma,
                               const torch::Tensor& beta, double eps, std::int64_t group_address) {
    auto& group = *reinterpret_cast<mpi::Communicator*>(group_address);
    auto [mean, var] = field_moments(h, group);
    const torch::Tensor invstd = (var + eps).rsqrt();  // float64
    const torch::Tensor scale = gamma.detach().to(torch::kCPU, torch::kFloat64) * invstd;
    const torch::Tensor shift = beta.detach().to(torch::kCPU, torch::kFloat64) - mean * scale;
    ctx->save_for_backward({h, gamma});
    ctx->saved_data["mean"] = mean;
    ctx->saved_data["invstd"] = invstd;
    ctx->saved_data["count"] = static_cast<double>(h.numel() / h.size(1));
    ctx->saved_data["group"] = group_address;
    return (h.to(compute_type(h)) * per_channel(scale, h) + per_channel(shift, h)).to(h.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& h = saved[0];
    const torch::Tensor& gamma = saved[1];
    const torch::Tensor mean = ctx->saved_data["mean"].toTensor();
    const torch::Tensor invstd = ctx->saved_data["invstd"].toTensor();
    auto& group = *reinterpret_cast<mpi::Communicator*>(ctx->saved_data["group"].toInt());
    const torch::Tensor g = grads[0].to(compute_type(h));
    const torch::Tensor centred = h.to(compute_type(h)) - per_channel(mean, h);
    // This tile's sums, then the field's: sum(g) and sum(g (h - mean)) per channel.
    const torch::Tensor local = torch::stack({g.sum({0, 2, 3}, false, torch::kFloat64),
                                              (g * centred).sum({0, 2, 3}, false, torch::kFloat64)})
                                    .to(torch::kCPU);
    const torch::Tensor field = summed(local, group);
    double count = ctx->saved_data["count"].toDouble();
    group.all_reduce_sum(&count, 1);
    const torch::Tensor gamma64 = gamma.detach().to(torch::kCPU, torch::kFloat64);
    const torch::Tensor mean_dy = field[0] / count, mean_dy_xmu = field[1] / count;
    // dL/dh = gamma invstd (g - mean(g) - (h - mean) invstd^2 mean(g (h - mean)))
    const torch::Tensor grad_h = (g - per_channel(mean_dy, h) - centred * per_channel(invstd * invstd * mean_dy_xmu, h)) *
                                 per_channel(gamma64 * invstd, h);  // cast to h's type on return
    const torch::Tensor grad_gamma = (local[1] * invstd).to(gamma.device(), gamma.scalar_type());
    const torch::Tensor grad_beta = local[0].to(gamma.device(), gamma.scalar_type());
    return {grad_h.to(h.scalar_type()), grad_gamma, grad_beta, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> field_moments(const torch::Tensor& h, mpi::Communicator& group) {
  torch::NoGradGuard no_grad;
  const torch::Tensor sums = summed(torch::cat({h.sum({0, 2, 3}, false, torch::kFloat64),
                                                torch::full({1}, static_cast<double>(h.numel() / h.size(1)),
                                                            h.options().dtype(torch::kFloat64))}),
                                    group);
  const std::int64_t n = h.size(1);
  const double count = sums[n].item<double>();
  const torch::Tensor mean = sums.narrow(0, 0, n) / count;
  const torch::Tensor squares =
      (h.to(compute_type(h)) - per_channel(mean, h)).square().sum({0, 2, 3}, false, torch::kFloat64);
  return {mean, summed(squares, group) / count};
}

torch::Tensor field_batch_norm(const torch::Tensor& h, const torch::Tensor& gamma, const torch::Tensor& beta, double eps,
                               mpi::Communicator& group) {
  return FieldBatchNorm::apply(h, gamma, beta, eps, reinterpret_cast<std::int64_t>(&group));
}

}  // namespace astroclear
