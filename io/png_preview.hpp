// PNG previews: images side by side on one asinh stretch, for a first look without ds9.
#pragma once

#include <string>
#include <vector>

#include "io/image.hpp"

namespace astroclear::io {

/// A value v is drawn at grey level asinh((v - zero) / softening) / asinh((top - zero) / softening),
/// clipped to [0, 1].
struct PreviewStretch {
  double zero = 0;
  double softening = 1;
  double top = 1;
};

/// The stretch of one image: zero at its median, softening twice its noise (from the median absolute
/// deviation), top at its 99.9th percentile but at least 10 noise sigmas above zero.
PreviewStretch stretch_of(const Image& image);

/// The stretch of an image whose sky is 0 and whose noise is known: softening twice `noise`, top at
/// the 99.9th percentile of `bright` (an image of the same field, e.g. the truth) but at least 10
/// noise sigmas.
PreviewStretch stretch_for_noise(double noise, const Image& bright);

/// Writes `panels` (same size) left to right, separated by a white bar, on one `stretch`, as an
/// 8-bit PNG: grey, with pixels of no data (NaN) in red, and a field narrower than 256 px enlarged
/// by whole pixels. Atomic; refuses to overwrite unless `overwrite`.
void write_preview_png(const std::string& path, const std::vector<Image>& panels, const PreviewStretch& stretch,
                       bool overwrite);

/// The same on the stretch of the first panel.
void write_preview_png(const std::string& path, const std::vector<Image>& panels, bool overwrite);

}  // namespace astroclear::io
