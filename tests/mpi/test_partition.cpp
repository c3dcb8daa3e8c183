// The exposure partition and the device and thread binding of a rank (serial: no MPI needed).
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "mpi/partition.hpp"

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
  try {
    mpi::partition_exposures(std::vector<std::int64_t>(3, 10), 4);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more MPI ranks (4) than exposures (3)"), std::string::npos) << e.what();
  }
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
