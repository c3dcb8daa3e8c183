// Running SExtractor (Debian package source-extractor) on FITS images: detection and photometry.
#pragma once

#include <string>
#include <vector>

#include "io/catalogs.hpp"

namespace astroclear::io {

/// One detection setup, the same for every image compared.
struct SourceExtractorSettings {
  std::string executable;          ///< empty = source-extractor (or sex) on PATH
  double threshold = 0;            ///< absolute, in image units, on the filtered image
  int min_area = 5;                ///< pixels above the threshold
  double aperture_diameter = 10;   ///< FLUX_APER, pixels
  double filter_fwhm = 2.5;        ///< Gaussian detection filter, pixels
};

/// The SExtractor executable: `requested` if given (must exist), else source-extractor or sex on
/// PATH. Throws a message naming the Debian package when there is none.
std::string find_source_extractor(const std::string& requested);

/// Detects on `detect` (a FITS file whose first HDU is the image) and measures the photometry on
/// `measure` (dual-image mode; empty = on `detect`). The configuration, filter, parameter list,
/// catalogue and log are written into `work_dir`. The background is 0 (the images are
/// sky-subtracted), the same for every image. The catalogue and log are NAME.cat and NAME.log.
/// Throws with the log's tail when SExtractor fails.
std::vector<Detection> extract_sources(const std::string& detect, const std::string& measure,
                                       const SourceExtractorSettings& settings, const std::string& work_dir,
                                       const std::string& name);

}  // namespace astroclear::io
