// Exposure and PSF reading with the validation rules of the method (docs/design.md, "The model").
#include "io/exposure_reader.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "io/fits_file.hpp"
#include "common/error.hpp"

namespace astroclear::io {
namespace {

constexpr double kPsfSumTolerance = 0.10;   // renormalise within, refuse beyond
constexpr double kPsfNegativeTolerance = 1e-3;  // relative to the peak: clip within, refuse beyond

/// Opens `path` and moves to the HDU named `extname` (MEF) or to its first image (plain file).
FitsFile open_plane(const std::string& path, const std::string& extname, bool by_name) {
  return FitsFile::open_image(path, by_name ? extname : "");
}

std::string str(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

}  // namespace

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
    for (const HeaderCard& card : header) {
      if (card.key == "MP_" + name) {
        bits |= std::int64_t{1} << std::stoi(card.value);
        found = true;
      }
    }
    if (!found) missing += (missing.empty() ? "" : ", ") + name;
  }
  if (!missing.empty()) {
    warnings.push_back("bad_mask_bits " + missing +
                       " name no plane of this mask, so they reject nothing; its planes: " + planes);
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

Image read_psf(const std::string& path, std::int64_t height, std::int64_t width, std::vector<std::string>& warnings) {
  FitsFile f = open_plane(path, "", false);
  Image psf = f.read_image();
  const std::string where = f.where();
  const std::string size = shape_text(psf.height, psf.width);
  if (psf.height % 2 == 0 || psf.width % 2 == 0) {
    throw Error(where + ": PSF is " + size + " pixels; PSF sizes must be odd so that it has a centre pixel");
  }
  if (psf.height > height || psf.width > width) {
    throw Error(where + ": PSF is " + size + " pixels, larger than the exposure (" + shape_text(height, width) + ")");
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
    throw Error(where + ": " + std::to_string(negative) + " PSF pixels are negative (min " + str(most_negative) +
                ", peak " + str(peak) + "); a PSF must be non-negative");
  }
  if (negative > 0) {
    warnings.push_back(where + ": " + std::to_string(negative) + " slightly negative PSF pixels (min " +
                       str(most_negative) + ") set to 0");
    sum = 0;
    for (float& v : psf.pixels) sum += (v = std::max(v, 0.0f));
  }
  if (std::abs(sum - 1.0) > kPsfSumTolerance) {
    throw Error(where + ": PSF sums to " + str(sum) + "; expected 1 (renormalised only within " +
                str(kPsfSumTolerance * 100) + "%)");
  }
  if (std::abs(sum - 1.0) > 1e-6) {
    warnings.push_back(where + ": PSF sums to " + str(sum) + "; renormalised to 1");
  }
  for (float& v : psf.pixels) v = static_cast<float>(v / sum);
  return psf;
}

namespace {

/// The exposure's flux scale and where it came from: the manifest's flux_scale, else the first of
/// the stack's flux_scale_keys found in the primary header or the image HDU, else 1.
std::pair<double, std::string> flux_scale_of(const ExposureSpec& spec, const StackSpec& stack, FitsFile& image_file) {
  if (spec.flux_scale) return {*spec.flux_scale, stack.source + " flux_scale"};
  FitsFile primary = FitsFile::open(image_file.path());
  for (FitsFile* header : {&primary, &image_file}) {
    for (const std::string& key : stack.flux_scale_keys) {
      if (auto v = header->read_double(key)) return {*v, header->where() + " " + key};
    }
  }
  return {1.0, "default"};
}

/// A mask plane and the bits that reject a pixel, from the MEF's MASK HDU or a separate file;
/// all good (no bit rejects) when the exposure has none.
struct MaskPlane {
  MaskImage mask;
  std::int64_t bad_bits = 0;
  std::string where = "(no mask)";
  bool present = false;
};

MaskPlane read_mask_plane(const ExposureSpec& spec, const StackSpec& stack, const Image& image,
                          const std::string& image_where, std::vector<std::string>& warnings) {
  const std::int64_t h = image.height, w = image.width;
  MaskPlane plane{MaskImage{h, w, std::vector<std::int32_t>(h * w, 0)}};
  const bool mef = !spec.file.empty();
  if (!mef && spec.mask.empty()) return plane;
  FitsFile mask_file = open_plane(mef ? spec.file : spec.mask, stack.mask_hdu, mef);
  plane.present = true;
  plane.where = mask_file.where();
  plane.mask = mask_file.read_mask();
  if (plane.mask.height != h || plane.mask.width != w) {
    throw Error(plane.where + ": " + shape_text(plane.mask.height, plane.mask.width) + " pixels, but " + image_where +
                " is " + shape_text(h, w));
  }
  std::vector<std::string> mask_warnings;
  plane.bad_bits = bad_bit_mask(mask_file.read_cards(), stack.bad_mask_bits, mask_warnings);
  for (auto& m : mask_warnings) warnings.push_back(plane.where + ": " + m);
  return plane;
}

/// Fills out.image, out.sigma and out.good (calibrated: divided by the flux scale) and the pixel
/// counts from the planes; returns how many good pixels have a variance <= 0 (inverse variance < 0).
std::int64_t calibrate(const Image& image, const Image& variance, bool inverse, const MaskPlane& mask,
                       double flux_scale, ExposureData& out) {
  const std::int64_t h = image.height, w = image.width;
  out.image = Image(h, w, 0.0f);
  out.sigma = Image(h, w, 1.0f);
  out.good.assign(h * w, 0);
  std::int64_t nonpositive = 0;
  for (std::int64_t i = 0; i < h * w; ++i) {
    if ((static_cast<std::int64_t>(mask.mask.pixels[i]) & mask.bad_bits) != 0) {
      ++out.mask_rejected_pixels;
      continue;
    }
    const float y = image.pixels[i];
    float v = variance.pixels[i];
    if (!std::isfinite(y) || !std::isfinite(v)) {
      ++out.nonfinite_pixels;
      continue;
    }
    if (inverse) {
      if (v == 0.0f) {  // inverse variance 0: no information, as masked
        ++out.zero_weight_pixels;
        continue;
      }
      v = 1.0f / v;
    }
    if (v <= 0.0f) {
      ++nonpositive;
      continue;
    }
    out.good[i] = 1;
    out.image.pixels[i] = static_cast<float>(y / flux_scale);
    out.sigma.pixels[i] = static_cast<float>(std::sqrt(static_cast<double>(v)) / flux_scale);
    ++out.good_pixels;
  }
  return nonpositive;
}

// Note [sky check]: astroclear models sky-subtracted exposures: a sky left in would be restored as
// a flat pedestal that the positivity and the Huber loss treat as signal. The sky level is read
// from the lower quartile of the good pixels, which sources hardly move (they only raise the upper
// ones): for noise of sigma about a sky level s, the quartile lies at s - 0.674 sigma. A
// sky-subtracted exposure gives a level within a few tenths of a sigma of zero even when a bright
// source fills much of a small cutout; one with its sky in (real CP images: about 2000 ADU, chi
// 9-11) gives many sigmas. Beyond sky_tolerance_sigma (default 3) the exposure is refused, unless
// the manifest asks for subtract_sky = "median", which subtracts the median of the good pixels.
void check_sky(const StackSpec& stack, const std::string& where, ExposureData& out) {
  std::vector<float> values, sigmas;
  values.reserve(static_cast<std::size_t>(out.good_pixels));
  sigmas.reserve(values.capacity());
  for (std::size_t i = 0; i < out.good.size(); ++i) {
    if (out.good[i] == 0) continue;
    values.push_back(out.image.pixels[i]);
    sigmas.push_back(out.sigma.pixels[i]);
  }
  const auto quantile = [](std::vector<float>& v, std::size_t k) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]);
  };
  const double sigma = quantile(sigmas, sigmas.size() / 2);
  if (stack.subtract_sky == "median") {
    const double median = quantile(values, values.size() / 2);
    for (std::size_t i = 0; i < out.good.size(); ++i) {
      if (out.good[i] != 0) out.image.pixels[i] -= static_cast<float>(median);
    }
    out.warnings.push_back(where + ": subtract_sky = \"median\": subtracted " + str(median * out.flux_scale) +
                           " (" + str(median / sigma) + " sigma)");
    return;
  }
  constexpr double kQuartileOfUnitNoise = 0.6745;  // the upper quartile of a unit Gaussian
  const double level = quantile(values, values.size() / 4) + kQuartileOfUnitNoise * sigma;
  if (std::abs(level) > stack.sky_tolerance_sigma * sigma) {
    throw Error(where + ": its sky level is " + str(level / sigma) + " sigma from zero (" +
                str(level * out.flux_scale) +
                ", from the lower quartile of its good pixels): astroclear needs sky-subtracted exposures. "
                "Subtract the sky first, or set subtract_sky = \"median\" in the manifest's [stack] to subtract a "
                "constant (sky_tolerance_sigma = " + str(stack.sky_tolerance_sigma) + " sets this check)");
  }
}

}  // namespace

ExposureData read_exposure(const ExposureSpec& spec, const StackSpec& stack) {
  ExposureData out;
  out.label = spec.label();
  const bool mef = !spec.file.empty();

  FitsFile image_file = open_plane(mef ? spec.file : spec.image, stack.image_hdu, mef);
  const std::string image_where = image_file.where();
  const Image image = image_file.read_image();
  out.image_header = image_file.read_cards();
  const std::int64_t h = image.height, w = image.width;

  const auto [flux_scale, scale_source] = flux_scale_of(spec, stack, image_file);
  if (!std::isfinite(flux_scale) || flux_scale <= 0) {
    throw Error(out.label + ": flux scale (" + scale_source + ") = " + str(flux_scale) + "; must be finite and > 0");
  }
  out.flux_scale = flux_scale;

  // Variance, or inverse variance turned into variance.
  const bool inverse = !mef && !spec.inverse_variance.empty();
  FitsFile var_file = open_plane(mef ? spec.file : (inverse ? spec.inverse_variance : spec.variance),
                                 stack.variance_hdu, mef);
  const Image variance = var_file.read_image();
  const std::string var_where = var_file.where();
  if (variance.height != h || variance.width != w) {
    throw Error(var_where + ": " + shape_text(variance.height, variance.width) + " pixels, but " + image_where +
                " is " + shape_text(h, w));
  }
  const MaskPlane mask = read_mask_plane(spec, stack, image, image_where, out.warnings);

  const std::int64_t nonpositive = calibrate(image, variance, inverse, mask, flux_scale, out);
  if (nonpositive > 0) {
    throw Error(var_where + ": " + std::to_string(nonpositive) + " pixels " + (inverse ? "< 0" : "<= 0") +
                " where " + (mask.present ? "MASK" : "the exposure") + " is good; " +
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
  check_sky(stack, image_where, out);
  out.psf = read_psf(spec.psf, h, w, out.warnings);
  return out;
}

}  // namespace astroclear::io
