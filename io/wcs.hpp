// The celestial WCS of an image, through WCSLIB: pixel to sky and back, distortions included.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace astroclear::io {

/// A celestial WCS as WCSLIB reads it from a header (TAN, TPV, SIP, ... with their distortions).
/// Pixels are FITS pixels: (1, 1) is the centre of the first pixel. Move-only.
class Wcs {
 public:
  /// The WCS of `header` (FITS header text, 80-character cards), or nullopt when it has none (no
  /// CTYPE). Throws Error naming `where` when WCSLIB cannot use the one it has.
  static std::optional<Wcs> from_header(const std::string& header, const std::string& where);

  Wcs(Wcs&& other) noexcept;
  Wcs& operator=(Wcs&& other) noexcept;
  Wcs(const Wcs&) = delete;
  Wcs& operator=(const Wcs&) = delete;
  ~Wcs();

  /// (RA, Dec) in degrees of pixel (x, y).
  std::array<double, 2> pixel_to_sky(double x, double y) const;
  /// Pixel (x, y) of (RA, Dec) in degrees.
  std::array<double, 2> sky_to_pixel(double ra, double dec) const;

 private:
  Wcs(void* wcs, int count, std::string where) : wcs_(wcs), count_(count), where_(std::move(where)) {}
  void release() noexcept;  ///< frees WCSLIB's structures
  void* wcs_ = nullptr;  ///< wcsprm[count_]; only io/wcs.cpp sees WCSLIB
  int count_ = 0;
  std::string where_;
};

/// How far apart two exposures' WCSs put the same image: over the corners and the centre of a
/// height x width image, the largest distance (in `reference`'s pixels) between a pixel of `other`
/// and where `reference` puts the same sky position.
struct RegistrationOffset {
  double pixels = 0;  ///< the largest distance
  double x = 0, y = 0;  ///< the pixel of `other` where it is largest
};
RegistrationOffset registration_offset(const Wcs& reference, const Wcs& other, std::int64_t height, std::int64_t width);

}  // namespace astroclear::io
