// plan_stack and load_stack: the validation order that keeps every rank in step.
#include "jobs/stack_loader.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <sstream>

#include "common/error.hpp"
#include "io/checksum.hpp"
#include "io/exposure_reader.hpp"
#include "io/wcs.hpp"
#include "jobs/tensor_image.hpp"
#include "mpi/partition.hpp"
#include "src/target_resolution.hpp"

namespace astroclear::jobs {
namespace {

/// A tile's frame of a whole plane (H, W) (Note [tiles]): the tile with `halo` more pixels on
/// every side, reflected beyond the field's edges as the encoder's padding reflects them.
torch::Tensor frame_of(const torch::Tensor& plane, const mpi::TileGeometry& t) {
  const std::int64_t g = t.halo;
  const torch::Tensor padded =
      torch::reflection_pad2d(plane.view({1, 1, plane.size(0), plane.size(1)}), {g, g, g, g}).view(
          {plane.size(0) + 2 * g, plane.size(1) + 2 * g});
  return padded.narrow(0, t.y0, t.frame_height()).narrow(1, t.x0, t.frame_width()).clone();
}

/// The tile of a plane in a frame whose ring is `fill`: sigmas and masks count the tile alone.
torch::Tensor tile_in_frame(const torch::Tensor& plane, const mpi::TileGeometry& t, float fill) {
  torch::Tensor frame = torch::full({t.frame_height(), t.frame_width()}, fill, plane.options());
  frame.narrow(0, t.halo, t.height()).narrow(1, t.halo, t.width()).copy_(
      plane.narrow(0, t.y0, t.height()).narrow(1, t.x0, t.width()));
  return frame;
}

/// Reads `exposures` (manifest indices) into `stack`; appends "index:checksum " to `checksums`.
/// With `tile`, keeps its frames only (one whole exposure in memory at a time).
void read_exposures(const StackPlan& plan, const std::vector<int>& exposures, int total, LocalStack& stack,
                    std::vector<std::uint8_t>& saturated, std::string& checksums, const mpi::TileGeometry* tile,
                    bool psf_per_tile) {
  saturated.resize(static_cast<std::size_t>(plan.height * plan.width), 0);
  stack.exposure_ids = exposures;
  stack.total_exposures = total;
  std::vector<torch::Tensor> images, sigmas, good;
  for (int t : exposures) {
    io::ExposureData data = io::read_exposure(plan.spec.exposures[t], plan.spec);
    io::Checksum sum;
    sum.add(data.image.pixels);
    sum.add(data.sigma.pixels);
    sum.add(data.good);
    sum.add(data.psf.pixels);
    checksums += std::to_string(t) + ":" + std::to_string(sum.value()) + " ";
    if (tile == nullptr || (tile->row == 0 && tile->col == 0)) {  // said once, not by every tile's reader
      for (const auto& warning : data.warnings) spdlog::warn("{}", warning);
      spdlog::info("{}: flux scale 1/{:.6g} from {}", data.label, data.flux_scale, data.flux_scale_source);
    }
    for (std::size_t i = 0; i < data.saturated.size(); ++i) saturated[i] |= data.saturated[i];
    torch::Tensor image = to_tensor(data.image), sigma = to_tensor(data.sigma);
    torch::Tensor mask = torch::from_blob(data.good.data(), {plan.height, plan.width}, torch::kUInt8).to(torch::kFloat32);
    if (tile != nullptr && psf_per_tile) {  // Note [tile PSFs]; the checksum keeps the centre's
      const std::array<double, 2> offset{(tile->x0 + tile->x1 - plan.width) / 2.0,
                                         (tile->y0 + tile->y1 - plan.height) / 2.0};
      const io::ExposureSpec& spec = plan.spec.exposures[t];
      const std::string header = spec.psf_frame.empty() ? "" : io::read_image_summary(spec, plan.spec).text;
      std::vector<std::string> again;  // said once already, for the centre
      data.psf = io::read_psf(spec, plan.height, plan.width, again, header, offset);
    }
    if (tile != nullptr) {
      image = frame_of(image, *tile);
      sigma = tile_in_frame(sigma, *tile, 1.0f);
      mask = tile_in_frame(mask, *tile, 0.0f);
    }
    images.push_back(image);
    sigmas.push_back(sigma);
    good.push_back(mask);
    stack.psfs.push_back(to_tensor(data.psf));
  }
  if (exposures.empty()) {  // a rank without held-out exposures: empty planes of the stack's shape
    const std::int64_t h = tile ? tile->frame_height() : plan.height, w = tile ? tile->frame_width() : plan.width;
    stack.images = torch::zeros({0, h, w});
    stack.sigmas = torch::ones({0, h, w});
    stack.good = torch::zeros({0, h, w});
    return;
  }
  stack.images = torch::stack(images);
  stack.sigmas = torch::stack(sigmas);
  stack.good = torch::stack(good);
}

// Note [co-registration]: astroclear fits every exposure pixel by pixel on one grid, so their WCSs
// must agree: each exposure's corners and centre, mapped to the sky by its own WCS (WCSLIB, with
// its distortions) and back to pixels by the first exposure's, must land within the manifest's
// registration_tolerance_px (default 0.1 px) of where they started. Real exposures of one field
// differ by tenths of an arcsecond and must be resampled onto one grid first. Exposures without a
// WCS (simulations, tests) are not compared.
void check_registration(const io::Wcs& reference, const std::string& reference_where, const io::ImageHeader& header,
                        double tolerance_px) {
  const std::optional<io::Wcs> wcs = io::Wcs::from_header(header.text, header.where);
  if (!wcs) return;
  const io::RegistrationOffset offset = io::registration_offset(reference, *wcs, header.height, header.width);
  if (offset.pixels <= tolerance_px) return;
  char text[256];
  std::snprintf(text, sizeof(text), "%.3g px (at its pixel (%.0f, %.0f))", offset.pixels, offset.x, offset.y);
  throw Error(header.where + ": its WCS puts the image " + text + " from where " + reference_where +
              "'s WCS puts it; the exposures must be on one pixel grid (manifest [stack] "
              "registration_tolerance_px = " + std::to_string(tolerance_px) +
              "). Resample them onto the first exposure's grid first (README, \"Your own data\")");
}

}  // namespace

int StackPlan::fit_position(int exposure) const {
  const auto at = std::lower_bound(fit.begin(), fit.end(), exposure);
  if (at == fit.end() || *at != exposure) throw Error("exposure " + std::to_string(exposure) + " is not fitted");
  return static_cast<int>(at - fit.begin());
}

StackPlan plan_stack(const std::string& manifest, mpi::Communicator& comm, bool with_seeing) {
  StackPlan plan;
  comm.collectively([&] {
    plan.spec = io::load_manifest(manifest);
    const auto& exposures = plan.spec.exposures;
    if (exposures.size() < 2) {
      throw Error(manifest + ": " + std::to_string(exposures.size()) +
                  " exposure(s); astroclear needs at least 2 exposures of the field");
    }
    std::optional<io::Wcs> reference;  // the first exposure's
    std::string reference_where;
    for (std::size_t t = 0; t < exposures.size(); ++t) {
      const io::ImageHeader header = io::read_image_summary(exposures[t], plan.spec);
      const std::int64_t h = header.height, w = header.width;
      if (t == 0) {
        plan.height = h;
        plan.width = w;
        reference = io::Wcs::from_header(header.text, header.where);
        reference_where = header.where;
      } else if (h != plan.height || w != plan.width) {
        throw Error(exposures[t].label() + ": " + io::shape_text(h, w) + " pixels, but " + exposures[0].label() +
                    " is " + io::shape_text(plan.height, plan.width) + "; all exposures must be co-registered on one grid");
      } else if (reference) {
        check_registration(*reference, reference_where, header, plan.spec.registration_tolerance_px);
      }
      plan.pixels.push_back(h * w);
      if (with_seeing) {
        std::vector<std::string> warnings;  // said again when the exposure is read
        const io::Image psf = io::read_psf(exposures[t], h, w, warnings, header.text);
        plan.psf_fwhm.push_back(io::psf_fwhm(psf));
        plan.psf_side = std::max({plan.psf_side, psf.height, psf.width});
      }
    }
  });
  return plan;
}

std::vector<int> spread_over_seeing(const std::vector<double>& fwhm, int count) {
  const int n = static_cast<int>(fwhm.size());
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return fwhm[a] < fwhm[b]; });
  std::vector<int> chosen;
  for (int k = 0; k < count && k < n; ++k) {
    chosen.push_back(order[std::min(n - 1, static_cast<int>(std::floor((k + 0.5) * n / count)))]);
  }
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  return chosen;
}

LoadedStack load_stack(StackPlan plan, const Selection& selection, mpi::Communicator& comm,
                       std::shared_ptr<mpi::TileRanks> tiles, bool psf_per_tile) {
  LoadedStack loaded;
  loaded.tiles = tiles;
  const int n = static_cast<int>(plan.spec.exposures.size());
  // The exposures are split over the ranks of a tile; every tile's ranks split them alike.
  const int shards = tiles ? tiles->layout.shards : comm.size();
  const auto per_rank = [&](const std::vector<std::vector<int>>& by_shard) {
    if (!tiles) return by_shard;
    std::vector<std::vector<int>> out;
    for (int r = 0; r < comm.size(); ++r) out.push_back(by_shard[tiles->layout.shard_of(r)]);
    return out;
  };
  comm.collectively([&] {
    plan.held_out = selection.held_out;
    std::sort(plan.held_out.begin(), plan.held_out.end());
    for (std::size_t k = 0; k < plan.held_out.size(); ++k) {
      const int t = plan.held_out[k];
      if (t < 0 || t >= n) {
        throw Error("exposure " + std::to_string(t) + ": no such exposure; " + plan.spec.source +
                    " lists exposures 0-" + std::to_string(n - 1));
      }
      if (k > 0 && plan.held_out[k - 1] == t) throw Error("exposure " + std::to_string(t) + " is named twice");
    }
    for (int t = 0; selection.fit && t < n; ++t) {
      if (!std::binary_search(plan.held_out.begin(), plan.held_out.end(), t)) plan.fit.push_back(t);
    }
    if (selection.fit) {
      std::vector<std::int64_t> fit_pixels;
      for (int t : plan.fit) fit_pixels.push_back(plan.pixels[t]);
      if (tiles && shards > static_cast<int>(plan.fit.size())) {
        throw Error("--tiles " + tiles->layout.grid.text() + ": " + std::to_string(shards) + " ranks per tile (" +
                    std::to_string(comm.size()) + " ranks over " + std::to_string(tiles->layout.grid.count()) +
                    " tiles), but " + std::to_string(plan.fit.size()) + " exposures are fitted: a tile's ranks split "
                    "its exposures, at most one rank each; run with -n " +
                    std::to_string(plan.fit.size() * tiles->layout.grid.count()) + " or fewer");
      }
      plan.owners = mpi::partition_exposures(fit_pixels, shards);
      for (auto& owned : plan.owners) {
        for (int& k : owned) k = plan.fit[k];
      }
    } else {
      plan.owners.assign(shards, {});
    }
    plan.held_out_owners = per_rank(mpi::split_evenly(plan.held_out, shards));
    plan.owners = per_rank(plan.owners);
    plan.shards = shards;
  });
  const auto first_tile = [&](const std::vector<std::vector<int>>& owners) {
    return std::vector<std::vector<int>>(owners.begin(), owners.begin() + shards);
  };
  if (comm.rank() == 0 && selection.fit) {
    spdlog::info("partition{}: {}", tiles ? " (of each tile's ranks)" : "",
                 mpi::describe_partition(first_tile(plan.owners), plan.pixels));
  }
  if (comm.rank() == 0 && !plan.held_out.empty()) {
    spdlog::info("held out: {}", mpi::describe_partition(first_tile(plan.held_out_owners), plan.pixels));
  }

  std::string local_checksums;
  comm.collectively([&] {
    const mpi::TileGeometry* tile = tiles && tiles->tiled() ? &tiles->tile : nullptr;
    try {
      read_exposures(plan, plan.owners[comm.rank()], static_cast<int>(plan.fit.size()), loaded.stack,
                     loaded.saturated, local_checksums, tile, psf_per_tile);
      read_exposures(plan, plan.held_out_owners[comm.rank()], static_cast<int>(plan.held_out.size()), loaded.held_out,
                     loaded.saturated, local_checksums, tile, psf_per_tile);
    } catch (const Error& e) {
      if (tile == nullptr) throw;
      throw Error(std::string(e.what()) + " (reading " + tile->describe() + ")", e.rank());
    }
    if (comm.rank() == 0) loaded.first_header = io::read_image_header(plan.spec.exposures[0], plan.spec);
  });
  loaded.checksums.assign(n, 0);
  for (int r = 0; r < comm.size(); ++r) {
    std::istringstream owned(comm.broadcast_string(local_checksums, r));
    int t = 0;
    char colon = 0;
    for (std::uint64_t value; owned >> t >> colon >> value;) loaded.checksums[t] = value;
  }
  loaded.plan = std::move(plan);
  return loaded;
}

LoadedStack load_stack(const std::string& manifest, mpi::Communicator& comm) {
  return load_stack(plan_stack(manifest, comm), Selection{}, comm);
}

LoadedStack load_for_fit(const std::string& manifest, const ValidationConfig& validation, mpi::Communicator& comm,
                         double target_fwhm, const TileRequest& request) {
  const bool tiled = !request.grid.whole_field();
  if (request.psf_per_tile && !tiled) {
    comm.collectively([] { throw Error("--psf-per-tile: needs --tiles with more than one tile"); });
  }
  StackPlan plan = plan_stack(manifest, comm, /*with_seeing=*/validation.exposures != 0 || tiled);
  const int n = static_cast<int>(plan.spec.exposures.size());
  comm.collectively([&] { validation.validate(n); });
  std::shared_ptr<mpi::TileRanks> tiles;
  if (tiled) {
    const std::int64_t halo = std::max(request.encoder_halo, plan.psf_side / 2);
    mpi::RankLayout layout;
    comm.collectively([&] { layout = mpi::RankLayout::make(request.grid, comm.size(), plan.height, plan.width, halo); });
    tiles = std::make_shared<mpi::TileRanks>(mpi::TileRanks::make(layout, comm, plan.height, plan.width, halo));
    if (comm.rank() == 0) {
      spdlog::info("tiles: {} of about {} px with a halo of {} px; {} rank(s) per tile", request.grid.text(),
                   io::shape_text(tiles->tile.height(), tiles->tile.width()), halo, layout.shards);
    }
  }
  Selection selection;
  if (validation.exposures != 0 && !plan.psf_fwhm.empty()) {
    selection.held_out = spread_over_seeing(plan.psf_fwhm, validation.held_out_count(n));
  }
  LoadedStack loaded = load_stack(std::move(plan), selection, comm, tiles, request.psf_per_tile);
  if (tiles) {
    loaded.stack.normalise(comm, tiles->tile_group.get(), tiles->exposure_group.get());
  } else {
    loaded.stack.normalise(comm);
  }
  loaded.held_out.normalise_with(loaded.stack.flux_unit, comm);
  if (target_fwhm > 0) {
    const double residual = std::max(restore_to_target(loaded.stack, target_fwhm),
                                     restore_to_target(loaded.held_out, target_fwhm));
    int worst = static_cast<int>(std::ceil(residual * 1e6));  // in millionths, for the max over ranks
    comm.all_reduce_max(&worst, 1);
    if (comm.rank() == 0) {
      spdlog::info("target resolution: a Gaussian of FWHM {} px; every PSF is a kernel * that target to a relative "
                   "{:.2g} or better", target_fwhm, worst * 1e-6);
    }
  }
  return loaded;
}

}  // namespace astroclear::jobs
