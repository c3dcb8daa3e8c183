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
#include "io/exposure_reader.hpp"
#include "io/wcs.hpp"
#include "jobs/tensor_image.hpp"
#include "mpi/partition.hpp"
#include "src/target_resolution.hpp"

namespace astroclear::jobs {
namespace {

/// The exposure group as the reader's ExposureParts (Note [exposure parts]): the ranks that hold
/// the same exposures on the other tiles.
class TileParts final : public io::ExposureParts {
 public:
  explicit TileParts(const mpi::TileRanks& tiles) : tiles_(tiles) {}
  void sum(std::vector<double>& values) override {
    tiles_.exposure_group->all_reduce_sum(values.data(), values.size());
  }
  void agree(const std::string& error) override {
    try {
      tiles_.exposure_group->agree_or_throw(error);
    } catch (const CollectiveError& e) {  // its rank is the failing tile's: name the world rank
      throw Error(e.what(), e.rank() * tiles_.layout.shards + tiles_.tile_group->rank());
    }
  }

 private:
  const mpi::TileRanks& tiles_;
};

/// What a tile's rank reads of each exposure: its frame within the field, answering for the tile.
io::ExposurePart tile_part(const mpi::TileGeometry& t, bool psf_per_tile, io::ExposureParts& parts) {
  io::ExposurePart part;
  part.own = {t.y0, t.y1, t.x0, t.x1};
  part.read = {std::max<std::int64_t>(0, t.y0 - t.halo), std::min(t.field_height, t.y1 + t.halo),
               std::max<std::int64_t>(0, t.x0 - t.halo), std::min(t.field_width, t.x1 + t.halo)};
  part.others = &parts;
  part.description = t.describe();
  if (psf_per_tile) {  // Note [tile PSFs]: the tile's centre, from the field's
    part.psf_offset = {(t.x0 + t.x1 - t.field_width) / 2.0, (t.y0 + t.y1 - t.field_height) / 2.0};
  }
  return part;
}

/// A tile's frame (Note [tiles]) of the planes read over `box`: the tile with `halo` more pixels
/// on every side, reflected beyond the field's edges as the encoder's padding reflects them.
torch::Tensor frame_of(const torch::Tensor& plane, const io::PixelBox& box, const mpi::TileGeometry& t) {
  const std::int64_t g = t.halo;
  const std::int64_t top = box.y0 - (t.y0 - g), bottom = (t.y1 + g) - box.y1;
  const std::int64_t left = box.x0 - (t.x0 - g), right = (t.x1 + g) - box.x1;
  return torch::reflection_pad2d(plane.view({1, 1, box.height(), box.width()}), {left, right, top, bottom})
      .view({t.frame_height(), t.frame_width()});
}

/// The tile of planes read over `box`, in a frame whose ring is `fill`: sigmas and masks count the
/// tile alone.
torch::Tensor tile_in_frame(const torch::Tensor& plane, const io::PixelBox& box, const mpi::TileGeometry& t,
                            float fill) {
  torch::Tensor frame = torch::full({t.frame_height(), t.frame_width()}, fill, plane.options());
  frame.narrow(0, t.halo, t.height()).narrow(1, t.halo, t.width()).copy_(
      plane.narrow(0, t.y0 - box.y0, t.height()).narrow(1, t.x0 - box.x0, t.width()));
  return frame;
}

/// The planes read so far, stacked at the end.
struct ReadPlanes {
  std::vector<torch::Tensor> images, sigmas, good;
};

/// Keeps exposure `t` as read (`data`): its planes (with `tile`, as the tile's frames), PSF,
/// saturated pixels and checksums ("index:checksum:plane_checksum ").
void keep_exposure(int t, io::ExposureData& data, const mpi::TileGeometry* tile, LocalStack& stack, ReadPlanes& planes,
                   std::vector<std::uint8_t>& saturated, std::string& checksums) {
  checksums += std::to_string(t) + ":" + std::to_string(data.checksum) + ":" + std::to_string(data.plane_checksum) + " ";
  if (tile == nullptr || (tile->row == 0 && tile->col == 0)) {  // said once, not by every tile's reader
    for (const auto& warning : data.warnings) spdlog::warn("{}", warning);
    spdlog::info("{}: flux scale 1/{:.6g} from {}", data.label, data.flux_scale, data.flux_scale_source);
  }
  const io::PixelBox& box = data.box;
  torch::Tensor image = to_tensor(data.image), sigma = to_tensor(data.sigma);
  torch::Tensor mask = torch::from_blob(data.good.data(), {box.height(), box.width()}, torch::kUInt8).to(torch::kFloat32);
  torch::Tensor flags = torch::from_blob(data.saturated.data(), {box.height(), box.width()}, torch::kUInt8);
  if (tile != nullptr) {
    image = frame_of(image, box, *tile);
    sigma = tile_in_frame(sigma, box, *tile, 1.0f);
    mask = tile_in_frame(mask, box, *tile, 0.0f);
    flags = flags.narrow(0, tile->y0 - box.y0, tile->height()).narrow(1, tile->x0 - box.x0, tile->width());
  }
  flags = flags.contiguous();
  const std::uint8_t* f = flags.data_ptr<std::uint8_t>();
  for (std::size_t i = 0; i < saturated.size(); ++i) saturated[i] |= f[i];
  planes.images.push_back(image);
  planes.sigmas.push_back(sigma);
  planes.good.push_back(mask);
  stack.psfs.push_back(to_tensor(data.psf));
}

/// Reads `exposures` (manifest indices) into `stack` (keep_exposure). With `tiles`, reads its
/// tile's frames only (Note [exposure parts]), in step with the ranks of the other tiles: a
/// failure of this rank stops them at their next agreement.
void read_exposures(const StackPlan& plan, const std::vector<int>& exposures, int total, LocalStack& stack,
                    std::vector<std::uint8_t>& saturated, std::string& checksums, const mpi::TileRanks* tiles,
                    bool psf_per_tile) {
  const mpi::TileGeometry* tile = tiles != nullptr ? &tiles->tile : nullptr;
  const std::int64_t h = tile ? tile->height() : plan.height, w = tile ? tile->width() : plan.width;
  saturated.resize(static_cast<std::size_t>(h * w), 0);
  stack.exposure_ids = exposures;
  stack.total_exposures = total;
  std::optional<TileParts> parts;
  if (tiles != nullptr) parts.emplace(*tiles);
  ReadPlanes planes;
  std::string failed;  // on tiles: a failure here after a read, said at the exposure group's next agreement
  for (int t : exposures) {
    const io::ExposureSpec& spec = plan.spec.exposures[t];
    io::ExposureData data;
    if (tile != nullptr) {
      io::ExposurePart part = tile_part(*tile, psf_per_tile, *parts);
      part.earlier_error = failed;
      data = io::read_exposure(spec, plan.spec, part);
    } else {
      data = io::read_exposure(spec, plan.spec);
    }
    try {
      keep_exposure(t, data, tile, stack, planes, saturated, checksums);
    } catch (const std::exception& e) {
      if (tile == nullptr) throw;
      failed = std::string(e.what()) + " (keeping " + tile->describe() + " of " + spec.label() + ")";
    }
  }
  try {
    if (exposures.empty()) {  // a rank without held-out exposures: empty planes of the stack's shape
      const std::int64_t fh = tile ? tile->frame_height() : plan.height, fw = tile ? tile->frame_width() : plan.width;
      stack.images = torch::zeros({0, fh, fw});
      stack.sigmas = torch::ones({0, fh, fw});
      stack.good = torch::zeros({0, fh, fw});
    } else {
      stack.images = torch::stack(planes.images);
      stack.sigmas = torch::stack(planes.sigmas);
      stack.good = torch::stack(planes.good);
    }
  } catch (const std::exception& e) {
    if (tile == nullptr) throw;
    if (failed.empty()) failed = std::string(e.what()) + " (keeping " + tile->describe() + ")";
  }
  if (parts) parts->agree(failed);
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
    const mpi::TileRanks* tile_ranks = tiles && tiles->tiled() ? tiles.get() : nullptr;
    read_exposures(plan, plan.owners[comm.rank()], static_cast<int>(plan.fit.size()), loaded.stack, loaded.saturated,
                   local_checksums, tile_ranks, psf_per_tile);
    read_exposures(plan, plan.held_out_owners[comm.rank()], static_cast<int>(plan.held_out.size()), loaded.held_out,
                   loaded.saturated, local_checksums, tile_ranks, psf_per_tile);
    if (comm.rank() == 0) loaded.first_header = io::read_image_header(plan.spec.exposures[0], plan.spec);
  });
  loaded.checksums.assign(n, 0);
  loaded.plane_checksums.assign(n, 0);
  mpi::Communicator& holders = tiles && tiles->tiled() ? *tiles->tile_group : comm;  // every exposure once
  for (int r = 0; r < holders.size(); ++r) {
    std::istringstream owned(holders.broadcast_string(local_checksums, r));
    int t = 0;
    char colon = 0, colon2 = 0;
    std::uint64_t plane = 0;
    for (std::uint64_t value; owned >> t >> colon >> value >> colon2 >> plane;) {
      loaded.checksums[t] = value;
      loaded.plane_checksums[t] = plane;
    }
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
