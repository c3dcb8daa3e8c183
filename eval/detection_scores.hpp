// Scoring detections against a truth catalogue: matching, completeness, false detections, photometry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/catalogs.hpp"

namespace astroclear {

/// The magnitude of a calibrated flux: 27 - 2.5 log10(flux) (the HSC coadd zero point).
double magnitude(double flux);

/// One-to-one matching within `radius` pixels, closest pairs first. Returns, per truth entry,
/// the index of its detection or -1.
std::vector<int> match_sources(const std::vector<io::TruthEntry>& truth, const std::vector<io::Detection>& detections,
                               double radius);

struct MagnitudeBin {
  double bright = 0, faint = 0;  ///< magnitude range [bright, faint)
  int sources = 0, found = 0;
  double completeness() const { return sources > 0 ? static_cast<double>(found) / sources : 0.0; }
};

/// How one image's detections compare with the truth (Note [detection scores]).
struct DetectionScores {
  int truth_sources = 0;      ///< in the scored region
  int detectable = 0;         ///< of them, detected in the noiseless truth image
  int found = 0;              ///< of the detectable ones, detected here
  double completeness = 0;    ///< found / detectable
  std::vector<MagnitudeBin> bins;  ///< over all truth sources in the region
  double mag50 = 0;           ///< faintest magnitude where completeness is still 50% (interpolated)
  int detections = 0;         ///< in the scored region
  int false_detections = 0;   ///< matched to no truth source
  double false_fraction = 0;  ///< false_detections / detections
  int photometry_sources = 0; ///< matched, bright enough for photometry
  double flux_bias = 0;       ///< median of (aperture flux - truth aperture flux) / truth aperture flux
  double flux_scatter = 0;    ///< 1.4826 MAD of the same
  int isolated_stars = 0;
  double star_fwhm = 0;       ///< median FWHM of isolated clean stars (pixels)
};

// Note [detection scores]: a truth source counts where it lies at least `border` pixels inside
// the image. "Detectable" sources are those the same SExtractor setup detects in the noiseless
// truth image (truth convolved with the target PSF): completeness is the fraction of what a
// perfect restoration would find, and does not depend on how faint the catalogue goes. The
// magnitude bins and mag50 count every truth source. A detection is false when no truth source
// of any flux lies within the match radius. Photometry compares the aperture flux with the same
// aperture on the truth image (SExtractor's dual-image mode, so the same positions), for
// matched sources brighter than `photometry_flux`. Stars are isolated when no other truth source
// brighter than a tenth of them lies within `isolation` pixels.
struct ScoringSettings {
  double border = 8, match_radius = 2.5, photometry_flux = 0, isolation = 10, bin_width = 0.5;
  std::int64_t height = 0, width = 0;
};

/// `measured_on_truth[i]`: detections[i] measured on the truth image (dual mode); `detectable`:
/// per truth entry, whether the noiseless truth image detects it.
DetectionScores score_detections(const std::vector<io::TruthEntry>& truth, const std::vector<bool>& detectable,
                                 const std::vector<io::Detection>& detections,
                                 const std::vector<io::Detection>& measured_on_truth, const ScoringSettings& settings);

// Note [threshold sweep]: one detection threshold decides which of two restorations looks more
// complete: a noisier image finds more true sources and more false ones at the same threshold.
// So evaluate also detects at a series of thresholds and scores every point against one fixed
// set of detectable sources (those the noiseless truth image shows at the lowest threshold of
// the series), which gives each image a curve of completeness against false-detection fraction.
// Two images are then compared at equal purity: completeness_at_false_fraction reads each curve
// at the false fraction of a reference image, interpolating linearly between the two thresholds
// around it.

/// Detections of one image at one threshold (Note [threshold sweep]).
struct SweepPoint {
  double threshold = 0;      ///< absolute, image units
  int detections = 0;        ///< in the scored region
  int found = 0;             ///< detectable sources matched
  int false_detections = 0;  ///< detections matched to no truth source
  int detectable = 0;        ///< the fixed set the completeness counts against
  double completeness() const { return detectable > 0 ? static_cast<double>(found) / detectable : 0.0; }
  double false_fraction() const { return detections > 0 ? static_cast<double>(false_detections) / detections : 0.0; }
};

/// The counts of a SweepPoint for `detections` (threshold left 0 for the caller).
SweepPoint count_detections(const std::vector<io::TruthEntry>& truth, const std::vector<bool>& detectable,
                            const std::vector<io::Detection>& detections, const ScoringSettings& settings);

/// The completeness of a sweep (points by ascending threshold) at false-detection fraction
/// `false_fraction`: that of the lowest threshold whose false fraction is at most that, linearly
/// interpolated in false fraction towards the threshold below it. NaN when no point of the sweep
/// is that pure.
double completeness_at_false_fraction(const std::vector<SweepPoint>& sweep, double false_fraction);

}  // namespace astroclear
