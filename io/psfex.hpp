// PSFEx models: the PSF of an exposure evaluated from a PSFEx polynomial model file.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/image.hpp"

namespace astroclear::io {

/// Whether `path` is a PSFEx model (a binary table with a PSF_MASK column) rather than a PSF image.
bool is_psfex_model(const std::string& path);

/// Where and how to evaluate a PSFEx model for one exposure.
struct PsfexRequest {
  std::string ccd;  ///< a file of several CCDs (one row each): the row whose CCDNAME this is
  std::optional<std::array<double, 2>> position;  ///< 1-based (x, y); default the exposure's centre
  std::int64_t height = 0, width = 0;  ///< the exposure's
};

/// `image` at (x, y) (0-based pixel centres, x along a row) by Lanczos-3 interpolation; 0 outside.
/// At whole pixels it returns the pixel itself.
float sample_lanczos3(const Image& image, double x, double y);

/// The PSF of a PSFEx model at a position of the exposure, on the exposure's pixel grid (Note
/// [PSFEx models]): odd-sized and centred, not yet cropped, clipped or normalised. Throws Error
/// naming the file and the field on a model it cannot evaluate.
Image evaluate_psfex(const std::string& path, const PsfexRequest& request, std::vector<std::string>& warnings);

}  // namespace astroclear::io
