// image_mm: the weighted multiplicative majorise-minimise update of Note [ImageMM].
#include "eval/image_mm.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "eval/coadd.hpp"
#include "mpi/all_reduce.hpp"

namespace astroclear {
namespace {

constexpr double kStartFloor = 1e-2;  ///< normalised units: a hundredth of the typical sigma

}  // namespace

void ImageMmConfig::validate() const {
  if (iterations < 0) throw Error("--iterations: must be >= 0, got " + std::to_string(iterations));
  if (!(kappa > 1) || !std::isfinite(kappa)) throw Error("--kappa: must be a finite number > 1, got " + std::to_string(kappa));
  if (!(pedestal > 0) || !std::isfinite(pedestal)) {
    throw Error("--pedestal: must be a finite number > 0 (in sigmas), got " + std::to_string(pedestal));
  }
  if (!(huber_delta > 0) || !std::isfinite(huber_delta)) {
    throw Error("--huber-delta: must be a finite number > 0 (in sigmas), got " + std::to_string(huber_delta));
  }
}

torch::Tensor image_mm(const LocalStack& stack, const PsfDecoder& decoder, const ImageMmConfig& config,
                       mpi::Communicator& comm, const IterationHooks& hooks) {
  config.validate();
  torch::NoGradGuard no_grad;  // the adjoint is explicit (PsfDecoder::adjoint_sum)
  const FieldView whole_field(comm, nullptr);
  const FieldView& field = hooks.field ? *hooks.field : whole_field;  // Note [tiles]
  mpi::Communicator& exposures = field.exposure_sum();
  const torch::Tensor s =
      torch::tensor(stack.median_sigmas(field.tiled() ? field.tiles()->exposure_group.get() : nullptr), torch::kFloat64).to(stack.images.options()).view({-1, 1, 1});
  const torch::Tensor sigma = stack.sigmas.to(stack.images.device());
  const torch::Tensor good = stack.good.to(stack.images.device());
  const torch::Tensor base_weight = good / (sigma * sigma);
  const torch::Tensor pedestal = config.pedestal * s;
  const torch::Tensor data = (stack.images + pedestal).clamp_min(0);

  torch::Tensor x = torch::nan_to_num(inverse_variance_coadd(stack, field) / stack.flux_unit, 0.0)
                        .to(stack.images.device())
                        .clamp_min(kStartFloor);
  // Pixels no exposure covers keep their start (the denominator is 0 there).
  torch::Tensor coverage = field.collect(decoder.adjoint_sum(base_weight));
  mpi::all_reduce_sum_(coverage, exposures);
  const torch::Tensor covered = coverage > 1e-12 * field.max(coverage);
  const double low = 1.0 / config.kappa, high = config.kappa;

  bool stop = score_iterate(hooks, 0, x, stack.flux_unit, config.iterations == 0, comm);
  for (int it = 1; it <= config.iterations && !stop; ++it) {
    const torch::Tensor model = decoder.forward(field.frame(x));
    torch::Tensor weight = base_weight;
    if (config.robust) {
      const torch::Tensor r = ((stack.images - model) / sigma).abs();
      weight = base_weight * torch::clamp_max(config.huber_delta / r.clamp_min(1e-12), 1.0);
    }
    // Numerator and denominator in one all-reduce: (2, H, W).
    torch::Tensor sums = torch::stack({field.collect(decoder.adjoint_sum(weight * data)),
                                       field.collect(decoder.adjoint_sum(weight * (model + pedestal)))});
    mpi::all_reduce_sum_(sums, exposures);
    const torch::Tensor ratio = torch::where(covered, sums[0] / sums[1].clamp_min(1e-30), torch::ones_like(x));
    const torch::Tensor next = x * ratio.clamp(low, high);
    if (hooks.progress) {
      const double change = field.norm(next - x) / std::max(field.norm(x), 1e-30);
      hooks.progress(it, change);
    }
    x = next;
    stop = score_iterate(hooks, it, x, stack.flux_unit, it == config.iterations, comm);
  }
  return iterate_result(hooks, config.validation.stop, x, stack.flux_unit);
}

}  // namespace astroclear
