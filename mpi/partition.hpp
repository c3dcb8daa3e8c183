// The exposure partition (which rank owns which exposures) and the device/thread binding of a rank.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace astroclear::mpi {

/// owners[r] = the exposure indices rank r owns, ascending. Contiguous blocks balanced by pixel
/// count; deterministic; every rank gets at least one exposure. Throws Error when there are more
/// ranks than exposures.
std::vector<std::vector<int>> partition_exposures(const std::vector<std::int64_t>& pixels_per_exposure, int ranks);

/// `items` in contiguous blocks over `ranks`, as even in count as can be (the first ranks get one
/// more); ranks may get none. For held-out exposures, which need not reach every rank.
std::vector<std::vector<int>> split_evenly(const std::vector<int>& items, int ranks);

/// "rank 0: exposures 0-3 (4, 65536 px); rank 1: ..." for the start-up log. `owners` holds
/// indices into `pixels_per_exposure`; a block with gaps lists its runs ("exposures 0-2,4,6-9 (8, ...)").
std::string describe_partition(const std::vector<std::vector<int>>& owners,
                               const std::vector<std::int64_t>& pixels_per_exposure);

/// GPU of a rank: its node-local rank modulo the devices it sees; -1 when it sees none.
int cuda_device_for(int local_rank, int visible_devices);

/// CPU threads of a rank when the user gave none: the node's cores shared among its ranks.
int default_threads(int cores, int local_ranks);

}  // namespace astroclear::mpi
