// The spatial tile grid: how the field is cut into tiles, and which ranks share a tile or its exposures.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "mpi/communicator.hpp"

namespace astroclear::mpi {

// Note [tiles]: with --tiles RxC the field is cut into R x C tiles (rows of tiles, then columns),
// and the ranks form a grid of tiles x exposure shards: rank = tile * shards + shard, so the
// ranks of one tile are consecutive (one node, where the image-sized pointwise sums travel) and
// each tile's ranks split the exposures as a run without tiles would. Three groups of ranks:
// - the tile group (same tile, every shard): the pointwise sum over exposures;
// - the exposure group (same shard, every tile): BatchNorm's statistics and the gradients of
//   the exposures' parameters, which are sums over the whole field;
// - within the exposure group, a tile's four neighbours: the halo exchange.
// Tiles split the rows and the columns as evenly as they can (the first ones one pixel larger);
// every tile is larger than the halo in both directions, so a halo comes from the nearest tiles only.

/// R x C tiles; 1 x 1 is the whole field.
struct TileGrid {
  int rows = 1, cols = 1;

  /// "RxC" (e.g. "2x2"); throws Error naming --tiles and the text otherwise.
  static TileGrid parse(const std::string& text);
  std::int64_t count() const { return static_cast<std::int64_t>(rows) * cols; }
  bool whole_field() const { return count() == 1; }
  std::string text() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};

/// [first, last) of block `index` of `blocks` over `length`: the first length % blocks one longer.
std::pair<std::int64_t, std::int64_t> block_range(std::int64_t length, int blocks, int index);

/// One tile of a field, and the ring of `halo` pixels around it that a rank also works on.
struct TileGeometry {
  std::int64_t field_height = 0, field_width = 0;
  int row = 0, col = 0;           ///< the tile's place in the grid
  std::int64_t y0 = 0, y1 = 0;    ///< rows [y0, y1) of the field
  std::int64_t x0 = 0, x1 = 0;    ///< columns [x0, x1)
  std::int64_t halo = 0;

  std::int64_t height() const { return y1 - y0; }
  std::int64_t width() const { return x1 - x0; }
  /// The tile with its halo on every side (the frame a rank's planes have).
  std::int64_t frame_height() const { return height() + 2 * halo; }
  std::int64_t frame_width() const { return width() + 2 * halo; }
  /// "tile 1,0 (rows 64-127, columns 0-63)".
  std::string describe() const;
};

/// Where the ranks sit on the grid of tiles x exposure shards (Note [tiles]).
struct RankLayout {
  TileGrid grid;
  int shards = 1;  ///< ranks per tile

  /// Throws Error before any work when `ranks` is not a multiple of the tile count, when a tile
  /// would have no pixel, or when a tile is not larger than `halo` in either direction.
  static RankLayout make(const TileGrid& grid, int ranks, std::int64_t height, std::int64_t width,
                         std::int64_t halo);
  int tile_of(int rank) const { return rank / shards; }
  int shard_of(int rank) const { return rank % shards; }
  /// The tile `tile` of a field of height x width with a halo of `halo`.
  TileGeometry geometry(int tile, std::int64_t height, std::int64_t width, std::int64_t halo) const;
  /// The tile at grid position (row, col), or -1 outside the grid.
  int tile_at(int row, int col) const;
};

/// The ranks (in the communicator of the exchange) that hold the tiles beside this one; -1 at the
/// field's edge.
struct Neighbours {
  int up = -1, down = -1, left = -1, right = -1;
};

/// One rank's place on the grid: its tile and the communicators of Note [tiles].
struct TileRanks {
  RankLayout layout;
  TileGeometry tile;
  std::unique_ptr<Communicator> tile_group;      ///< the ranks of this tile (rank in it = shard)
  std::unique_ptr<Communicator> exposure_group;  ///< the ranks of these exposures (rank in it = tile)
  Neighbours neighbours;                         ///< in exposure_group

  /// Collective over `world`: splits it as `layout` says, for a field of height x width.
  static TileRanks make(const RankLayout& layout, Communicator& world, std::int64_t height, std::int64_t width,
                        std::int64_t halo);
  bool tiled() const { return !layout.grid.whole_field(); }
};

}  // namespace astroclear::mpi
