// Exact order statistics (medians, quartiles) of values spread over several parts (ranks, tiles).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace astroclear {

/// Sums `values` over every part, in place (an all-reduce); every part calls it at the same step.
using SumOverParts = std::function<void(std::vector<double>& values)>;

/// The k-th smallest (0-based) of the values of set `set`, over every part.
struct OrderQuery {
  std::size_t set = 0;
  std::int64_t k = 0;
};

// Note [order statistics]: a median or quartile over values that several ranks hold (an
// exposure's pixels split over tiles) is found exactly, without gathering the values. Finite
// floats order as their bit patterns do once mapped to unsigned keys (negative ones reversed
// below the positive ones), so a bisection over the 32 key bits, counting each part's values at or
// below the candidate (one sum over the parts per step, for all queries together), ends on the
// k-th smallest value itself. Each part keeps only its values inside the interval still open, so
// the passes shrink. With one part (`sum` empty) it is std::nth_element, which gives the same value.
// -0 counts as +0 (they are equal), so the answer does not depend on the split.

/// For each query, the k-th smallest of its set's values over every part (Note [order
/// statistics]). Every part passes the same sets (by index; its own values, maybe none) and
/// queries; the values must be finite and each k below its set's count over all parts.
std::vector<float> order_statistics(const std::vector<std::vector<float>>& sets, const std::vector<OrderQuery>& queries,
                                    const SumOverParts& sum = {});

}  // namespace astroclear
