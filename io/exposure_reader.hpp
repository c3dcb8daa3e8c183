// Reading and validating one exposure (image, variance, mask, PSF) into calibrated planes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/image.hpp"
#include "io/manifest.hpp"

namespace astroclear::io {

/// One exposure (or the part of it a rank reads) as the method sees it: calibrated to the common
/// photometric scale. The planes cover `box`; the counts, statistics and checksums are the whole
/// exposure's (Note [exposure parts]).
struct ExposureData {
  std::string label;      ///< file name for messages and provenance
  PixelBox box;           ///< the pixels of the exposure that the planes below hold
  Image image;            ///< y / flux_scale; 0 where not good
  Image sigma;            ///< sqrt(variance) / flux_scale; 1 where not good
  std::vector<std::uint8_t> good;  ///< 1 = good pixel
  std::vector<std::uint8_t> saturated;  ///< 1 = the mask calls the pixel saturated (SAT bit or code)
  Image psf;              ///< odd-sized, non-negative, sum 1 (at the part's offset, Note [tile PSFs])
  double flux_scale = 1.0;  ///< calibrated = image / flux_scale (Note [flux scale])
  std::string flux_scale_source;  ///< where flux_scale came from, for the log
  std::int64_t good_pixels = 0;
  std::int64_t nonfinite_pixels = 0;  ///< NaN/Inf in image or variance, masked
  std::int64_t mask_rejected_pixels = 0;
  std::int64_t zero_weight_pixels = 0;  ///< inverse variance 0: no information, left out like masked ones
  std::vector<std::string> warnings;
  std::vector<HeaderCard> image_header;  ///< cards of the image HDU (WCS comes from here)
  /// The input fingerprint (Note [input fingerprint]): the same for any split into parts.
  std::uint64_t checksum = 0;
  /// The checksum of the whole calibrated planes that format 2 checkpoints hold; 0 when read in parts.
  std::uint64_t plane_checksum = 0;
};

/// The readers of the other parts of one exposure (Note [exposure parts]). Every part calls the
/// same methods in the same order.
class ExposureParts {
 public:
  virtual ~ExposureParts() = default;
  /// Sums `values` over every part, in place.
  virtual void sum(std::vector<double>& values) = 0;
  /// After each part's own reading: if any part's `error` is not empty, every part throws Error
  /// with the message of the first failing part.
  virtual void agree(const std::string& error) = 0;
};

/// Which pixels of an exposure a reader reads, and with whom it shares the rest.
struct ExposurePart {
  PixelBox read;  ///< read, calibrated and returned (a tile and its halo, within the exposure)
  PixelBox own;   ///< inside `read`: the pixels this part counts towards the exposure's statistics
  /// The readers of the rest of the exposure; nullptr: this reader reads the whole exposure
  /// (`read` and `own` are then ignored).
  ExposureParts* others = nullptr;
  std::array<double, 2> psf_offset{0, 0};  ///< where its PSF is evaluated (read_psf's offset)
  std::string description;  ///< "tile 0,0 (rows 0-31, columns 0-63)", added to its reading errors
  /// A failure of this part's reader since its last agreement (with an earlier exposure's pixels):
  /// said at this exposure's agreement, so that the other parts stop with it.
  std::string earlier_error;
};

/// An exposure's image HDU as its header alone tells it: shape, header text (for io::Wcs), where.
struct ImageHeader {
  std::int64_t height = 0, width = 0;
  std::string text;   ///< 80-character cards
  std::string where;  ///< "file.fits[IMAGE]"
};
ImageHeader read_image_summary(const ExposureSpec& spec, const StackSpec& stack);
/// Every card of an exposure's image HDU (the WCS of the outputs comes from here).
std::vector<HeaderCard> read_image_header(const ExposureSpec& spec, const StackSpec& stack);

/// Reads and validates one exposure and its PSF. Throws Error naming the file, HDU, value found
/// and value expected for: missing file or HDU, planes of different shapes, variance <= 0 where the
/// mask is good, no good pixel, a bad flux scale, and every PSF problem of read_psf.
ExposureData read_exposure(const ExposureSpec& spec, const StackSpec& stack);
/// Collective over `part.others`. The part `part.read` of an exposure, validated and calibrated as
/// the whole exposure would be (Note [exposure parts]): no pixel outside `part.read` is read. Its
/// PSF is the model at `part.psf_offset` from the centre; the fingerprint takes the centre's.
ExposureData read_exposure(const ExposureSpec& spec, const StackSpec& stack, const ExposurePart& part);

/// Reads an exposure's PSF (Note [PSF inputs]): a FITS image, a plane of a cube (psf_plane) or a
/// PSFEx model evaluated at the exposure's centre or psf_position. Validates it against an exposure
/// of `height` x `width`: odd-sized; cropped about its centre to the largest odd size that fits the
/// exposure; finite; negative wings down to 1% of the peak set to 0 (refused beyond); summing to 1
/// (renormalised with a warning within 10%, refused beyond; PSFEx models are normalised as read).
/// With psf_frame and the exposure's image header (`exposure_header`, FITS text), the PSF is first
/// mapped from that frame's pixel grid to the exposure's (Note [PSF frames]); without the header
/// it is read in its own frame.
/// With `offset` (exposure pixels, x and y) a PSFEx model is evaluated that far from where it
/// would be otherwise (Note [tile PSFs]); other PSFs ignore it.
//
// Note [tile PSFs]: a PSFEx model is a PSF that varies over the image; astroclear takes one PSF
// per exposure, the model at the exposure's centre (or psf_position, or the centre's place on
// psf_frame's grid). On tiles (--tiles with --psf-per-tile) each tile takes the model at its own
// centre instead: the offset of the tile's centre from the exposure's, mapped onto psf_frame's
// grid when there is one, is added to that position. The model is then one PSF per exposure and
// tile, which changes where the tiles meet: a pixel's prediction uses its own tile's PSF, applied
// to the latent pixels around it (those of the neighbouring tile included). The tiled result then
// differs from the whole-field one by design (docs/design.md, "Tiles").
Image read_psf(const ExposureSpec& spec, std::int64_t height, std::int64_t width, std::vector<std::string>& warnings,
               const std::string& exposure_header = "", const std::array<double, 2>& offset = {0, 0});

/// The FWHM of a PSF image in pixels, from the area of the pixels at half its peak or above:
/// 2 sqrt(area / pi). Robust to wings and ellipticity; about 1 for a single-pixel PSF.
double psf_fwhm(const Image& psf);

/// Bit mask of the named bad bits from a MASK header's MP_<NAME> keywords, each name also found
/// under its usual aliases (Note [mask kinds]); -1 (every bit) when the header defines no MP_ keyword.
std::int64_t bad_bit_mask(const std::vector<HeaderCard>& mask_header, const std::vector<std::string>& bad_bits,
                          std::vector<std::string>& warnings);

/// The names a mask plane goes by in the usual conventions (LSST, DECam, SExtractor, IRAF):
/// {"SAT", "SATUR", "SATURATED"} for "SAT", and so on; {name} for a name of no group.
std::vector<std::string> mask_plane_aliases(const std::string& name);

}  // namespace astroclear::io
