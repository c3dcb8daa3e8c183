// PNG previews: images side by side on one asinh stretch, for a first look without ds9.
#pragma once

#include <string>
#include <vector>

#include "io/image.hpp"

namespace astroclear::io {

/// Writes `panels` (same size) left to right, separated by a white bar, on the asinh stretch of
/// the first panel (noise from its median absolute deviation), as an 8-bit PNG: grey, with pixels
/// of no data (NaN) in red, and a field narrower than 256 px enlarged by whole pixels. Atomic;
/// refuses to overwrite unless `overwrite`.
void write_preview_png(const std::string& path, const std::vector<Image>& panels, bool overwrite);

}  // namespace astroclear::io
