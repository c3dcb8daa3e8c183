// stack_coverage and add_coverage: a sum of good masks over the ranks, written beside each image.
#include "jobs/coverage.hpp"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "common/error.hpp"
#include "mpi/all_reduce.hpp"
#include "src/field_view.hpp"

namespace astroclear::jobs {

// Note [coverage]: a restoration has values everywhere, also where nothing was measured: pixels
// masked in every exposure (a saturated star's core, a bleed trail, the edge of a dithered field)
// get whatever the method extrapolates (Richardson-Lucy a bright crescent, the network a dark hole
// with a bright rim). Every output (train, rl, mm, coadd) therefore carries:
//   - HDU COVERAGE: the number of fitted exposures with a good pixel at each pixel (held-out
//     exposures, which do not shape the image, are not counted);
//   - HDU MASK: bit 0 (MP_NO_DATA) where that number is 0, bit 1 (MP_SAT) where any exposure's mask
//     says saturated (Note [mask kinds]), LSST-style plane names in MP_* keywords;
//   - NaN in the image where no exposure has data, as SWarp and the coadd write it, so that
//     photometry never measures invented flux there. Saturated pixels that some exposures measured
//     keep their value and their MP_SAT flag: their flux there comes from fewer exposures.

Coverage stack_coverage(const LoadedStack& loaded, mpi::Communicator& comm) {
  const FieldView field(comm, loaded.tiles.get());
  const std::int64_t h = loaded.plan.height, w = loaded.plan.width;
  // The planes of the pixels this rank holds (its tile, or the field), summed over their ranks.
  torch::Tensor counts = field.inner(loaded.stack.good).to(torch::kCPU).sum(0);
  if (static_cast<std::int64_t>(loaded.saturated.size()) != counts.numel()) {
    throw Error("stack_coverage: " + std::to_string(loaded.saturated.size()) + " saturation flags for " +
                std::to_string(counts.numel()) + " pixels");
  }
  torch::Tensor saturated = torch::from_blob(const_cast<std::uint8_t*>(loaded.saturated.data()),
                                             {counts.size(0), counts.size(1)}, torch::kUInt8)
                                .to(torch::kFloat32);
  torch::Tensor planes = torch::stack({counts, saturated}).contiguous();
  all_reduce_sum_(planes, field.exposure_sum());
  counts = field.whole(planes[0]);  // with tiles on rank 0 only, which writes the outputs
  saturated = field.whole(planes[1]);
  Coverage out;
  if (counts.numel() == 0) return out;
  out.counts = io::Image(h, w);
  out.flags = io::MaskImage{h, w, std::vector<std::int32_t>(static_cast<std::size_t>(h * w), 0)};
  const float* n = counts.contiguous().data_ptr<float>();
  const float* s = saturated.contiguous().data_ptr<float>();
  for (std::int64_t i = 0; i < h * w; ++i) {
    out.counts.pixels[i] = std::round(n[i]);
    if (n[i] < 0.5f) out.flags.pixels[i] |= kMaskNoData, ++out.no_data;
    if (s[i] > 0.5f) out.flags.pixels[i] |= kMaskSaturated, ++out.saturated;
  }
  return out;
}

void add_coverage(std::vector<io::OutputHdu>& hdus, const Coverage& coverage) {
  io::OutputHdu& primary = hdus.front();
  constexpr float kNoData = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t i = 0; i < primary.image.pixels.size(); ++i) {
    if ((coverage.flags.pixels[i] & kMaskNoData) != 0) primary.image.pixels[i] = kNoData;
  }
  primary.cards.push_back(
      {"ACNODATA", std::to_string(coverage.no_data), "pixels no exposure measured (NaN, MASK bit 0)"});
  std::vector<io::HeaderCard> wcs = io::wcs_cards(primary.cards);
  io::OutputHdu counts{"COVERAGE", coverage.counts, wcs, {}};
  counts.cards.push_back({"BUNIT", "'exposures'", "fitted exposures with a good pixel here"});
  io::OutputHdu flags{"MASK", {}, wcs, {}};
  flags.mask = coverage.flags;
  flags.cards.push_back({"MP_NO_DATA", "0", "no fitted exposure measured this pixel; image NaN"});
  flags.cards.push_back({"MP_SAT", "1", "an exposure's mask calls this pixel saturated"});
  hdus.push_back(std::move(counts));
  hdus.push_back(std::move(flags));
}

}  // namespace astroclear::jobs
