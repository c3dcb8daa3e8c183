// simulate_stack: Sersic galaxies and stars, Moffat PSFs, sky, Poisson and read noise, HSC-like masks.
#include "eval/simulator.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.hpp"
#include "src/psf_decoder.hpp"
#include "src/target_resolution.hpp"

namespace astroclear {
namespace {

enum MaskBit : std::int32_t { kBad = 0, kSat = 1, kCosmicRay = 3, kEdge = 4 };

torch::Tensor subsampled_grid(int size, int sub, double centre_y, double centre_x, bool y_axis) {
  // Pixel-centre offsets of an (size*sub) grid relative to the centre, in pixels.
  torch::Tensor c = (torch::arange(size * sub, torch::kFloat64) + 0.5) / sub - 0.5;
  return y_axis ? (c - centre_y).view({-1, 1}) : (c - centre_x).view({1, -1});
}

torch::Tensor bin(const torch::Tensor& fine, int size_y, int size_x, int sub) {
  return fine.view({size_y, sub, size_x, sub}).sum({1, 3});
}

/// Elliptical radius for axis ratio q and angle theta (circularised: sqrt(q u^2 + v^2 / q)).
torch::Tensor elliptical_radius(const torch::Tensor& dy, const torch::Tensor& dx, double q, double theta) {
  torch::Tensor u = dx * std::cos(theta) + dy * std::sin(theta);
  torch::Tensor v = -dx * std::sin(theta) + dy * std::cos(theta);
  return torch::sqrt(q * u * u + v * v / q);
}

double power_law(std::mt19937_64& rng, double lo, double hi, double slope) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double a = 1.0 - slope;
  return std::pow(std::pow(lo, a) + u(rng) * (std::pow(hi, a) - std::pow(lo, a)), 1.0 / a);
}

double log_uniform(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(rng));
}

void add_sersic(torch::Tensor& truth, const TruthSource& s) {
  const int radius = std::clamp(static_cast<int>(std::ceil(6 * s.half_light_radius)), 6, 48);
  const int size = 2 * radius + 1, sub = s.half_light_radius < 1.5 ? 5 : 3;
  const int x0 = static_cast<int>(std::floor(s.x)) - radius, y0 = static_cast<int>(std::floor(s.y)) - radius;
  torch::Tensor dy = subsampled_grid(size, sub, s.y - y0, 0, true);
  torch::Tensor dx = subsampled_grid(size, sub, 0, s.x - x0, false);
  torch::Tensor r = elliptical_radius(dy, dx, s.axis_ratio, s.position_angle) / s.half_light_radius;
  const double n = s.sersic_index;
  const double b = 2 * n - 1.0 / 3 + 4.0 / (405 * n) + 46.0 / (25515 * n * n);
  torch::Tensor stamp = bin(torch::exp(-b * (torch::pow(r, 1.0 / n) - 1)), size, size, sub);
  stamp = stamp * (s.flux / stamp.sum());
  // Add the part of the stamp that falls on the image.
  const int h = static_cast<int>(truth.size(0)), w = static_cast<int>(truth.size(1));
  const int ya = std::max(0, y0), yb = std::min(h, y0 + size), xa = std::max(0, x0), xb = std::min(w, x0 + size);
  if (ya >= yb || xa >= xb) return;
  truth.narrow(0, ya, yb - ya).narrow(1, xa, xb - xa) +=
      stamp.narrow(0, ya - y0, yb - ya).narrow(1, xa - x0, xb - xa).to(truth.dtype());
}

void add_star(torch::Tensor& truth, const TruthSource& s) {
  // A point source split bilinearly over the four pixels around its position.
  const int x0 = static_cast<int>(std::floor(s.x)), y0 = static_cast<int>(std::floor(s.y));
  const double fx = s.x - x0, fy = s.y - y0;
  auto a = truth.accessor<double, 2>();
  a[y0][x0] += s.flux * (1 - fx) * (1 - fy);
  a[y0][x0 + 1] += s.flux * fx * (1 - fy);
  a[y0 + 1][x0] += s.flux * (1 - fx) * fy;
  a[y0 + 1][x0 + 1] += s.flux * fx * fy;
}

int odd_at_most(int n) { return n % 2 ? n : n - 1; }

/// Saturation with bleed trails: per column, the excess charge of saturated pixels spills along
/// the column at the saturation level.
void saturate(torch::Tensor& electrons, torch::Tensor& mask, double level) {
  auto e = electrons.accessor<double, 2>();
  auto m = mask.accessor<std::int32_t, 2>();
  const int h = static_cast<int>(electrons.size(0)), w = static_cast<int>(electrons.size(1));
  for (int x = 0; x < w; ++x) {
    int top = -1, bottom = -1;
    double excess = 0;
    for (int y = 0; y < h; ++y) {
      if (e[y][x] > level) {
        excess += e[y][x] - level;
        if (top < 0) top = y;
        bottom = y;
      }
    }
    if (top < 0) continue;
    const int spill = static_cast<int>(std::ceil(excess / level / 2));
    for (int y = std::max(0, top - spill); y <= std::min(h - 1, bottom + spill); ++y) {
      e[y][x] = level;
      m[y][x] |= 1 << kSat;
    }
  }
}

}  // namespace

const std::vector<std::string>& mask_bit_names() {
  static const std::vector<std::string> names = {"BAD",      "SAT",      "INTRP",   "CR",     "EDGE",
                                                 "DETECTED", "DETECTED_NEGATIVE", "SUSPECT", "NO_DATA"};
  return names;
}

torch::Tensor moffat_psf(int size, double fwhm, double beta, double axis_ratio, double angle) {
  const int sub = 3;
  const double alpha = fwhm / (2 * std::sqrt(std::pow(2.0, 1.0 / beta) - 1));
  const double c = (size - 1) / 2.0;
  torch::Tensor r = elliptical_radius(subsampled_grid(size, sub, c, 0, true), subsampled_grid(size, sub, 0, c, false),
                                      axis_ratio, angle);
  torch::Tensor psf = bin(torch::pow(1 + (r / alpha) * (r / alpha), -beta), size, size, sub);
  return (psf / psf.sum()).to(torch::kFloat32);
}

torch::Tensor gaussian_psf(int size, double fwhm) { return gaussian_kernel(size, fwhm).to(torch::kFloat32); }

namespace {

/// Uniform on [lo, hi).
double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

/// Galaxies (Sersic profiles, a power law in flux) and stars scattered over the field, added to
/// `truth` (H, W) and listed in `sources`.
void draw_sources(const SimulationConfig& config, std::mt19937_64& rng, torch::Tensor& truth,
                  std::vector<TruthSource>& sources) {
  const int h = config.height, w = config.width;
  const double kpix = h * w / 1000.0;
  const int galaxies = static_cast<int>(std::lround(config.galaxies_per_kpix * kpix));
  const int stars = std::max(3, static_cast<int>(std::lround(config.stars_per_kpix * kpix)));
  for (int i = 0; i < galaxies; ++i) {
    TruthSource s;
    s.type = "galaxy";
    s.x = uniform(rng, -5, w + 5);
    s.y = uniform(rng, -5, h + 5);
    s.flux = power_law(rng, 40.0, 2e5, 1.7);
    s.half_light_radius = std::clamp(log_uniform(rng, 0.7, 5.0) * std::pow(s.flux / 1000.0, 0.15), 0.5, 12.0);
    s.sersic_index = uniform(rng, 0.5, 4.0);
    s.axis_ratio = uniform(rng, 0.35, 1.0);
    s.position_angle = uniform(rng, 0, M_PI);
    add_sersic(truth, s);
    sources.push_back(s);
  }
  for (int i = 0; i < stars; ++i) {
    TruthSource s;
    s.type = "star";
    s.x = uniform(rng, 2, w - 3);
    s.y = uniform(rng, 2, h - 3);
    s.flux = log_uniform(rng, 200.0, 3e6);
    add_star(truth, s);
    sources.push_back(s);
  }
}

/// A standard normal draw.
double gaussian(std::mt19937_64& rng) { return std::normal_distribution<double>(0.0, 1.0)(rng); }

/// What a detector adds to an exposure (in electrons), each flagged in `mask`: partial bad columns
/// of garbage values, cosmic-ray tracks, and an edge of 1-4 pixels. A fraction `unmasked_cr` of
/// the tracks, decided by `errors`, stays unflagged; returns how many.
int add_detector_defects(torch::Tensor& electrons, torch::Tensor& mask, std::mt19937_64& rng, double unmasked_cr,
                         std::mt19937_64& errors) {
  const int h = static_cast<int>(electrons.size(0)), w = static_cast<int>(electrons.size(1));
  auto ea = electrons.accessor<double, 2>();
  auto ma = mask.accessor<std::int32_t, 2>();
  for (int c = 0; c < std::max(1, w / 256); ++c) {
    const int x = static_cast<int>(uniform(rng, 0, w)), y0 = static_cast<int>(uniform(rng, 0, h / 2));
    for (int y = y0; y < h; ++y) {
      ea[y][x] += 3000 + 500 * uniform(rng, 0, 1);
      ma[y][x] |= 1 << kBad;
    }
  }
  int unmasked = 0;
  for (int c = 0; c < std::max(2, h * w / 8000); ++c) {
    int x = static_cast<int>(uniform(rng, 0, w)), y = static_cast<int>(uniform(rng, 0, h));
    const int dx = static_cast<int>(uniform(rng, -1, 2)), dy = static_cast<int>(uniform(rng, -1, 2));
    const int length = 1 + static_cast<int>(uniform(rng, 0, 6));
    const double charge = uniform(rng, 500, 20000);
    const bool flagged = !(unmasked_cr > 0 && uniform(errors, 0, 1) < unmasked_cr);
    unmasked += flagged ? 0 : 1;
    for (int k = 0; k < length && x >= 0 && x < w && y >= 0 && y < h; ++k, x += dx, y += dy) {
      ea[y][x] += charge;
      if (flagged) ma[y][x] |= 1 << kCosmicRay;
    }
  }
  const int edge = 1 + static_cast<int>(uniform(rng, 0, 4));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (y < edge || x < edge || y >= h - edge || x >= w - edge) ma[y][x] |= 1 << kEdge;
    }
  }
  return unmasked;
}

/// The Moffat parameters of a PSF model with the errors of Note [simulated errors].
struct MoffatShape {
  double fwhm, beta, axis_ratio, angle;
};

MoffatShape with_model_error(const MoffatShape& truth, double psf_error, std::mt19937_64& errors) {
  if (psf_error <= 0) return truth;
  MoffatShape model = truth;
  model.fwhm *= 1 + psf_error * gaussian(errors);
  model.beta *= 1 + psf_error * gaussian(errors);
  model.axis_ratio = std::clamp(1 - ((1 - truth.axis_ratio) + psf_error * gaussian(errors)), 0.5, 1.0);
  model.angle += psf_error * M_PI * gaussian(errors);
  model.fwhm = std::max(model.fwhm, 0.5);
  model.beta = std::max(model.beta, 1.1);
  return model;
}

}  // namespace

void SimulationConfig::validate() const {
  if (exposures < 1) throw Error("simulate: --exposures must be >= 1, got " + std::to_string(exposures));
  if (height < 32 || width < 32) throw Error("simulate: images must be at least 32 x 32 pixels");
  if (!(psf_error >= 0 && psf_error <= 0.5)) {
    throw Error("simulate: --psf-error must be in [0, 0.5] (a fraction), got " + std::to_string(psf_error));
  }
  if (!(unmasked_cr >= 0 && unmasked_cr <= 1)) {
    throw Error("simulate: --unmasked-cr must be in [0, 1] (a fraction), got " + std::to_string(unmasked_cr));
  }
  if (!(sky_residual >= 0 && sky_residual <= 100)) {
    throw Error("simulate: --sky-residual must be in [0, 100] (sky sigmas), got " + std::to_string(sky_residual));
  }
}

SimulatedStack simulate_stack(const SimulationConfig& config) {
  config.validate();
  const int h = config.height, w = config.width;
  std::mt19937_64 rng(config.seed);
  std::mt19937_64 errors(config.seed * 0x9E3779B97F4A7C15ULL + 0x5EED);  // Note [simulated errors]

  SimulatedStack stack;
  torch::Tensor truth = torch::zeros({h, w}, torch::kFloat64);
  draw_sources(config, rng, truth, stack.sources);
  stack.truth = truth.to(torch::kFloat32);
  const int target_size = 2 * static_cast<int>(std::ceil(2 * config.target_fwhm_pixels)) + 1;
  stack.target_psf = gaussian_psf(target_size, config.target_fwhm_pixels);
  stack.truth_target = fft_convolve(stack.truth, stack.target_psf.unsqueeze(0))[0];

  auto noise = at::detail::createCPUGenerator(config.seed * 7919 + 17);
  for (int t = 0; t < config.exposures; ++t) {
    SimulatedExposure e;
    e.fwhm_arcsec = uniform(rng, config.seeing_min_arcsec, config.seeing_max_arcsec);
    const double fwhm = e.fwhm_arcsec / config.pixel_scale_arcsec;
    const int size = std::min(odd_at_most(std::min(h, w) - 2),
                              std::clamp(2 * static_cast<int>(std::lround(3.5 * fwhm)) + 1, 31, 49));
    // Drawn angle first: the order in which stacks of a given seed have always been made.
    MoffatShape shape{fwhm, 0, 0, 0};
    shape.angle = uniform(rng, 0, M_PI);
    shape.axis_ratio = uniform(rng, 0.85, 1.0);
    shape.beta = uniform(rng, 2.5, 4.5);
    const torch::Tensor psf = moffat_psf(size, shape.fwhm, shape.beta, shape.axis_ratio, shape.angle);
    const MoffatShape written = with_model_error(shape, config.psf_error, errors);
    e.psf = config.psf_error > 0 ? moffat_psf(size, written.fwhm, written.beta, written.axis_ratio, written.angle) : psf;
    e.model_fwhm_arcsec = config.psf_error > 0 ? written.fwhm * config.pixel_scale_arcsec : e.fwhm_arcsec;
    e.flux_scale = uniform(rng, 0.95, 1.05);
    e.sky = uniform(rng, config.sky_min, config.sky_max);

    torch::Tensor model = fft_convolve(truth, psf.to(torch::kFloat64).unsqueeze(0))[0].clamp_min(0) * e.flux_scale;
    torch::Tensor expected = model + e.sky;
    torch::Tensor electrons =
        torch::poisson(expected, noise) + config.read_noise * torch::randn({h, w}, noise, torch::kFloat64);
    torch::Tensor mask = torch::zeros({h, w}, torch::kInt32);
    saturate(electrons, mask, config.saturation);
    e.unmasked_cosmic_rays = add_detector_defects(electrons, mask, rng, config.unmasked_cr, errors);
    if (config.sky_residual > 0) {
      const double sky_sigma = std::sqrt(e.sky + config.read_noise * config.read_noise);
      e.sky_residual = config.sky_residual * gaussian(errors) * sky_sigma;
    }
    e.image = (electrons - e.sky + e.sky_residual).to(torch::kFloat32);
    e.variance = (expected + config.read_noise * config.read_noise).to(torch::kFloat32);
    e.mask = mask;
    stack.exposures.push_back(std::move(e));
  }
  return stack;
}

}  // namespace astroclear
