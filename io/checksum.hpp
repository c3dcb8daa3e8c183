// Checksum: a fast 64-bit hash of bytes, for input fingerprints and checkpoint integrity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace astroclear::io {

// Note [checksum]: not cryptographic; it detects corruption and changed inputs. Words of 8 bytes
// go through h = (h ^ w) * p with p odd, so every step is a bijection of h: a change in any one
// word always changes the result. A final avalanche (splitmix64) spreads it over all bits. It
// runs at several GB/s, so fingerprinting a 33 x 4200^2 stack costs well under a second per rank.

/// The splitmix64 finaliser: a bijection of 64-bit words whose every output bit depends on every
/// input bit.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Incremental 64-bit checksum. add() calls in the same order give the same value anywhere.
class Checksum {
 public:
  void add_bytes(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, p + i, bytes - i);
    mix(tail ^ (static_cast<std::uint64_t>(bytes) << 56));
  }
  template <class T>
  void add(const std::vector<T>& values) {
    add_bytes(values.data(), values.size() * sizeof(T));
  }
  void add(const std::string& text) { add_bytes(text.data(), text.size()); }
  void add(std::uint64_t value) { add_bytes(&value, sizeof(value)); }

  std::uint64_t value() const { return mix64(state_ + 0x9E3779B97F4A7C15ULL); }

 private:
  void mix(std::uint64_t word) { state_ = (state_ ^ word) * 0x100000001B3ULL; }
  std::uint64_t state_ = 0xCBF29CE484222325ULL;
};

/// 16 hex digits, for messages and headers.
inline std::string checksum_text(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace astroclear::io
