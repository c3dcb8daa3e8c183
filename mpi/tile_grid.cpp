// TileGrid parsing, the even split of rows and columns, and the checks of a rank grid.
#include "mpi/tile_grid.hpp"

#include <regex>

#include "common/error.hpp"

namespace astroclear::mpi {

TileGrid TileGrid::parse(const std::string& text) {
  static const std::regex form("\\s*([0-9]{1,6})\\s*[xX]\\s*([0-9]{1,6})\\s*");
  std::smatch m;
  if (!std::regex_match(text, m, form)) {
    throw Error("--tiles: '" + text + "' is not RxC (rows x columns of tiles, e.g. 2x2)");
  }
  TileGrid grid{std::stoi(m[1].str()), std::stoi(m[2].str())};
  if (grid.rows < 1 || grid.cols < 1) throw Error("--tiles: " + text + " has no tile; at least 1x1");
  return grid;
}

std::pair<std::int64_t, std::int64_t> block_range(std::int64_t length, int blocks, int index) {
  const std::int64_t base = length / blocks, extra = length % blocks;
  const std::int64_t first = index * base + std::min<std::int64_t>(index, extra);
  return {first, first + base + (index < extra ? 1 : 0)};
}

std::string TileGeometry::describe() const {
  return "tile " + std::to_string(row) + "," + std::to_string(col) + " (rows " + std::to_string(y0) + "-" +
         std::to_string(y1 - 1) + ", columns " + std::to_string(x0) + "-" + std::to_string(x1 - 1) + ")";
}

RankLayout RankLayout::make(const TileGrid& grid, int ranks, std::int64_t height, std::int64_t width,
                            std::int64_t halo) {
  if (grid.rows > height || grid.cols > width) {
    throw Error("--tiles " + grid.text() + ": more tiles than pixels in a field of " + std::to_string(height) + " x " +
                std::to_string(width));
  }
  if (ranks % grid.count() != 0) {
    throw Error("--tiles " + grid.text() + ": " + std::to_string(ranks) + " MPI rank(s) do not divide into " +
                std::to_string(grid.count()) + " tiles; run a multiple of " + std::to_string(grid.count()) +
                " ranks (tiles x exposure shards)");
  }
  const std::int64_t smallest_h = height / grid.rows, smallest_w = width / grid.cols;
  if (!grid.whole_field() && (smallest_h <= halo || smallest_w <= halo)) {
    throw Error("--tiles " + grid.text() + ": tiles of " + std::to_string(smallest_h) + " x " +
                std::to_string(smallest_w) + " px are not larger than the halo of " + std::to_string(halo) +
                " px (the largest PSF or depthwise kernel half-width) on a field of " + std::to_string(height) + " x " +
                std::to_string(width) + "; use fewer tiles");
  }
  return RankLayout{grid, static_cast<int>(ranks / grid.count())};
}

TileGeometry RankLayout::geometry(int tile, std::int64_t height, std::int64_t width, std::int64_t halo) const {
  TileGeometry g;
  g.field_height = height;
  g.field_width = width;
  g.row = tile / grid.cols;
  g.col = tile % grid.cols;
  std::tie(g.y0, g.y1) = block_range(height, grid.rows, g.row);
  std::tie(g.x0, g.x1) = block_range(width, grid.cols, g.col);
  g.halo = grid.whole_field() ? 0 : halo;
  return g;
}

int RankLayout::tile_at(int row, int col) const {
  if (row < 0 || col < 0 || row >= grid.rows || col >= grid.cols) return -1;
  return row * grid.cols + col;
}

TileRanks TileRanks::make(const RankLayout& layout, Communicator& world, std::int64_t height, std::int64_t width,
                          std::int64_t halo) {
  TileRanks out;
  out.layout = layout;
  const int tile = layout.tile_of(world.rank()), shard = layout.shard_of(world.rank());
  out.tile = layout.geometry(tile, height, width, halo);
  out.tile_group = world.split(tile, shard);
  out.exposure_group = world.split(shard, tile);
  const int r = out.tile.row, c = out.tile.col;
  out.neighbours = {layout.tile_at(r - 1, c), layout.tile_at(r + 1, c), layout.tile_at(r, c - 1),
                    layout.tile_at(r, c + 1)};
  return out;
}

}  // namespace astroclear::mpi
