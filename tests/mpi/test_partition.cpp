// The exposure partition and the device and thread binding of a rank (serial: no MPI needed).
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "mpi/partition.hpp"
#include "mpi/tile_grid.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

TEST(Partition, BalancedContiguousDeterministic) {
  const std::vector<std::int64_t> pixels(7, 100);
  auto owners = mpi::partition_exposures(pixels, 3);
  ASSERT_EQ(owners.size(), 3u);
  EXPECT_EQ(owners[0], (std::vector<int>{0, 1}));
  EXPECT_EQ(owners[1], (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(owners[2], (std::vector<int>{5, 6}));
  // Uneven pixel counts: the big exposure gets a rank of its own.
  owners = mpi::partition_exposures({1000, 100, 100, 100, 100}, 2);
  EXPECT_EQ(owners[0], (std::vector<int>{0}));
  EXPECT_EQ(owners[1].size(), 4u);
  EXPECT_EQ(mpi::partition_exposures(pixels, 7).back(), (std::vector<int>{6}));
}

TEST(Partition, MoreRanksThanExposuresIsAnError) {
  testing::expect_error([] { mpi::partition_exposures(std::vector<std::int64_t>(3, 10), 4); },
                        "more MPI ranks (4) than exposures (3)");
}

TEST(Partition, DeviceAndThreads) {
  EXPECT_EQ(mpi::cuda_device_for(5, 4), 1);
  EXPECT_EQ(mpi::cuda_device_for(0, 0), -1);
  EXPECT_EQ(mpi::default_threads(16, 4), 4);
  EXPECT_EQ(mpi::default_threads(2, 3), 1);
}

TEST(Partition, DescriptionListsTheRunsOfABlockWithGaps) {
  const std::vector<std::int64_t> pixels(10, 100);
  EXPECT_EQ(mpi::describe_partition({{0, 1, 2, 4, 6, 7, 8}, {}, {9}}, pixels),
            "rank 0: exposures 0-2,4,6-8 (7, 700 px); rank 1: none; rank 2: exposures 9 (1, 100 px)");
}

}  // namespace
}  // namespace astroclear

namespace astroclear::mpi {
namespace {

using testing::expect_error;

TEST(TileGrid, ParsesRowsByColumnsAndRefusesOtherText) {
  EXPECT_EQ(TileGrid::parse("2x3").rows, 2);
  EXPECT_EQ(TileGrid::parse("2x3").cols, 3);
  EXPECT_TRUE(TileGrid::parse("1x1").whole_field());
  for (const char* bad : {"2", "2x", "x2", "0x2", "2x0", "-1x2", "2*2", "axb", ""}) {
    expect_error([&] { TileGrid::parse(bad); }, "--tiles");
  }
}

TEST(TileGrid, SplitsUnevenFieldsIntoTilesThatDifferByOnePixel) {
  const RankLayout layout = RankLayout::make(TileGrid{2, 3}, 12, 23, 29, 3);
  EXPECT_EQ(layout.shards, 2);
  EXPECT_EQ(layout.tile_of(5), 2);
  EXPECT_EQ(layout.shard_of(5), 1);
  std::int64_t rows = 0, cols = 0;
  for (int c = 0; c < 3; ++c) cols += layout.geometry(c, 23, 29, 3).width();
  for (int r = 0; r < 2; ++r) rows += layout.geometry(r * 3, 23, 29, 3).height();
  EXPECT_EQ(rows, 23);
  EXPECT_EQ(cols, 29);
  const TileGeometry last = layout.geometry(5, 23, 29, 3);
  EXPECT_EQ(last.y0, 12);  // 23 = 12 + 11
  EXPECT_EQ(last.x0, 20);  // 29 = 10 + 10 + 9
  EXPECT_EQ(last.frame_height(), 11 + 6);
  EXPECT_EQ(layout.tile_at(1, 2), 5);
  EXPECT_EQ(layout.tile_at(2, 0), -1);
  EXPECT_EQ(last.describe(), "tile 1,2 (rows 12-22, columns 20-28)");
}

TEST(TileGrid, RefusesGridsThatDoNotFitTheRanksOrTheField) {
  expect_error([] { RankLayout::make(TileGrid{3, 1}, 4, 100, 100, 3); },
                        "--tiles 3x1: 4 MPI rank(s) do not divide into 3 tiles");
  expect_error([] { RankLayout::make(TileGrid{2, 2}, 4, 100, 30, 15); },
                        "--tiles 2x2: tiles of 50 x 15 px are not larger than the halo of 15 px");
  expect_error([] { RankLayout::make(TileGrid{1, 40}, 40, 10, 20, 0); }, "more tiles than pixels");
  EXPECT_EQ(RankLayout::make(TileGrid{1, 1}, 3, 10, 10, 50).shards, 3);  // one tile: no halo to fit
}

}  // namespace
}  // namespace astroclear::mpi
