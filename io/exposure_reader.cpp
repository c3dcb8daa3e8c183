// Exposure and PSF reading with the validation rules of the method (docs/design.md, "The model").
#include "io/exposure_reader.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>

#include "common/error.hpp"
#include "common/order_statistics.hpp"
#include "common/number_text.hpp"
#include "io/checksum.hpp"
#include "io/fits_file.hpp"
#include "io/psfex.hpp"
#include "io/wcs.hpp"

namespace astroclear::io {
namespace {

constexpr double kPsfSumTolerance = 0.10;   // renormalise within, refuse beyond
constexpr double kPsfNegativeTolerance = 1e-2;  // relative to the peak: clip within, refuse beyond

/// Opens `path` and moves to the HDU named `extname` (MEF) or to its first image (plain file).
FitsFile open_plane(const std::string& path, const std::string& extname, bool by_name) {
  return FitsFile::open_image(path, by_name ? extname : "");
}


}  // namespace

// Note [mask kinds]: masks come in two kinds. Bit masks (LSST, the simulations) name their planes
// in MP_<NAME> header keywords and a pixel is bad when any bad plane's bit is set; [stack]
// bad_mask_bits lists the bad planes by name, and each name is also found under its usual aliases
// (SAT is SATUR in some pipelines, NO_DATA is NODATA), so that a mask is not silently read as all
// good. Code masks (the NOIRLab community pipeline's ood files: 0 good, 3 saturated, 4 bleed trail,
// ...) hold one state per value: with mask_kind = "codes", bad_mask_codes lists the bad values
// (default: every non-zero one) and saturated_mask_codes the values that mean saturated. Pixels
// the mask calls saturated are remembered, so that outputs can flag the saturated cores that no
// exposure measures.
std::vector<std::string> mask_plane_aliases(const std::string& name) {
  static const std::vector<std::vector<std::string>> groups = {
      {"BAD", "BADPIX", "BPM"},         {"SAT", "SATUR", "SATURATED"},    {"CR", "COSMIC_RAY", "COSMICRAY"},
      {"EDGE", "EDGES"},                {"NO_DATA", "NODATA", "NOTDATA"}, {"INTRP", "INTERP", "INTERPOLATED"},
      {"SUSPECT", "SUSP"}};
  for (const auto& group : groups) {
    if (std::find(group.begin(), group.end(), name) != group.end()) return group;
  }
  return {name};
}

std::int64_t bad_bit_mask(const std::vector<HeaderCard>& header, const std::vector<std::string>& bad_bits,
                          std::vector<std::string>& warnings) {
  std::string planes;  // the names this mask defines, for the warning below
  for (const HeaderCard& card : header) {
    if (card.key.rfind("MP_", 0) == 0) planes += (planes.empty() ? "" : ", ") + card.key.substr(3);
  }
  if (planes.empty()) {
    warnings.push_back("mask header has no MP_* bit names; every non-zero mask bit is treated as bad");
    return -1;
  }
  std::int64_t bits = 0;
  std::string missing;
  for (const std::string& name : bad_bits) {
    bool found = false;
    for (const std::string& alias : mask_plane_aliases(name)) {
      for (const HeaderCard& card : header) {
        if (card.key != "MP_" + alias) continue;
        const std::optional<double> bit = parse_number(card.value);
        if (!bit || *bit < 0 || *bit > 62 || *bit != std::floor(*bit)) {
          throw Error(card.key + " = " + card.value + ": a mask plane's bit must be an integer from 0 to 62");
        }
        bits |= std::int64_t{1} << static_cast<int>(*bit);
        found = true;
      }
    }
    if (!found) missing += (missing.empty() ? "" : ", ") + name;
  }
  if (!missing.empty()) {
    warnings.push_back("bad_mask_bits " + missing +
                       " name no plane of this mask (nor an alias), so they reject nothing; its planes: " + planes);
  }
  return bits;
}

ImageHeader read_image_summary(const ExposureSpec& spec, const StackSpec& stack) {
  const bool mef = !spec.file.empty();
  FitsFile f = open_plane(mef ? spec.file : spec.image, stack.image_hdu, mef);
  ImageHeader header;
  std::tie(header.height, header.width) = f.image_shape();
  header.text = f.header_text();
  header.where = f.where();
  return header;
}

std::vector<HeaderCard> read_image_header(const ExposureSpec& spec, const StackSpec& stack) {
  const bool mef = !spec.file.empty();
  FitsFile f = open_plane(mef ? spec.file : spec.image, stack.image_hdu, mef);
  return f.read_cards();
}

double psf_fwhm(const Image& psf) {
  float peak = 0;
  for (float v : psf.pixels) peak = std::max(peak, v);
  std::int64_t area = 0;
  for (float v : psf.pixels) area += v >= 0.5f * peak ? 1 : 0;
  return 2 * std::sqrt(static_cast<double>(area) / M_PI);
}

// Note [PSF inputs]: a PSF arrives as a FITS image (the first 2-D image HDU), as a plane of a 3-D
// cube (psf_plane), or as a PSFEx model (Note [PSFEx models]). Real models are not the ideal stamp
// the method needs, so the reader mends what is routine and refuses what is not: a stamp larger
// than the exposure is cropped about its centre to the largest odd size that fits (the flux cut
// off counts towards the sum check below); PSFEx's negative wings (to -3.5e-3 of the peak on the
// DECam models of the tests) are set to 0 with a warning down to kPsfNegativeTolerance of the peak,
// and refused beyond, as a sign of a wrong file; the sum is renormalised to 1 with a warning
// within kPsfSumTolerance (silently for PSFEx models, which are not normalised to the pixel grid).
// Note [PSF frames]: a PSF model describes the PSF on the pixel grid it was fitted on. After an
// exposure is resampled onto a common grid (SWarp's default grid is north up, while DECam's CCDs
// are rotated by 90 degrees), the same PSF on the new grid is rotated, sheared and scaled. With
// psf_frame naming the image whose grid the PSF was made on (the original exposure), the reader
// maps it: both WCSs (WCSLIB) give the local linear map A from the exposure's pixel offsets to the
// frame's, at the exposure's centre, and the PSF on the exposure's grid is |det A| PSF_frame(A d),
// sampled by Lanczos-3 and renormalised. A PSFEx model is then evaluated where the exposure's
// centre lies in the frame, unless psf_position says where.

namespace {

struct FrameMap {
  double a[2][2] = {{1, 0}, {0, 1}};  ///< exposure pixel offsets (x, y) -> frame pixel offsets
  std::array<double, 2> centre{};     ///< the exposure's centre in the frame's pixels (1-based)
};

/// The local map of Note [PSF frames] at the exposure's centre.
FrameMap frame_map(const ExposureSpec& spec, std::int64_t height, std::int64_t width, const std::string& header) {
  FitsFile frame_file = FitsFile::open_image(spec.psf_frame, "");
  const std::optional<Wcs> frame = Wcs::from_header(frame_file.header_text(), frame_file.where());
  if (!frame) throw Error(frame_file.where() + ": psf_frame has no WCS; it must be the image the PSF was made on");
  const std::optional<Wcs> exposure = Wcs::from_header(header, spec.label());
  if (!exposure) throw Error(spec.label() + ": psf_frame is given, but the exposure has no WCS to map the PSF onto");
  // d(sky)/d(pixel) on the tangent plane (degrees, RA scaled by cos Dec), by central differences
  const auto jacobian = [](const Wcs& wcs, double x, double y, double j[2][2]) {
    const double e = 0.5;
    const auto px = wcs.pixel_to_sky(x + e, y), mx = wcs.pixel_to_sky(x - e, y);
    const auto py = wcs.pixel_to_sky(x, y + e), my = wcs.pixel_to_sky(x, y - e);
    const double cosd = std::cos(wcs.pixel_to_sky(x, y)[1] * M_PI / 180.0);
    const auto dra = [](double a, double b) { return std::remainder(a - b, 360.0); };
    j[0][0] = dra(px[0], mx[0]) * cosd / (2 * e);
    j[1][0] = (px[1] - mx[1]) / (2 * e);
    j[0][1] = dra(py[0], my[0]) * cosd / (2 * e);
    j[1][1] = (py[1] - my[1]) / (2 * e);
  };
  const double xn = (width + 1) / 2.0, yn = (height + 1) / 2.0;
  const auto sky = exposure->pixel_to_sky(xn, yn);
  FrameMap map;
  map.centre = frame->sky_to_pixel(sky[0], sky[1]);
  double jn[2][2], jo[2][2];
  jacobian(*exposure, xn, yn, jn);
  jacobian(*frame, map.centre[0], map.centre[1], jo);
  const double det = jo[0][0] * jo[1][1] - jo[0][1] * jo[1][0];
  if (det == 0 || !std::isfinite(det)) {
    throw Error(frame_file.where() + ": its WCS is singular at the exposure's centre");
  }
  const double inv[2][2] = {{jo[1][1] / det, -jo[0][1] / det}, {-jo[1][0] / det, jo[0][0] / det}};
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 2; ++c) map.a[r][c] = inv[r][0] * jn[0][c] + inv[r][1] * jn[1][c];
  }
  return map;
}

/// `psf` (in the frame's pixels) on the exposure's grid: |det A| psf(centre + A d), same size.
Image map_psf(const Image& psf, const FrameMap& map) {
  Image out(psf.height, psf.width, 0.0f);
  const double cx = static_cast<double>(psf.width / 2), cy = static_cast<double>(psf.height / 2);
  const double det = std::abs(map.a[0][0] * map.a[1][1] - map.a[0][1] * map.a[1][0]);
  for (std::int64_t r = 0; r < psf.height; ++r) {
    for (std::int64_t c = 0; c < psf.width; ++c) {
      const double dx = static_cast<double>(c) - cx, dy = static_cast<double>(r) - cy;
      const double x = cx + map.a[0][0] * dx + map.a[0][1] * dy, y = cy + map.a[1][0] * dx + map.a[1][1] * dy;
      out.pixels[r * psf.width + c] = static_cast<float>(det * sample_lanczos3(psf, x, y));
    }
  }
  return out;
}

}  // namespace

Image read_psf(const ExposureSpec& spec, std::int64_t height, std::int64_t width, std::vector<std::string>& warnings,
               const std::string& exposure_header, const std::array<double, 2>& offset) {
  Image psf;
  std::string where;
  bool psfex = false;
  std::optional<FrameMap> map;
  std::optional<std::array<double, 2>> position = spec.psf_position;
  if (!spec.psf_frame.empty() && !exposure_header.empty()) {
    map = frame_map(spec, height, width, exposure_header);
    if (!position) position = map->centre;
  }
  if (offset[0] != 0 || offset[1] != 0) {  // Note [tile PSFs]: that far from the centre, in the model's pixels
    std::array<double, 2> at = position ? *position : std::array<double, 2>{(width + 1) / 2.0, (height + 1) / 2.0};
    const double a[2][2] = {{map ? map->a[0][0] : 1, map ? map->a[0][1] : 0}, {map ? map->a[1][0] : 0, map ? map->a[1][1] : 1}};
    at[0] += a[0][0] * offset[0] + a[0][1] * offset[1];
    at[1] += a[1][0] * offset[0] + a[1][1] * offset[1];
    position = at;
  }
  if (is_psfex_model(spec.psf)) {
    if (spec.psf_plane) throw Error(spec.psf + ": psf_plane given, but this is a PSFEx model, not a cube");
    psf = evaluate_psfex(spec.psf, PsfexRequest{spec.psf_ccd, position, height, width}, warnings);
    where = spec.psf + (spec.psf_ccd.empty() ? "" : " (CCD " + spec.psf_ccd + ")");
    psfex = true;
  } else {
    if (!spec.psf_ccd.empty() || spec.psf_position) {
      throw Error(spec.psf + ": psf_ccd and psf_position are for PSFEx models; this file has no PSF_MASK table");
    }
    FitsFile f = FitsFile::open(spec.psf);
    bool found = false;
    for (int i = 0; i < f.hdu_count() && !found; ++i) {
      f.move_to(i);
      const int dimensions = f.image_dimensions();
      if (dimensions == 2) {
        if (spec.psf_plane) throw Error(f.where() + ": psf_plane given, but the PSF is a 2-D image, not a cube");
        psf = f.read_image();
        found = true;
      } else if (dimensions == 3) {
        if (!spec.psf_plane) {
          throw Error(f.where() + ": a PSF cube of " + std::to_string(f.cube_planes()) +
                      " planes; say which with psf_plane (0-based) in the exposure's [[exposure]]");
        }
        psf = f.read_cube_plane(*spec.psf_plane);
        found = true;
      }
    }
    if (!found) throw Error(spec.psf + ": no 2-D image, PSF cube or PSFEx model (a table with PSF_MASK) in it");
    where = f.where();
  }
  if (map) {
    psf = map_psf(psf, *map);
    const double rotation = std::atan2(map->a[1][0], map->a[0][0]) * 180.0 / M_PI;
    const double scale = std::sqrt(std::abs(map->a[0][0] * map->a[1][1] - map->a[0][1] * map->a[1][0]));
    warnings.push_back(where + ": mapped from the pixel grid of " + spec.psf_frame + " (rotated by " +
                       number_text(rotation) + " degrees, pixel scale x " + number_text(scale) + ", at its pixel (" +
                       number_text(map->centre[0]) + ", " + number_text(map->centre[1]) + "))");
  }
  const std::string size = shape_text(psf.height, psf.width);
  if (psf.height % 2 == 0 || psf.width % 2 == 0) {
    throw Error(where + ": PSF is " + size + " pixels; PSF sizes must be odd so that it has a centre pixel");
  }
  const std::int64_t fits_h = std::min(psf.height, height % 2 == 1 ? height : height - 1);
  const std::int64_t fits_w = std::min(psf.width, width % 2 == 1 ? width : width - 1);
  if (fits_h < psf.height || fits_w < psf.width) {
    Image cropped(fits_h, fits_w, 0.0f);
    const std::int64_t dy = (psf.height - fits_h) / 2, dx = (psf.width - fits_w) / 2;
    double total = 0, kept = 0;
    for (float v : psf.pixels) total += v;
    for (std::int64_t r = 0; r < fits_h; ++r) {
      for (std::int64_t c = 0; c < fits_w; ++c) {
        kept += cropped.pixels[r * fits_w + c] = psf.pixels[(r + dy) * psf.width + c + dx];
      }
    }
    warnings.push_back(where + ": PSF of " + size + " pixels cropped to " + shape_text(fits_h, fits_w) +
                       " to fit the exposure (" + shape_text(height, width) + "); " +
                       number_text(total != 0 ? 100 * (1 - kept / total) : 0) + "% of its sum was outside");
    psf = std::move(cropped);
  }
  double sum = 0, peak = 0, most_negative = 0;
  std::int64_t negative = 0;
  for (float v : psf.pixels) {
    if (!std::isfinite(v)) throw Error(where + ": PSF has NaN/Inf pixels; a PSF must be finite");
    sum += v;
    peak = std::max(peak, static_cast<double>(v));
    if (v < 0) {
      ++negative;
      most_negative = std::min(most_negative, static_cast<double>(v));
    }
  }
  if (peak <= 0) throw Error(where + ": PSF has no positive pixel");
  if (most_negative < -kPsfNegativeTolerance * peak) {
    throw Error(where + ": " + std::to_string(negative) + " PSF pixels are negative, down to " +
                number_text(most_negative / peak) + " of the peak; a PSF must be non-negative (wings down to " +
                number_text(-kPsfNegativeTolerance) + " of the peak are set to 0)");
  }
  if (negative > 0) {
    warnings.push_back(where + ": " + std::to_string(negative) + " negative PSF pixels (down to " +
                       number_text(most_negative / peak) + " of the peak) set to 0");
    sum = 0;
    for (float& v : psf.pixels) sum += (v = std::max(v, 0.0f));
  }
  if (psfex) {
    for (float& v : psf.pixels) v = static_cast<float>(v / sum);
    sum = 1;
  }
  if (std::abs(sum - 1.0) > kPsfSumTolerance) {
    throw Error(where + ": PSF sums to " + number_text(sum) + "; expected 1 (renormalised only within " +
                number_text(kPsfSumTolerance * 100) + "%)");
  }
  if (std::abs(sum - 1.0) > 1e-6) {
    warnings.push_back(where + ": PSF sums to " + number_text(sum) + "; renormalised to 1");
  }
  for (float& v : psf.pixels) v = static_cast<float>(v / sum);
  return psf;
}

namespace {

// Note [flux scale]: exposures are brought to one photometric scale before anything else. The
// manifest says how, explicitly: a zero point per exposure (zero_point_key in the header, or
// [[exposure]] zero_point) scaled to [stack] target_zero_point, or a flux-scale keyword
// (flux_scale_key, default FLXSCALE) whose meaning flux_scale_convention states: "multiply", as
// SWarp writes FLXSCALE (calibrated = image x FLXSCALE), the default, or "divide" (calibrated =
// image / value, as astroclear simulate writes FSCALE). An [[exposure]] flux_scale gives the
// keyword's value for that exposure. The log says each exposure's scale and where it came from.

/// The exposure's flux scale as a divisor (calibrated = image / scale) and where it came from.
std::pair<double, std::string> flux_scale_of(const ExposureSpec& spec, const StackSpec& stack, FitsFile& image_file) {
  FitsFile primary = FitsFile::open(image_file.path());
  const auto header_value = [&](const std::string& key) -> std::optional<std::pair<double, std::string>> {
    for (FitsFile* header : {&image_file, &primary}) {
      if (auto v = header->read_double(key)) return std::pair{*v, header->where() + " " + key};
    }
    return std::nullopt;
  };
  if (stack.target_zero_point) {
    std::optional<std::pair<double, std::string>> zp;
    if (spec.zero_point) zp = std::pair{*spec.zero_point, stack.source + " zero_point"};
    if (!zp && !stack.zero_point_key.empty()) zp = header_value(stack.zero_point_key);
    if (!zp) {
      throw Error(image_file.where() + ": no zero point: no " +
                  (stack.zero_point_key.empty() ? std::string("zero_point_key") : stack.zero_point_key) +
                  " keyword in its headers and no zero_point in its [[exposure]] of " + stack.source);
    }
    if (!std::isfinite(zp->first)) {
      throw Error(zp->second + " = " + number_text(zp->first) + ": a zero point must be finite");
    }
    const double scale = std::pow(10.0, 0.4 * (zp->first - *stack.target_zero_point));
    return {scale, zp->second + " = " + number_text(zp->first) + " to target_zero_point " +
                       number_text(*stack.target_zero_point)};
  }
  std::optional<std::pair<double, std::string>> value;
  if (spec.flux_scale) value = std::pair{*spec.flux_scale, stack.source + " flux_scale"};
  if (!value && !stack.flux_scale_key.empty()) value = header_value(stack.flux_scale_key);
  if (!value) return {1.0, "1 (no " + stack.flux_scale_key + " keyword)"};
  // a value that is not finite and > 0 gives a divisor that is not either: read_exposure refuses it
  const bool multiply = stack.flux_scale_convention == "multiply";
  const std::string source =
      value->second + " = " + number_text(value->first) + " (" + stack.flux_scale_convention + ")";
  return {multiply ? 1.0 / value->first : value->first, source};
}

/// A mask plane and the bits that reject a pixel, from the MEF's MASK HDU or a separate file;
/// all good (no bit rejects) when the exposure has none.
struct MaskPlane {
  MaskImage mask;
  bool codes = false;                 ///< Note [mask kinds]
  std::int64_t bad_bits = 0;          ///< bits: the bits that reject a pixel
  std::int64_t saturated_bits = 0;    ///< bits: the SAT plane's
  std::vector<std::int64_t> bad_codes, saturated_codes;  ///< codes; bad_codes empty: every non-zero
  std::string where = "(no mask)";
  bool present = false;

  bool bad(std::int64_t value) const {
    if (!codes) return (value & bad_bits) != 0;
    if (bad_codes.empty()) return value != 0;
    return std::find(bad_codes.begin(), bad_codes.end(), value) != bad_codes.end();
  }
  bool saturated(std::int64_t value) const {
    if (!codes) return (value & saturated_bits) != 0;
    return std::find(saturated_codes.begin(), saturated_codes.end(), value) != saturated_codes.end();
  }
};

MaskPlane read_mask_plane(const ExposureSpec& spec, const StackSpec& stack, const PixelBox& box, std::int64_t h,
                          std::int64_t w, const std::string& image_where, std::vector<std::string>& warnings) {
  MaskPlane plane;
  plane.mask = MaskImage{box.height(), box.width(), std::vector<std::int32_t>(static_cast<std::size_t>(box.count()), 0)};
  const bool mef = !spec.file.empty();
  if (!mef && spec.mask.empty()) return plane;
  FitsFile mask_file = open_plane(mef ? spec.file : spec.mask, stack.mask_hdu, mef);
  plane.present = true;
  plane.where = mask_file.where();
  const auto [mh, mw] = mask_file.image_shape();
  if (mh != h || mw != w) {
    throw Error(plane.where + ": " + shape_text(mh, mw) + " pixels, but " + image_where + " is " + shape_text(h, w));
  }
  plane.mask = mask_file.read_mask(box);
  if (stack.mask_kind == "codes") {
    plane.codes = true;
    plane.bad_codes = stack.bad_mask_codes;
    plane.saturated_codes = stack.saturated_mask_codes;
    return plane;
  }
  std::vector<std::string> mask_warnings;
  const std::vector<HeaderCard> cards = mask_file.read_cards();
  try {
    plane.bad_bits = bad_bit_mask(cards, stack.bad_mask_bits, mask_warnings);
    std::vector<std::string> unused;
    const bool names_planes = plane.bad_bits != -1;
    plane.saturated_bits = names_planes ? bad_bit_mask(cards, {"SAT"}, unused) : 0;
  } catch (const Error& e) {  // a plane keyword that is no bit number: say which file
    throw Error(plane.where + ": " + e.what());
  }
  for (auto& m : mask_warnings) warnings.push_back(plane.where + ": " + m);
  return plane;
}

/// The pixel counts of an exposure's part; summed over the parts, the exposure's.
struct PixelCounts {
  double good = 0, nonfinite = 0, mask_rejected = 0, zero_weight = 0, nonpositive = 0;
};

/// Fills out.image, out.sigma, out.good and out.saturated over `part.read` (calibrated: divided
/// by the flux scale) from the planes read there; counts the pixels of `part.own`.
PixelCounts calibrate(const Image& image, const Image& variance, bool inverse, const MaskPlane& mask,
                      double flux_scale, const ExposurePart& part, ExposureData& out) {
  const PixelBox& box = part.read;
  const std::int64_t n = box.count();
  out.image = Image(box.height(), box.width(), 0.0f);
  out.sigma = Image(box.height(), box.width(), 1.0f);
  out.good.assign(static_cast<std::size_t>(n), 0);
  out.saturated.assign(static_cast<std::size_t>(n), 0);
  PixelCounts counts;
  for (std::int64_t r = 0; r < box.height(); ++r) {
    const std::int64_t y = box.y0 + r;
    const bool own_row = y >= part.own.y0 && y < part.own.y1;
    for (std::int64_t c = 0; c < box.width(); ++c) {
      const std::int64_t i = r * box.width() + c, x = box.x0 + c;
      const double own = own_row && x >= part.own.x0 && x < part.own.x1 ? 1 : 0;
      const std::int64_t code = mask.mask.pixels[i];
      out.saturated[i] = mask.saturated(code) ? 1 : 0;
      if (mask.bad(code)) {
        counts.mask_rejected += own;
        continue;
      }
      const float y_value = image.pixels[i];
      float v = variance.pixels[i];
      if (!std::isfinite(y_value) || !std::isfinite(v)) {
        counts.nonfinite += own;
        continue;
      }
      if (inverse) {
        if (v == 0.0f) {  // inverse variance 0: no information, as masked
          counts.zero_weight += own;
          continue;
        }
        v = 1.0f / v;
      }
      if (v <= 0.0f) {
        counts.nonpositive += own;
        continue;
      }
      out.good[i] = 1;
      out.image.pixels[i] = static_cast<float>(y_value / flux_scale);
      out.sigma.pixels[i] = static_cast<float>(std::sqrt(static_cast<double>(v)) / flux_scale);
      counts.good += own;
    }
  }
  return counts;
}

/// Calls `visit(i, y, x)` for each pixel of `part.own`: i its index in `part.read`, (y, x) in the exposure.
template <class Visit>
void for_own_pixels(const ExposurePart& part, Visit visit) {
  for (std::int64_t y = part.own.y0; y < part.own.y1; ++y) {
    for (std::int64_t x = part.own.x0; x < part.own.x1; ++x) {
      visit((y - part.read.y0) * part.read.width() + (x - part.read.x0), y, x);
    }
  }
}

// Note [sky check]: astroclear models sky-subtracted exposures: a sky left in would be restored as
// a flat pedestal that the positivity and the Huber loss treat as signal. The sky level is read
// from the lower quartile of the good pixels, which sources hardly move (they only raise the upper
// ones): for noise of sigma about a sky level s, the quartile lies at s - 0.674 sigma. A
// sky-subtracted exposure gives a level within a few tenths of a sigma of zero even when a bright
// source fills much of a small cutout; one with its sky in (real CP images: about 2000 ADU, chi
// 9-11) gives many sigmas. Beyond sky_tolerance_sigma (default 3) the exposure is refused, unless
// the manifest asks for subtract_sky = "median", which subtracts the median of the good pixels, or
// "mesh", which subtracts a smooth sky map made as SExtractor makes its background: the median of
// the good pixels in boxes of sky_mesh_px (default 64; a box with fewer than a quarter of its
// pixels good takes the exposure's median), interpolated bilinearly between the boxes' centres and
// linearly beyond the outer ones. Like SExtractor's, the map follows anything broader than a box:
// a box should be several times the largest source's size. Every statistic is over the whole
// exposure, whichever part of it a rank reads (Note [exposure parts]).

/// The smooth sky map of Note [sky check], from the medians of its boxes.
class SkyMesh {
 public:
  SkyMesh(std::int64_t height, std::int64_t width, std::int64_t box)
      : h_(height), w_(width), box_(box), ny_((height + box - 1) / box), nx_((width + box - 1) / box) {}
  std::int64_t boxes() const { return ny_ * nx_; }
  std::int64_t box_of(std::int64_t y, std::int64_t x) const { return (y / box_) * nx_ + x / box_; }
  std::int64_t box_side() const { return box_; }
  std::vector<float> medians;  ///< per box

  /// The map at pixel (y, x): between the boxes' centres bilinearly, and linearly beyond the outer
  /// ones, so that a sky that is a plane is removed exactly.
  float at(std::int64_t y, std::int64_t x) const {
    std::int64_t y0 = 0, x0 = 0;
    double ty = 0, tx = 0;
    cell(y, ny_, y0, ty);
    cell(x, nx_, x0, tx);
    const std::int64_t y1 = std::min(y0 + 1, ny_ - 1), x1 = std::min(x0 + 1, nx_ - 1);
    const auto m = [&](std::int64_t by, std::int64_t bx) { return medians[by * nx_ + bx]; };
    return static_cast<float>((1 - ty) * ((1 - tx) * m(y0, x0) + tx * m(y0, x1)) + ty * ((1 - tx) * m(y1, x0) + tx * m(y1, x1)));
  }

  /// The least and greatest value of the map over the exposure, without visiting every pixel: the
  /// map is bilinear on each cell between four boxes' centres, so its extremes lie at the corner
  /// pixels of the cells.
  std::pair<float, float> range() const {
    const auto corners = [this](std::int64_t pixels, std::int64_t cells) {
      std::vector<std::int64_t> at{0};
      std::int64_t previous = -1;
      for (std::int64_t p = 0; p < pixels; ++p) {
        std::int64_t first = 0;
        double t = 0;
        cell(p, cells, first, t);
        if (p > 0 && first != previous) at.insert(at.end(), {p - 1, p});
        previous = first;
      }
      at.push_back(pixels - 1);
      return at;
    };
    float low = std::numeric_limits<float>::infinity(), high = -low;
    for (std::int64_t y : corners(h_, ny_)) {
      for (std::int64_t x : corners(w_, nx_)) {
        low = std::min(low, at(y, x));
        high = std::max(high, at(y, x));
      }
    }
    return {low, high};
  }

 private:
  void cell(std::int64_t pixel, std::int64_t cells, std::int64_t& first, double& t) const {
    const double at = (pixel + 0.5) / static_cast<double>(box_) - 0.5;
    first = cells < 2 ? 0 : std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(at)), 0, cells - 2);
    t = cells < 2 ? 0.0 : at - static_cast<double>(first);
  }
  std::int64_t h_, w_, box_, ny_, nx_;
};

/// Queries for the median of `count` values of set `set`: the middle one, or the two middle ones.
void median_queries(std::size_t set, std::int64_t count, std::vector<OrderQuery>& queries) {
  queries.push_back({set, count / 2});
  if (count % 2 == 0) queries.push_back({set, count / 2 - 1});
}

/// The median from the answers of median_queries (the mean of the middle two of an even count).
float median_answer(std::int64_t count, const std::vector<float>& answers, std::size_t& next) {
  const float middle = answers[next++];
  if (count % 2 == 1) return middle;
  return 0.5f * (middle + answers[next++]);
}

/// `part.others`'s sum as order_statistics takes it; empty for a whole exposure.
SumOverParts sum_over(const ExposurePart& part) {
  if (part.others == nullptr) return {};
  return [others = part.others](std::vector<double>& values) { others->sum(values); };
}

void check_sky(const StackSpec& stack, const std::string& where, const ExposurePart& part, std::int64_t h,
               std::int64_t w, ExposureData& out) {
  const std::int64_t n = out.good_pixels;  // over the whole exposure
  std::vector<std::vector<float>> sets(2);  // 0: good values, 1: good sigmas, then the mesh's boxes
  std::optional<SkyMesh> mesh;
  if (stack.subtract_sky == "mesh") mesh.emplace(h, w, stack.sky_mesh_px);
  std::vector<double> box_counts(mesh ? static_cast<std::size_t>(mesh->boxes()) : 0, 0.0);
  if (mesh) sets.resize(2 + box_counts.size());
  for_own_pixels(part, [&](std::int64_t i, std::int64_t y, std::int64_t x) {
    if (out.good[i] == 0) return;
    sets[0].push_back(out.image.pixels[i]);
    sets[1].push_back(out.sigma.pixels[i]);
    if (mesh) {
      const std::int64_t b = mesh->box_of(y, x);
      sets[2 + b].push_back(out.image.pixels[i]);
      box_counts[b] += 1;
    }
  });
  std::vector<OrderQuery> queries{{1, n / 2}};  // the sigma, then what the mode needs
  if (stack.subtract_sky == "median") {
    queries.push_back({0, n / 2});
  } else if (mesh) {
    if (part.others != nullptr) part.others->sum(box_counts);
    median_queries(0, n, queries);  // the fallback of boxes with too few good pixels
    for (std::size_t b = 0; b < box_counts.size(); ++b) {
      const auto count = static_cast<std::int64_t>(box_counts[b]);
      if (count * 4 >= mesh->box_side() * mesh->box_side()) median_queries(2 + b, count, queries);
    }
  } else {
    queries.push_back({0, n / 4});
  }
  const std::vector<float> answers = order_statistics(sets, queries, sum_over(part));
  const double sigma = answers[0];
  if (stack.subtract_sky == "median") {
    const double median = answers[1];
    for (std::size_t i = 0; i < out.good.size(); ++i) {
      if (out.good[i] != 0) out.image.pixels[i] -= static_cast<float>(median);
    }
    out.warnings.push_back(where + ": subtract_sky = \"median\": subtracted " + number_text(median * out.flux_scale) +
                           " (" + number_text(median / sigma) + " sigma)");
    return;
  }
  if (mesh) {
    std::size_t next = 1;
    const float fallback = median_answer(n, answers, next);
    mesh->medians.assign(box_counts.size(), fallback);
    for (std::size_t b = 0; b < box_counts.size(); ++b) {
      const auto count = static_cast<std::int64_t>(box_counts[b]);
      if (count * 4 >= mesh->box_side() * mesh->box_side()) mesh->medians[b] = median_answer(count, answers, next);
    }
    for (std::int64_t r = 0; r < part.read.height(); ++r) {
      for (std::int64_t c = 0; c < part.read.width(); ++c) {
        const std::int64_t i = r * part.read.width() + c;
        if (out.good[i] != 0) out.image.pixels[i] -= mesh->at(part.read.y0 + r, part.read.x0 + c);
      }
    }
    const auto [low, high] = mesh->range();
    out.warnings.push_back(where + ": subtract_sky = \"mesh\": subtracted a sky map in boxes of " +
                           std::to_string(stack.sky_mesh_px) + " px, from " + number_text(low * out.flux_scale) +
                           " to " + number_text(high * out.flux_scale) + " (" + number_text(low / sigma) + " to " +
                           number_text(high / sigma) + " sigma)");
    return;
  }
  constexpr double kQuartileOfUnitNoise = 0.6745;  // the upper quartile of a unit Gaussian
  const double level = answers[1] + kQuartileOfUnitNoise * sigma;
  if (std::abs(level) > stack.sky_tolerance_sigma * sigma) {
    throw Error(where + ": its sky level is " + number_text(level / sigma) + " sigma from zero (" +
                number_text(level * out.flux_scale) +
                ", from the lower quartile of its good pixels): astroclear needs sky-subtracted exposures. "
                "Subtract the sky first, or set subtract_sky in the manifest's [stack]: \"median\" subtracts a "
                "constant, \"mesh\" a smooth sky map in boxes of sky_mesh_px (sky_tolerance_sigma = " +
                number_text(stack.sky_tolerance_sigma) + " sets this check)");
  }
}

/// The sum over the parts of a 64-bit value, modulo 2^64, exactly: in four 16-bit limbs, whose
/// sums over any number of parts below 2^37 doubles hold exactly.
std::uint64_t sum_modulo_2_64(std::uint64_t value, const ExposurePart& part) {
  if (part.others == nullptr) return value;
  std::vector<double> limbs(4);
  for (int j = 0; j < 4; ++j) limbs[j] = static_cast<double>((value >> (16 * j)) & 0xffffu);
  part.others->sum(limbs);
  std::uint64_t total = 0;
  for (int j = 0; j < 4; ++j) total += static_cast<std::uint64_t>(limbs[j]) << (16 * j);
  return total;
}

// Note [input fingerprint]: checkpoints remember what their run read, so that a resume on other
// inputs is refused. The fingerprint of an exposure is a sum modulo 2^64 of a hash of each
// pixel's place and calibrated values (image and sigma bits, good), hashed with the exposure's
// shape and its PSF: the parts of an exposure read on different ranks (tiles) add up to the
// whole's, so it does not depend on the tile grid. A change of any one pixel changes it. Format
// 2 checkpoints held a sequential checksum of the whole planes (Checksum over image, sigma, good,
// PSF), which only a reader of the whole exposure can compute (ExposureData::plane_checksum).

/// The input fingerprint of the exposure that `part` is of (collective over its parts).
std::uint64_t fingerprint(const ExposurePart& part, std::int64_t h, std::int64_t w, const Image& psf,
                          const ExposureData& out) {
  std::uint64_t local = 0;
  for_own_pixels(part, [&](std::int64_t i, std::int64_t y, std::int64_t x) {
    std::uint32_t image_bits, sigma_bits;
    std::memcpy(&image_bits, &out.image.pixels[i], sizeof image_bits);
    std::memcpy(&sigma_bits, &out.sigma.pixels[i], sizeof sigma_bits);
    const std::uint64_t values = (static_cast<std::uint64_t>(image_bits) << 32 | sigma_bits) ^ (out.good[i] != 0 ? 0x9E3779B97F4A7C15ULL : 0);
    local += mix64(static_cast<std::uint64_t>(y * w + x) * 0x9E3779B97F4A7C15ULL + mix64(values));
  });
  Checksum sum;
  sum.add(sum_modulo_2_64(local, part));
  sum.add(static_cast<std::uint64_t>(h));
  sum.add(static_cast<std::uint64_t>(w));
  sum.add(psf.pixels);
  return sum.value();
}

}  // namespace

// Note [exposure parts]: on tiles a rank reads only its tile and the halo around it (CFITSIO
// subset reads) of each of its exposures; the ranks of the other tiles read the rest. What the
// reader decides for the whole exposure (the pixel counts and the checks on them, the sky
// statistics and subtraction, the input fingerprint) it decides from sums over the parts
// (ExposureParts), so every part reaches the same result as a reader of the whole exposure, and
// refuses together with it. Each part first reads on its own, then all agree on any failure,
// and only then take part in the sums: a part that cannot read its pixels stops the others at the
// agreement instead of leaving them waiting in a sum.

ExposureData read_exposure(const ExposureSpec& spec, const StackSpec& stack) {
  return read_exposure(spec, stack, ExposurePart{});
}

ExposureData read_exposure(const ExposureSpec& spec, const StackSpec& stack, const ExposurePart& asked) {
  ExposureData out;
  out.label = spec.label();
  const bool mef = !spec.file.empty();
  ExposurePart part = asked;
  std::int64_t h = 0, w = 0;
  std::string image_where, var_where;
  MaskPlane mask;
  bool inverse = false;
  PixelCounts counts;
  Image centre_psf;  // the PSF at the exposure's centre, which the fingerprint takes
  std::string error = part.earlier_error;
  if (error.empty()) try {
    FitsFile image_file = open_plane(mef ? spec.file : spec.image, stack.image_hdu, mef);
    image_where = image_file.where();
    std::tie(h, w) = image_file.image_shape();
    if (part.others == nullptr) part.read = part.own = PixelBox::whole(h, w);
    if (!PixelBox::whole(h, w).contains(part.read) || !part.read.contains(part.own)) {
      throw Error(image_where + ": is " + shape_text(h, w) + " px, too small for " + part.description);
    }
    out.box = part.read;
    const Image image = image_file.read_image(part.read);
    out.image_header = image_file.read_cards();

    const auto [flux_scale, scale_source] = flux_scale_of(spec, stack, image_file);
    if (!std::isfinite(flux_scale) || flux_scale <= 0) {
      throw Error(out.label + ": flux scale from " + scale_source + " is " + number_text(flux_scale) +
                  "; must be finite and > 0");
    }
    out.flux_scale = flux_scale;
    out.flux_scale_source = scale_source;

    // Variance, or inverse variance turned into variance.
    inverse = !mef && !spec.inverse_variance.empty();
    FitsFile var_file = open_plane(mef ? spec.file : (inverse ? spec.inverse_variance : spec.variance),
                                   stack.variance_hdu, mef);
    var_where = var_file.where();
    const auto [vh, vw] = var_file.image_shape();
    if (vh != h || vw != w) {
      throw Error(var_where + ": " + shape_text(vh, vw) + " pixels, but " + image_where + " is " + shape_text(h, w));
    }
    const Image variance = var_file.read_image(part.read);
    mask = read_mask_plane(spec, stack, part.read, h, w, image_where, out.warnings);
    counts = calibrate(image, variance, inverse, mask, flux_scale, part, out);

    const std::string header = spec.psf_frame.empty() ? std::string() : image_file.header_text();
    centre_psf = read_psf(spec, h, w, out.warnings, header);
    if (part.psf_offset[0] != 0 || part.psf_offset[1] != 0) {
      std::vector<std::string> again;  // said once already, for the centre
      out.psf = read_psf(spec, h, w, again, header, part.psf_offset);
    } else {
      out.psf = centre_psf;
    }
  } catch (const std::exception& e) {  // not only Error: a part that ran out of memory must agree too
    if (part.others == nullptr) throw;
    error = std::string(e.what()) + " (reading " + part.description + ")";
  }
  if (part.others != nullptr) {
    part.others->agree(error);
    std::vector<double> sums{counts.good, counts.nonfinite, counts.mask_rejected, counts.zero_weight,
                             counts.nonpositive};
    part.others->sum(sums);
    counts = PixelCounts{sums[0], sums[1], sums[2], sums[3], sums[4]};
  }
  out.good_pixels = static_cast<std::int64_t>(counts.good);
  out.nonfinite_pixels = static_cast<std::int64_t>(counts.nonfinite);
  out.mask_rejected_pixels = static_cast<std::int64_t>(counts.mask_rejected);
  out.zero_weight_pixels = static_cast<std::int64_t>(counts.zero_weight);
  if (counts.nonpositive > 0) {
    throw Error(var_where + ": " + std::to_string(static_cast<std::int64_t>(counts.nonpositive)) + " pixels " +
                (inverse ? "< 0" : "<= 0") + " where " + (mask.present ? "MASK" : "the exposure") + " is good; " +
                (inverse ? "inverse variance must be >= 0" : "variance must be > 0"));
  }
  if (out.nonfinite_pixels > 0) {
    out.warnings.push_back(image_where + ": " + std::to_string(out.nonfinite_pixels) +
                           " NaN/Inf pixels in image or variance, masked");
  }
  if (out.good_pixels == 0) {
    throw Error(out.label + ": no good pixel (" + std::to_string(out.mask_rejected_pixels) + " rejected by " +
                (mask.present ? mask.where : std::string("no mask")) + ", " + std::to_string(out.zero_weight_pixels) +
                " with inverse variance 0 in " + (inverse ? var_where : std::string("no inverse-variance file")) +
                ", " + std::to_string(out.nonfinite_pixels) + " NaN/Inf); an exposure needs good pixels");
  }
  check_sky(stack, image_where, part, h, w, out);
  out.checksum = fingerprint(part, h, w, centre_psf, out);
  if (part.others == nullptr) {
    Checksum planes;
    planes.add(out.image.pixels);
    planes.add(out.sigma.pixels);
    planes.add(out.good);
    planes.add(centre_psf.pixels);
    out.plane_checksum = planes.value();
  }
  return out;
}

}  // namespace astroclear::io
