// Plain row-major images exchanged between io/ and the rest: no LibTorch, no CFITSIO.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace astroclear::io {

/// A 2-D float image, row-major, 0-indexed (y, x).
struct Image {
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::vector<float> pixels;

  Image() = default;
  Image(std::int64_t h, std::int64_t w, float fill = 0.0f) : height(h), width(w), pixels(h * w, fill) {}
  float& at(std::int64_t y, std::int64_t x) { return pixels[y * width + x]; }
  float at(std::int64_t y, std::int64_t x) const { return pixels[y * width + x]; }
  std::int64_t size() const { return height * width; }
};

/// A 2-D integer mask plane (bits), row-major.
struct MaskImage {
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::vector<std::int32_t> pixels;
};

/// One FITS header card kept verbatim (WCS, provenance).
struct HeaderCard {
  std::string key;
  std::string value;  ///< as written in the card (strings keep their quotes)
  std::string comment;
};

std::string shape_text(std::int64_t height, std::int64_t width);

}  // namespace astroclear::io
