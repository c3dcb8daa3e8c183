// richardson_lucy: masked, variance-weighted multi-frame Richardson-Lucy (Note [multi-frame Richardson-Lucy]).
#include "eval/richardson_lucy.hpp"

#include "mpi/all_reduce.hpp"
#include "common/error.hpp"
#include "eval/coadd.hpp"

#include <algorithm>

namespace astroclear {
namespace {

constexpr double kStartFloor = 1e-2;  ///< normalised units: a hundredth of the typical sigma

}  // namespace

void RichardsonLucyConfig::validate() const {
  if (iterations < 0) throw Error("--iterations: must be >= 0, got " + std::to_string(iterations));
  if (!(pedestal > 0)) throw Error("--pedestal: must be > 0 (in sigmas), got " + std::to_string(pedestal));
}

torch::Tensor richardson_lucy(const LocalStack& stack, const PsfDecoder& decoder, const RichardsonLucyConfig& config,
                              mpi::Communicator& comm, const IterationHooks& hooks) {
  config.validate();
  // Per-exposure median good sigma: the weight and the pedestal scale.
  const FieldView whole_field(comm, nullptr);
  const FieldView& field = hooks.field ? *hooks.field : whole_field;  // Note [tiles]
  mpi::Communicator& exposures = field.exposure_sum();
  const torch::Tensor s =
      torch::tensor(stack.median_sigmas(field.tiled() ? field.tiles()->exposure_group.get() : nullptr), torch::kFloat64).to(stack.images.options()).view({-1, 1, 1});
  const torch::Tensor weight = stack.good / (s * s);
  const torch::Tensor pedestal = config.pedestal * s;
  const torch::Tensor data = (stack.images + pedestal).clamp_min(0) * weight;

  torch::NoGradGuard no_grad;  // the adjoint is explicit (PsfDecoder::adjoint_sum)
  // Start: the inverse-variance coadd in normalised units (0 where no exposure is good), clipped
  // to a positive floor.
  torch::Tensor x = torch::nan_to_num(inverse_variance_coadd(stack, field) / stack.flux_unit, 0.0)
                        .to(stack.images.device())
                        .clamp_min(kStartFloor);
  torch::Tensor norm = field.collect(decoder.adjoint_sum(weight));
  mpi::all_reduce_sum_(norm, exposures);
  const torch::Tensor covered = norm > 1e-12 * field.max(norm);
  const torch::Tensor safe_norm = torch::where(covered, norm, torch::ones_like(norm));

  bool stop = score_iterate(hooks, 0, x, stack.flux_unit, config.iterations == 0, comm);
  for (int it = 1; it <= config.iterations && !stop; ++it) {
    torch::Tensor yhat = decoder.forward(field.frame(x));
    torch::Tensor back = field.collect(decoder.adjoint_sum(data / (yhat + pedestal).clamp_min(1e-6)));
    mpi::all_reduce_sum_(back, exposures);
    torch::Tensor next = torch::where(covered, x * back / safe_norm, x);
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
