// The stack manifest (TOML): which files hold each exposure, its PSF, and how to read their masks.
#pragma once

#include <array>
#include <cstdint>
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
  std::string psf;               ///< FITS image of the PSF (odd-sized, centred, sum 1), or a PSFEx model
  std::optional<double> flux_scale;  ///< the value of [stack] flux_scale_key for this exposure (its convention)
  std::optional<double> zero_point;  ///< overrides [stack] zero_point_key: the magnitude of one image unit
  std::string psf_ccd;           ///< PSFEx file of several CCDs: the row whose CCDNAME this is
  std::optional<std::array<double, 2>> psf_position;  ///< PSFEx: where to evaluate (1-based x, y); default centre
  std::optional<int> psf_plane;  ///< PSF cube: which plane (0-based)
  std::string psf_frame;         ///< Note [PSF frames]: the image whose pixel grid the PSF was made on

  /// The file that names this exposure in messages.
  const std::string& label() const { return file.empty() ? image : file; }
};

/// Everything `train` and `coadd` need to find and read a stack.
struct StackSpec {
  std::string source;  ///< the manifest path (messages)
  std::vector<ExposureSpec> exposures;
  std::vector<std::string> bad_mask_bits = {"BAD", "SAT", "CR", "EDGE", "NO_DATA", "SUSPECT"};
  /// Note [mask kinds]: "bits" (planes named by MP_* keywords) or "codes" (each value one state).
  std::string mask_kind = "bits";
  std::vector<std::int64_t> bad_mask_codes;        ///< with "codes": the bad values; empty: every non-zero
  std::vector<std::int64_t> saturated_mask_codes;  ///< with "codes": the values that mean saturated
  /// Note [flux scale]: the header keyword that holds each exposure's flux scale and what it means:
  /// "multiply" (calibrated = image x value, SWarp's FLXSCALE) or "divide" (calibrated = image / value).
  std::string flux_scale_key = "FLXSCALE";
  std::string flux_scale_convention = "multiply";
  /// Or a zero point per exposure (a header keyword, or [[exposure]] zero_point): the image is scaled
  /// to target_zero_point, calibrated = image x 10^(-0.4 (zero point - target_zero_point)).
  std::string zero_point_key;
  std::optional<double> target_zero_point;
  std::string image_hdu = "IMAGE";
  std::string mask_hdu = "MASK";
  std::string variance_hdu = "VARIANCE";
  /// Note [co-registration]: how far, in pixels, an exposure's WCS may put the image from where
  /// the first exposure's WCS puts it.
  double registration_tolerance_px = 0.1;
  /// Note [sky check]: how many sigmas the median of an exposure's good pixels may lie from zero.
  double sky_tolerance_sigma = 3.0;
  /// Note [sky check]: "none", "median" to subtract each exposure's median of good pixels, or
  /// "mesh" to subtract a smooth sky map made in boxes of sky_mesh_px.
  std::string subtract_sky = "none";
  std::int64_t sky_mesh_px = 64;
};

/// Reads a manifest; relative paths are taken from the manifest's folder. Throws Error naming the
/// manifest, the entry and the field on anything missing or malformed.
StackSpec load_manifest(const std::string& path);

/// Every file a run on `spec` reads: the manifest and each exposure's files (what no output may be).
std::vector<std::string> input_files(const StackSpec& spec);

/// Writes a manifest for `spec` (paths written as given), whole or not at all (write_atomically).
void write_manifest(const std::string& path, const StackSpec& spec);

}  // namespace astroclear::io
