// astroclear evaluate: scores images against a simulated stack's truth (SExtractor, photometry, metrics).
#pragma once

#include <string>
#include <vector>

#include "jobs/command.hpp"

namespace astroclear {

namespace jobs {

/// Whether an image is convolved with the target PSF before it is scored.
enum class Reconvolve {
  kAuto,  ///< latent images (astroclear's and Richardson-Lucy's, by ACPROD) only
  kYes,
  kNo,
};

struct EvaluateOptions {
  std::vector<std::string> results;  ///< images to score (positional)
  std::vector<std::string> compare;  ///< more images, scored side by side
  std::string truth_dir;             ///< holds truth.fits and truth_catalog.csv
  std::string hdu;                   ///< EXTNAME; empty = the first image HDU
  Reconvolve reconvolve = Reconvolve::kAuto;
  double threshold = 0;              ///< absolute; 0 = threshold_sigma x NOISECOA of truth.fits
  double threshold_sigma = 1.5;
  int min_area = 5;
  int border = 8;
  double match_radius = 0;     ///< pixels; 0 = the target PSF's FWHM
  double aperture = 0;         ///< diameter, pixels; 0 = 4 x the target FWHM
  double photometry_flux = 0;  ///< 0 = 20 x threshold / target PSF peak
  std::vector<double> sweep{1.5, 2, 3, 4, 5, 7, 10};  ///< thresholds in coadd-noise units; empty: none
  std::string purity_reference;  ///< image whose false fraction the others are read at; "" = first of compare
  std::string json;            ///< also write one JSON object per image here
  std::string preview;         ///< also write a PNG here: the truth, then every image as scored
  bool overwrite = false;      ///< replace an existing --json or --preview file
  std::string sextractor;      ///< executable; empty = source-extractor or sex on PATH
  std::string keep_dir;        ///< keep SExtractor's inputs and catalogues here
};

/// Adds `evaluate` and its options to `app`; it runs on rank 0 only.
Command add_evaluate_command(CLI::App& app);

/// Scores images against a simulated stack's truth with SExtractor; prints a table (one process).
int run_evaluate(const EvaluateOptions& options);

}  // namespace jobs

template <>
inline const std::vector<std::pair<std::string, jobs::Reconvolve>>& choices<jobs::Reconvolve>() {
  static const std::vector<std::pair<std::string, jobs::Reconvolve>> names{
      {"auto", jobs::Reconvolve::kAuto}, {"yes", jobs::Reconvolve::kYes}, {"no", jobs::Reconvolve::kNo}};
  return names;
}

}  // namespace astroclear
