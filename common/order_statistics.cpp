// The bisection of Note [order statistics].
#include "common/order_statistics.hpp"

#include <algorithm>
#include <cstring>

namespace astroclear {
namespace {

/// An unsigned key that orders as the float does (-0 as +0).
std::uint32_t key_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (bits == 0x80000000u) bits = 0;
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

float value_of(std::uint32_t key) {
  const std::uint32_t bits = (key & 0x80000000u) != 0 ? key & 0x7fffffffu : ~key;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace

std::vector<float> order_statistics(const std::vector<std::vector<float>>& sets, const std::vector<OrderQuery>& queries,
                                    const SumOverParts& sum) {
  const std::size_t q = queries.size();
  std::vector<float> answers(q);
  if (!sum) {
    for (std::size_t i = 0; i < q; ++i) {
      std::vector<float> values = sets.at(queries[i].set);
      const auto kth = values.begin() + static_cast<std::ptrdiff_t>(queries[i].k);
      std::nth_element(values.begin(), kth, values.end());
      answers[i] = value_of(key_of(*kth));
    }
    return answers;
  }
  std::vector<std::vector<std::uint32_t>> candidates(q);
  std::vector<std::uint64_t> low(q, 0), high(q, 0xffffffffu);  // the answer's key lies in [low, high]
  std::vector<double> rank(q);                                  // its rank among the candidates left
  for (std::size_t i = 0; i < q; ++i) {
    for (float v : sets.at(queries[i].set)) candidates[i].push_back(key_of(v));
    rank[i] = static_cast<double>(queries[i].k);
  }
  // Every part has the same low and high, so every part takes the same number of steps.
  while (true) {
    bool open = false;
    for (std::size_t i = 0; i < q; ++i) open = open || low[i] < high[i];
    if (!open) break;
    std::vector<double> at_or_below(q, 0.0);
    std::vector<std::uint64_t> middle(q);
    std::vector<std::vector<std::uint32_t>::iterator> split(q);
    for (std::size_t i = 0; i < q; ++i) {
      middle[i] = low[i] + (high[i] - low[i]) / 2;
      const auto m = static_cast<std::uint32_t>(middle[i]);
      split[i] = std::partition(candidates[i].begin(), candidates[i].end(), [m](std::uint32_t k) { return k <= m; });
      at_or_below[i] = static_cast<double>(split[i] - candidates[i].begin());
    }
    sum(at_or_below);
    for (std::size_t i = 0; i < q; ++i) {
      if (low[i] == high[i]) continue;
      if (at_or_below[i] >= rank[i] + 1) {
        high[i] = middle[i];
        candidates[i].erase(split[i], candidates[i].end());
      } else {
        low[i] = middle[i] + 1;
        rank[i] -= at_or_below[i];
        candidates[i].erase(candidates[i].begin(), split[i]);
      }
    }
  }
  for (std::size_t i = 0; i < q; ++i) answers[i] = value_of(static_cast<std::uint32_t>(low[i]));
  return answers;
}

}  // namespace astroclear
