// From a manifest to this rank's LocalStacks: plan (headers, partition), read, validate, agree.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/image.hpp"
#include "io/manifest.hpp"
#include "mpi/communicator.hpp"
#include "mpi/tile_grid.hpp"
#include "src/config.hpp"
#include "src/stack.hpp"

namespace astroclear::jobs {

/// What every rank knows about the whole stack before reading pixels.
struct StackPlan {
  io::StackSpec spec;
  std::int64_t height = 0, width = 0;
  std::vector<std::int64_t> pixels;  ///< per manifest exposure
  std::vector<double> psf_fwhm;      ///< per manifest exposure, pixels; empty unless planned with_seeing
  std::int64_t psf_side = 0;         ///< the largest PSF side of any exposure; 0 unless planned with_seeing
  std::vector<int> fit;              ///< manifest indices of the exposures fitted, ascending
  std::vector<int> held_out;         ///< manifest indices held out (Note [held-out exposures]), ascending
  int shards = 0;  ///< ranks per tile (Note [tiles]): owners of ranks [0, shards) cover the fit once
  std::vector<std::vector<int>> owners;           ///< per rank: its fit exposures
  std::vector<std::vector<int>> held_out_owners;  ///< per rank: its held-out exposures (may be none)

  /// The position of manifest exposure `exposure` among `fit` (its row in sharded parameters).
  int fit_position(int exposure) const;
};

/// The exposures this rank reads, and what the outputs need from the inputs.
struct LoadedStack {
  StackPlan plan;
  LocalStack stack;     ///< this rank's fit exposures: calibrated, not yet normalised
  LocalStack held_out;  ///< this rank's held-out exposures (maybe none): calibrated, not yet normalised
  std::vector<io::HeaderCard> first_header;  ///< image header of the manifest's first exposure (rank 0 only)
  /// H x W (on tiles the tile's h x w), this rank's exposures (fit and held out): 1 where any
  /// one's mask says saturated.
  std::vector<std::uint8_t> saturated;
  /// This rank's tile and its groups (Note [tiles]); nullptr without --tiles. The stacks then
  /// hold the tile's frames: images with the ring of neighbouring (or reflected) pixels, sigmas and
  /// mask of the tile alone (the ring masked).
  std::shared_ptr<mpi::TileRanks> tiles;
  /// Per manifest exposure, on every rank: its input fingerprint (Note [input fingerprint]), which
  /// checkpoints carry; the same on any tile grid.
  std::vector<std::uint64_t> checksums;
  /// Per manifest exposure: the checksum of its whole planes that format 2 checkpoints carry; 0
  /// when read in parts (on tiles).
  std::vector<std::uint64_t> plane_checksums;
};

/// Collective. Reads the manifest and every exposure's header (shapes must agree) and, with
/// `with_seeing`, every PSF's FWHM. Any failure on any rank raises CollectiveError on all ranks.
StackPlan plan_stack(const std::string& manifest, mpi::Communicator& comm, bool with_seeing = false);

/// `count` of the exposures, spread evenly over the range of their PSF FWHMs (`fwhm`, one per
/// exposure): the exposures at ranks (k + 1/2) n / count of the FWHM order, ascending by index.
std::vector<int> spread_over_seeing(const std::vector<double>& fwhm, int count);

/// Which exposures a rank reads.
struct Selection {
  std::vector<int> held_out;  ///< manifest indices to hold out (read into LoadedStack::held_out)
  bool fit = true;            ///< read the other exposures as the fit's; false: only the held-out ones
};

/// Collective. Partitions the fit exposures over the ranks by pixel count and the held-out ones
/// evenly, then each rank reads and validates only its own. Any failure on any rank raises
/// CollectiveError on all ranks, before the first training collective. Ends by sharing every
/// exposure's checksum with every rank. With `tiles` the exposures are split over the ranks of each
/// tile, and each rank reads its tile's frames alone (Note [exposure parts]).
LoadedStack load_stack(StackPlan plan, const Selection& selection, mpi::Communicator& comm,
                       std::shared_ptr<mpi::TileRanks> tiles = nullptr, bool psf_per_tile = false);

/// Collective. plan_stack, then every exposure read as the fit's (nothing held out).
LoadedStack load_stack(const std::string& manifest, mpi::Communicator& comm);

/// Collective. The stack of a fit that validates on held-out exposures (Note [held-out
/// exposures]): refuses a `validation` that does not fit the stack, holds out
/// validation.held_out_count() exposures spread over the range of seeing, reads the stack, and
/// normalises the fit's exposures and then the held-out ones with the same flux unit. With
/// `target_fwhm` > 0, every PSF becomes its kernel to that Gaussian target (Note [target
/// resolution]), so that the latent image is the sky at that resolution.
/// A grid of tiles to load onto (Note [tiles]), and the least halo the model needs besides the PSFs'.
struct TileRequest {
  mpi::TileGrid grid;
  std::int64_t encoder_halo = 0;  ///< the largest depthwise kernel's half-width
  /// Each tile takes its exposures' PSFEx models at its own centre (Note [tile PSFs]): a model
  /// whose PSF is constant over a tile instead of over the field.
  bool psf_per_tile = false;
};

/// With a grid of more than one tile, the halo is the larger of `request.encoder_halo` and the
/// largest PSF's half-width, and the grid is checked against the ranks and the field first.
LoadedStack load_for_fit(const std::string& manifest, const ValidationConfig& validation, mpi::Communicator& comm,
                         double target_fwhm = 0, const TileRequest& request = {});

}  // namespace astroclear::jobs
