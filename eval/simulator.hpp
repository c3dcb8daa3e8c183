// The stack simulator: a truth sky of galaxies and stars seen through many noisy, blurred exposures.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace astroclear {

/// Settings of a simulated stack, like an HSC calexp set (0.168 arcsec/px).
struct SimulationConfig {
  int exposures = 33;
  int height = 256;
  int width = 256;
  std::uint64_t seed = 1;
  double pixel_scale_arcsec = 0.168;
  double seeing_min_arcsec = 0.6;   ///< PSF FWHM range
  double seeing_max_arcsec = 1.2;
  double target_fwhm_pixels = 2.5;  ///< Gaussian target PSF of truth.fits
  double galaxies_per_kpix = 2.5;   ///< per 1000 pixels
  double stars_per_kpix = 0.5;
  double read_noise = 5.0;          ///< electrons
  double sky_min = 300.0;           ///< electrons per pixel, before sky subtraction
  double sky_max = 600.0;
  double saturation = 40000.0;      ///< electrons per pixel, sky included
  // The errors of real data (Note [simulated errors]); all 0: the model is exact.
  double psf_error = 0.0;     ///< rms relative error of each written PSF's FWHM and beta (and see the Note)
  double unmasked_cr = 0.0;   ///< fraction of cosmic-ray tracks left out of the mask
  double sky_residual = 0.0;  ///< rms of a per-exposure constant left in the image, in sky sigmas

  /// Throws Error naming the option when a setting is out of range.
  void validate() const;
};

// Note [simulated errors]: simulate can make the model of a stack wrong the ways real data is.
// The PSF written for an exposure is not the one that made it: its FWHM and Moffat beta are
// multiplied by (1 + psf_error g), its ellipticity 1 - q is moved by psf_error g (q kept in
// [0.5, 1]) and its angle by psf_error pi g, with g an independent N(0, 1) draw each. A fraction
// unmasked_cr of the cosmic-ray tracks is not flagged CR. A constant sky_residual g sky_sigma is
// left in each sky-subtracted image (sky_sigma: the sky's own noise, sqrt(sky + read_noise^2)).
// The truth files do not change. These draws come from a generator of their own, so a seed gives
// the same sky, noise and defects with or without errors.

/// A source of the truth image (pixel coordinates 0-indexed, flux in calibrated electrons).
struct TruthSource {
  std::string type;  ///< "galaxy" or "star"
  double x = 0, y = 0, flux = 0;
  double half_light_radius = 0, sersic_index = 0, axis_ratio = 1, position_angle = 0;
};

/// One simulated exposure, in electrons; image is sky-subtracted.
struct SimulatedExposure {
  torch::Tensor image;     ///< (H, W) float
  torch::Tensor variance;  ///< (H, W) float
  torch::Tensor mask;      ///< (H, W) int32, bits as in mask_bit_names()
  torch::Tensor psf;       ///< (k, k) float, sum 1
  double flux_scale = 1.0; ///< image = flux_scale * calibrated image
  double sky = 0.0;
  double fwhm_arcsec = 0.0;   ///< of the PSF that made the image
  double model_fwhm_arcsec = 0.0;  ///< of the PSF written (psf): differs with psf_error
  double sky_residual = 0.0;  ///< electrons left in the sky-subtracted image
  int unmasked_cosmic_rays = 0;
};

struct SimulatedStack {
  torch::Tensor truth;         ///< (H, W) calibrated flux, no PSF
  torch::Tensor truth_target;  ///< truth convolved with target_psf
  torch::Tensor target_psf;    ///< (k, k) Gaussian, sum 1
  std::vector<TruthSource> sources;
  std::vector<SimulatedExposure> exposures;
};

/// LSST/HSC mask plane names by bit: BAD=0, SAT=1, INTRP=2, CR=3, EDGE=4, DETECTED=5,
/// DETECTED_NEGATIVE=6, SUSPECT=7, NO_DATA=8.
const std::vector<std::string>& mask_bit_names();

/// Deterministic for a given seed (sources from std::mt19937_64; noise from LibTorch's generator).
SimulatedStack simulate_stack(const SimulationConfig& config);

/// Elliptical Moffat PSF stamp of odd `size`, normalised to sum 1.
torch::Tensor moffat_psf(int size, double fwhm_pixels, double beta, double axis_ratio, double angle);
/// Circular Gaussian PSF stamp of odd `size`, normalised to sum 1.
torch::Tensor gaussian_psf(int size, double fwhm_pixels);

}  // namespace astroclear
