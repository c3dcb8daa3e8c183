// The stack manifest (TOML): which files hold each exposure, its PSF, and how to read their masks.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace astroclear::io {

/// Where one exposure lives: a multi-extension FITS (`file`) or separate planes.
struct ExposureSpec {
  std::string file;              ///< MEF with image/mask/variance HDUs (by EXTNAME)
  std::string image;             ///< or: separate image file ...
  std::string variance;          ///< ... and a variance file ...
  std::string inverse_variance;  ///< ... or an inverse-variance file ...
  std::string mask;              ///< ... and an optional mask file
  std::string psf;               ///< FITS image of the PSF (odd-sized, centred, sum 1)
  std::optional<double> flux_scale;  ///< overrides the header keyword

  /// The file that names this exposure in messages.
  const std::string& label() const { return file.empty() ? image : file; }
};

/// Everything `train` and `coadd` need to find and read a stack.
struct StackSpec {
  std::string source;  ///< the manifest path (messages)
  std::vector<ExposureSpec> exposures;
  std::vector<std::string> bad_mask_bits = {"BAD", "SAT", "CR", "EDGE", "NO_DATA", "SUSPECT"};
  std::vector<std::string> flux_scale_keys = {"FSCALE", "FLXSCALE"};
  std::string image_hdu = "IMAGE";
  std::string mask_hdu = "MASK";
  std::string variance_hdu = "VARIANCE";
  /// Note [co-registration]: how far, in pixels, an exposure's WCS may put the image from where
  /// the first exposure's WCS puts it.
  double registration_tolerance_px = 0.1;
  /// Note [sky check]: how many sigmas the median of an exposure's good pixels may lie from zero.
  double sky_tolerance_sigma = 3.0;
  /// Note [sky check]: "none", or "median" to subtract each exposure's median of good pixels.
  std::string subtract_sky = "none";
};

/// Reads a manifest; relative paths are taken from the manifest's folder. Throws Error naming the
/// manifest, the entry and the field on anything missing or malformed.
StackSpec load_manifest(const std::string& path);

/// Every file a run on `spec` reads: the manifest and each exposure's files (what no output may be).
std::vector<std::string> input_files(const StackSpec& spec);

/// Writes a manifest for `spec` (paths written as given), whole or not at all (write_atomically).
void write_manifest(const std::string& path, const StackSpec& spec);

}  // namespace astroclear::io
