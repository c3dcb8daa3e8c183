// Source catalogues: the simulator's truth_catalog.csv and SExtractor's ASCII_HEAD output.
#pragma once

#include <string>
#include <vector>

namespace astroclear::io {

/// One row of truth_catalog.csv. Positions are 0-indexed pixel centres (x = column, y = row).
struct TruthEntry {
  std::string type;  ///< "galaxy" or "star"
  double x = 0, y = 0, flux = 0, half_light_radius = 0;
};

/// One detection. Positions are 0-indexed pixel centres (SExtractor's 1-indexed X_IMAGE - 1).
struct Detection {
  double x = 0, y = 0;
  double flux_aper = 0;  ///< flux in the fixed circular aperture
  double flux_auto = 0;  ///< Kron flux
  double fwhm = 0;       ///< FWHM_IMAGE, pixels
  int flags = 0;         ///< SExtractor FLAGS (0 = clean)
};

/// Reads truth_catalog.csv (header: type,x,y,flux,...). Errors name the file, line and field.
std::vector<TruthEntry> read_truth_catalog(const std::string& path);

/// Reads a SExtractor ASCII_HEAD catalogue with columns X_IMAGE, Y_IMAGE, FLUX_APER, FLUX_AUTO,
/// FWHM_IMAGE and FLAGS, in any order (the "#  n NAME" header says where).
std::vector<Detection> read_sextractor_catalog(const std::string& path);

}  // namespace astroclear::io
