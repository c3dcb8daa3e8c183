// The masked inverse-variance weighted coadd: the baseline every astronomer knows.
#pragma once

#include <torch/torch.h>

#include "mpi/communicator.hpp"
#include "src/field_view.hpp"
#include "src/stack.hpp"

namespace astroclear {

/// sum_t good y / sigma^2 / sum_t good / sigma^2 over all ranks' exposures, in calibrated flux
/// units, on the CPU; NaN where no exposure has a good pixel. Collective. The pixels `field` holds:
/// with tiles this rank's tile (h, w), the stack holding its frames (Note [tiles]); FieldView::whole
/// assembles the field.
torch::Tensor inverse_variance_coadd(const LocalStack& stack, const FieldView& field);
/// The whole field's (H, W), on every rank: the stack holds whole exposures.
torch::Tensor inverse_variance_coadd(const LocalStack& stack, mpi::Communicator& comm);

}  // namespace astroclear
