// score_detections: Note [detection scores].
#include "eval/detection_scores.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "common/error.hpp"

namespace astroclear {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  double m = v[mid];
  if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + mid));
  return m;
}

template <class Point>
bool inside(const Point& p, const ScoringSettings& s) {
  return p.x >= s.border && p.y >= s.border && p.x <= s.width - 1 - s.border && p.y <= s.height - 1 - s.border;
}

/// mag50: walking faint from the brightest bin with enough sources, the first crossing of 50%.
double fifty_percent_magnitude(const std::vector<MagnitudeBin>& bins) {
  constexpr int kMinSources = 3;
  double last_mag = std::numeric_limits<double>::quiet_NaN(), last_c = 0;
  for (const MagnitudeBin& b : bins) {
    if (b.sources < kMinSources) continue;
    const double mag = 0.5 * (b.bright + b.faint), c = b.completeness();
    if (c < 0.5) {
      if (std::isnan(last_mag)) return std::numeric_limits<double>::quiet_NaN();  // below 50% from the start
      return last_mag + (mag - last_mag) * (last_c - 0.5) / (last_c - c);
    }
    last_mag = mag;
    last_c = c;
  }
  return last_mag;  // never fell below 50%: the faintest populated bin
}

}  // namespace

double magnitude(double flux) {
  return flux > 0 ? 27.0 - 2.5 * std::log10(flux) : std::numeric_limits<double>::infinity();
}

std::vector<int> match_sources(const std::vector<io::TruthEntry>& truth, const std::vector<io::Detection>& detections,
                               double radius) {
  // Detections bucketed on a grid of `radius` cells; pairs within the radius, closest first.
  std::map<std::pair<long, long>, std::vector<int>> cells;
  const auto cell = [&](double v) { return static_cast<long>(std::floor(v / radius)); };
  for (std::size_t j = 0; j < detections.size(); ++j) {
    cells[{cell(detections[j].x), cell(detections[j].y)}].push_back(static_cast<int>(j));
  }
  std::vector<std::tuple<double, int, int>> pairs;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const long cx = cell(truth[i].x), cy = cell(truth[i].y);
    for (long dy = -1; dy <= 1; ++dy) {
      for (long dx = -1; dx <= 1; ++dx) {
        const auto found = cells.find({cx + dx, cy + dy});
        if (found == cells.end()) continue;
        for (int j : found->second) {
          const double d = std::hypot(truth[i].x - detections[j].x, truth[i].y - detections[j].y);
          if (d <= radius) pairs.emplace_back(d, static_cast<int>(i), j);
        }
      }
    }
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<int> match(truth.size(), -1);
  std::vector<bool> taken(detections.size(), false);
  for (const auto& [d, i, j] : pairs) {
    if (match[i] < 0 && !taken[j]) {
      match[i] = j;
      taken[j] = true;
    }
  }
  return match;
}

SweepPoint count_detections(const std::vector<io::TruthEntry>& truth, const std::vector<bool>& detectable,
                            const std::vector<io::Detection>& detections, const ScoringSettings& s) {
  if (detectable.size() != truth.size()) throw Error("count_detections: one detectable flag per truth entry needed");
  SweepPoint point;
  const std::vector<int> match = match_sources(truth, detections, s.match_radius);
  std::vector<bool> matched_detection(detections.size(), false);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (match[i] >= 0) matched_detection[match[i]] = true;
    if (!inside(truth[i], s) || !detectable[i]) continue;
    ++point.detectable;
    point.found += match[i] >= 0;
  }
  for (std::size_t j = 0; j < detections.size(); ++j) {
    if (!inside(detections[j], s)) continue;
    ++point.detections;
    point.false_detections += !matched_detection[j];
  }
  return point;
}

double completeness_at_false_fraction(const std::vector<SweepPoint>& sweep, double false_fraction) {
  for (std::size_t k = 0; k < sweep.size(); ++k) {
    const double f = sweep[k].false_fraction();
    if (f > false_fraction) continue;
    if (k == 0) return sweep[0].completeness();
    const double f0 = sweep[k - 1].false_fraction(), c0 = sweep[k - 1].completeness(), c = sweep[k].completeness();
    const double t = (f0 - false_fraction) / (f0 - f);  // f0 > false_fraction >= f
    return c0 + t * (c - c0);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

DetectionScores score_detections(const std::vector<io::TruthEntry>& truth, const std::vector<bool>& detectable,
                                 const std::vector<io::Detection>& detections,
                                 const std::vector<io::Detection>& measured_on_truth, const ScoringSettings& s) {
  if (detectable.size() != truth.size()) throw Error("score_detections: one detectable flag per truth entry needed");
  if (measured_on_truth.size() != detections.size()) {
    throw Error("the dual-image SExtractor run found " + std::to_string(measured_on_truth.size()) +
                " sources, the single-image run " + std::to_string(detections.size()) + ": they must agree");
  }
  DetectionScores scores;
  const std::vector<int> match = match_sources(truth, detections, s.match_radius);
  std::vector<bool> matched_detection(detections.size(), false);
  for (int j : match) {
    if (j >= 0) matched_detection[j] = true;
  }

  // Completeness, over the detectable sources and by magnitude over all.
  std::map<long, MagnitudeBin> bins;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (!inside(truth[i], s)) continue;
    ++scores.truth_sources;
    const bool found = match[i] >= 0;
    if (detectable[i]) {
      ++scores.detectable;
      scores.found += found;
    }
    const long k = static_cast<long>(std::floor(magnitude(truth[i].flux) / s.bin_width));
    MagnitudeBin& b = bins[k];
    b.bright = k * s.bin_width;
    b.faint = (k + 1) * s.bin_width;
    ++b.sources;
    b.found += found;
  }
  scores.completeness = scores.detectable > 0 ? static_cast<double>(scores.found) / scores.detectable : 0.0;
  for (const auto& [k, b] : bins) scores.bins.push_back(b);
  scores.mag50 = fifty_percent_magnitude(scores.bins);

  // False detections.
  for (std::size_t j = 0; j < detections.size(); ++j) {
    if (!inside(detections[j], s)) continue;
    ++scores.detections;
    scores.false_detections += !matched_detection[j];
  }
  scores.false_fraction = scores.detections > 0 ? static_cast<double>(scores.false_detections) / scores.detections : 0.0;

  // Photometry of bright matched sources and the FWHM of isolated stars.
  std::vector<double> errors, fwhms;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const int j = match[i];
    if (j < 0 || !inside(truth[i], s) || truth[i].flux < s.photometry_flux) continue;
    const double reference = measured_on_truth[j].flux_aper;
    if (reference > 0) errors.push_back((detections[j].flux_aper - reference) / reference);
    if (truth[i].type != "star" || detections[j].flags != 0) continue;
    const bool isolated = std::none_of(truth.begin(), truth.end(), [&](const io::TruthEntry& o) {
      return &o != &truth[i] && o.flux > 0.1 * truth[i].flux &&
             std::hypot(o.x - truth[i].x, o.y - truth[i].y) < s.isolation;
    });
    if (isolated) fwhms.push_back(detections[j].fwhm);
  }
  scores.photometry_sources = static_cast<int>(errors.size());
  scores.flux_bias = median(errors);
  std::vector<double> deviations;
  for (double e : errors) deviations.push_back(std::abs(e - scores.flux_bias));
  scores.flux_scatter = 1.4826 * median(deviations);
  scores.isolated_stars = static_cast<int>(fwhms.size());
  scores.star_fwhm = median(fwhms);
  return scores;
}

}  // namespace astroclear
