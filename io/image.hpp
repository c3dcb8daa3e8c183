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

/// A rectangle of an image's pixels: rows [y0, y1), columns [x0, x1), 0-indexed.
struct PixelBox {
  std::int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;

  static PixelBox whole(std::int64_t height, std::int64_t width) { return {0, height, 0, width}; }
  std::int64_t height() const { return y1 - y0; }
  std::int64_t width() const { return x1 - x0; }
  std::int64_t count() const { return height() * width(); }
  bool operator==(const PixelBox& o) const { return y0 == o.y0 && y1 == o.y1 && x0 == o.x0 && x1 == o.x1; }
  /// Whether `inner` lies inside this box.
  bool contains(const PixelBox& inner) const {
    return inner.y0 >= y0 && inner.y1 <= y1 && inner.x0 >= x0 && inner.x1 <= x1;
  }
  /// "rows 0-31, columns 0-63" (inclusive), for messages.
  std::string text() const {
    return "rows " + std::to_string(y0) + "-" + std::to_string(y1 - 1) + ", columns " + std::to_string(x0) + "-" +
           std::to_string(x1 - 1);
  }
};

/// One FITS header card kept verbatim (WCS, provenance).
struct HeaderCard {
  std::string key;
  std::string value;  ///< as written in the card (strings keep their quotes)
  std::string comment;
};

std::string shape_text(std::int64_t height, std::int64_t width);

}  // namespace astroclear::io
