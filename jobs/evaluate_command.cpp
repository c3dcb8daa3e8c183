// astroclear evaluate: detections, photometry and image metrics of restored images against the truth.
#include "jobs/evaluate_command.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "io/catalogs.hpp"
#include "io/file_tree.hpp"
#include "io/fits_output.hpp"
#include "io/fits_file.hpp"
#include "io/json_lines.hpp"
#include "io/png_preview.hpp"
#include "io/source_extractor.hpp"
#include "jobs/cli.hpp"
#include "jobs/provenance.hpp"
#include "jobs/tensor_image.hpp"
#include "common/error.hpp"
#include "eval/detection_scores.hpp"
#include "eval/image_metrics.hpp"
#include "src/psf_decoder.hpp"
#include "src/target_resolution.hpp"

namespace astroclear::jobs {
namespace fs = std::filesystem;
namespace {

struct Truth {
  torch::Tensor image;       ///< truth convolved with the target PSF
  torch::Tensor target_psf;  ///< (k, k)
  double target_fwhm = 0;
  double coadd_noise = 0;    ///< per-pixel sigma of the inverse-variance coadd (NOISECOA), 0 = unknown
  std::vector<io::TruthEntry> catalog;
};

Truth read_truth(const std::string& dir) {
  const std::string path = dir + "/truth.fits", catalog = dir + "/truth_catalog.csv";
  for (const auto& p : {path, catalog}) {
    if (!fs::exists(p)) throw Error("--truth: " + p + " does not exist (astroclear simulate writes it)");
  }
  Truth truth;
  io::FitsFile f = io::FitsFile::open_image(path, "");
  truth.image = to_tensor(f.read_image());
  truth.target_fwhm = f.read_double("TFWHM").value_or(0);
  truth.coadd_noise = f.read_double("NOISECOA").value_or(0);
  if (!(truth.target_fwhm > 0)) throw Error(path + ": keyword TFWHM (target PSF FWHM, pixels) is missing or not > 0");
  if (!f.move_to("TARGET_PSF")) throw Error(path + ": no HDU with EXTNAME = 'TARGET_PSF'");
  truth.target_psf = to_tensor(f.read_image());
  truth.catalog = io::read_truth_catalog(catalog);
  return truth;
}

struct Evaluated {
  std::string path, label, product;
  bool reconvolved = false;
  bool at_target = false;  ///< reconvolved, or restored to the target resolution itself
  std::int64_t not_finite = 0;  ///< NaN or infinite pixels, scored as 0 and reported
  DetectionScores scores;
  ImageMetrics metrics;
  std::vector<SweepPoint> sweep;             ///< by ascending threshold (Note [threshold sweep])
  double at_reference_purity = std::nan("");  ///< completeness at the reference's false fraction
};

/// How every image is scored: the detection setup, the scoring rules, the sweep.
struct Setup {
  Truth truth;
  io::SourceExtractorSettings detection;
  ScoringSettings scoring;
  double softening = 0;             ///< of the asinh stretch of the image metrics
  double sweep_unit = 0;            ///< the sweep's thresholds are multiples of this (the coadd noise)
  std::vector<double> sweep;        ///< absolute thresholds, ascending; empty: no sweep
  std::string work;                 ///< SExtractor's folder
  std::string truth_fits;           ///< the noiseless truth image there
  std::vector<bool> detectable;     ///< at the detection threshold
  std::vector<bool> sweep_detectable;  ///< at the sweep's lowest threshold
};

std::string write_single_hdu(const std::string& path, const torch::Tensor& image) {
  io::FitsFile f = io::FitsFile::create(path);
  f.write_image(to_image(image));
  f.close();
  return path;
}

/// The image to score: the result's HDU, reconvolved to the target PSF when it is a latent image.
torch::Tensor prepared_image(const EvaluateOptions& options, const Truth& truth, Evaluated& e) {
  io::FitsFile f = io::FitsFile::open_image(e.path, options.hdu);
  e.product = f.read_string("ACPROD").value_or("");
  torch::Tensor image = to_tensor(f.read_image());
  if (image.sizes() != truth.image.sizes()) {
    throw Error(e.path + ": " + io::shape_text(image.size(0), image.size(1)) + " pixels, but the truth is " +
                io::shape_text(truth.image.size(0), truth.image.size(1)));
  }
  // A latent image restored to a target resolution (ACTFWHM) needs only the rest of the way.
  const double resolution = f.read_double("ACTFWHM").value_or(0);
  switch (options.reconvolve) {
    case Reconvolve::kAuto: e.reconvolved = is_latent_product(e.product) && resolution < truth.target_fwhm - 1e-6; break;
    case Reconvolve::kYes: e.reconvolved = true; break;
    case Reconvolve::kNo: e.reconvolved = false; break;
  }
  // Pixels without a value (NaN, or infinite) are counted and reported, and scored as 0; an image
  // with none at all has nothing to score.
  e.not_finite = image.numel() - torch::isfinite(image).sum().item<std::int64_t>();
  if (e.not_finite == image.numel())
    throw Error(e.path + ": no pixel is finite (all NaN or infinite): nothing to score");
  image = torch::nan_to_num(image, 0.0, 0.0, 0.0);
  e.at_target = e.reconvolved || (is_latent_product(e.product) && resolution >= truth.target_fwhm - 1e-6);
  if (e.reconvolved) {
    const torch::Tensor kernel =
        resolution > 0 && resolution < truth.target_fwhm
            ? gaussian_kernel(truth.target_psf.size(0), std::sqrt(truth.target_fwhm * truth.target_fwhm -
                                                                   resolution * resolution)).to(torch::kFloat32)
            : truth.target_psf;
    image = fft_convolve(image, kernel.unsqueeze(0))[0];
  }
  return image;
}

std::string label_for(const Evaluated& e) {
  if (e.product == kProductLatent) return "astroclear";
  if (e.product == kProductRichardsonLucy) return "richardson-lucy";
  if (e.product == kProductImageMm) return "imagemm";
  if (e.product == kProductCoadd) return "coadd";
  return fs::path(e.path).stem().string();
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, v);
  return text;
}

void print_table(const std::vector<Evaluated>& all, const Truth& truth) {
  const int first = 34, column = 17;
  auto row = [&](const std::string& name, const std::function<std::string(const Evaluated&)>& cell) {
    std::printf("%-*s", first, name.c_str());
    for (const auto& e : all) std::printf("%*s", column, cell(e).c_str());
    std::printf("\n");
  };
  row("", [](const Evaluated& e) { return e.label; });
  row("file", [](const Evaluated& e) { return fs::path(e.path).filename().string(); });
  row("seen at", [](const Evaluated& e) { return std::string(e.at_target ? "target PSF" : "its own PSF"); });
  row("pixels not finite (scored as 0)", [](const Evaluated& e) { return std::to_string(e.not_finite); });
  row("completeness (of detectable)", [](const Evaluated& e) { return fixed(e.scores.completeness, 3); });
  row("  found / detectable", [](const Evaluated& e) {
    return std::to_string(e.scores.found) + "/" + std::to_string(e.scores.detectable);
  });
  row("mag at 50% completeness", [](const Evaluated& e) { return fixed(e.scores.mag50, 2); });
  row("detections", [](const Evaluated& e) { return std::to_string(e.scores.detections); });
  row("false-detection fraction", [](const Evaluated& e) { return fixed(e.scores.false_fraction, 3); });
  row("flux bias (aperture)", [](const Evaluated& e) { return fixed(100 * e.scores.flux_bias, 2) + "%"; });
  row("flux scatter (aperture, MAD)", [](const Evaluated& e) { return fixed(100 * e.scores.flux_scatter, 2) + "%"; });
  row("  sources in photometry", [](const Evaluated& e) { return std::to_string(e.scores.photometry_sources); });
  row("star FWHM px (target " + fixed(truth.target_fwhm, 2) + ")", [](const Evaluated& e) { return fixed(e.scores.star_fwhm, 2); });
  row("  isolated stars", [](const Evaluated& e) { return std::to_string(e.scores.isolated_stars); });
  row("relative L2 vs truth", [](const Evaluated& e) { return fixed(e.metrics.relative_l2, 4); });
  row("PSNR (asinh, dB)", [](const Evaluated& e) { return fixed(e.metrics.psnr, 2); });
  row("SSIM (asinh)", [](const Evaluated& e) { return fixed(e.metrics.ssim, 4); });
  std::printf("completeness by magnitude (ZP 27; truth sources in bin)\n");
  const auto& bins = all.front().scores.bins;
  for (std::size_t b = 0; b < bins.size(); ++b) {
    char name[64];
    std::snprintf(name, sizeof(name), "  %5.1f-%-5.1f (%d)", bins[b].bright, bins[b].faint, bins[b].sources);
    row(name, [&](const Evaluated& e) { return fixed(e.scores.bins[b].completeness(), 2); });
  }
}

/// One JSON object per image, written whole or not at all.
void write_json(const std::string& path, const std::vector<Evaluated>& all, double threshold,
                const Evaluated& reference) {
  std::vector<io::JsonObject> rows;
  for (const auto& e : all) {
    const auto& s = e.scores;
    io::JsonObject row;
    row["image"] = e.path;
    row["label"] = e.label;
    row["reconvolved"] = e.reconvolved;
    row["pixels_not_finite"] = e.not_finite;
    row["threshold"] = threshold;
    row["completeness"] = s.completeness;
    row["found"] = s.found;
    row["detectable"] = s.detectable;
    row["truth_sources"] = s.truth_sources;
    row["mag50"] = s.mag50;
    row["detections"] = s.detections;
    row["false_detections"] = s.false_detections;
    row["false_fraction"] = s.false_fraction;
    row["flux_bias"] = s.flux_bias;
    row["flux_scatter"] = s.flux_scatter;
    row["photometry_sources"] = s.photometry_sources;
    row["star_fwhm"] = s.star_fwhm;
    row["isolated_stars"] = s.isolated_stars;
    row["relative_l2"] = e.metrics.relative_l2;
    row["psnr"] = e.metrics.psnr;
    row["ssim"] = e.metrics.ssim;
    io::JsonObject bins = io::JsonObject::array();
    for (const auto& bin : s.bins) bins.push_back({bin.bright, bin.sources, bin.found});
    row["completeness_by_magnitude"] = bins;
    io::JsonObject sweep = io::JsonObject::array();
    for (const SweepPoint& p : e.sweep) {
      sweep.push_back({{"threshold", p.threshold}, {"detections", p.detections}, {"found", p.found},
                       {"false_detections", p.false_detections}, {"completeness", p.completeness()},
                       {"false_fraction", p.false_fraction()}});
    }
    row["sweep"] = sweep;
    row["sweep_detectable"] = e.sweep.empty() ? 0 : e.sweep.front().detectable;
    row["purity_reference"] = reference.path;
    row["reference_false_fraction"] = reference.scores.false_fraction;
    row["completeness_at_reference_purity"] = e.at_reference_purity;
    rows.push_back(std::move(row));
  }
  io::write_json_lines(path, rows);
}

/// A private folder for the images and catalogues SExtractor reads and writes.
std::string make_work_dir(const std::string& keep) {
  if (!keep.empty()) {
    if (fs::exists(keep) && !fs::is_empty(keep)) throw Error("--keep: " + keep + " exists and is not empty");
    fs::create_directories(keep);
    return keep;
  }
  std::string pattern = (fs::temp_directory_path() / "astroclear-evaluate-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw Error("cannot create a temporary folder " + pattern);
  return pattern;
}


/// Collective of nothing; rank 0. Reads the truth and sets the detection threshold, the scoring
/// rules and the sweep's thresholds from the options, refusing what cannot work.
Setup make_setup(const EvaluateOptions& options) {
  Setup setup;
  io::SourceExtractorSettings& settings = setup.detection;
  // Before any work, so that a missing SExtractor is said at once.
  settings.executable = io::find_source_extractor(options.sextractor);
  setup.truth = read_truth(options.truth_dir);
  const Truth& truth = setup.truth;
  settings.min_area = options.min_area;
  settings.filter_fwhm = truth.target_fwhm;
  settings.aperture_diameter = options.aperture > 0 ? options.aperture : 4 * truth.target_fwhm;
  if (options.threshold > 0) {
    settings.threshold = options.threshold;
  } else if (truth.coadd_noise > 0) {
    settings.threshold = options.threshold_sigma * truth.coadd_noise;
  } else {
    throw Error(options.truth_dir + "/truth.fits: no NOISECOA keyword (coadd noise) to set the threshold from; "
                "pass --threshold in the image's flux units");
  }
  ScoringSettings& scoring = setup.scoring;
  scoring.border = options.border;
  scoring.match_radius = options.match_radius > 0 ? options.match_radius : truth.target_fwhm;
  scoring.height = truth.image.size(0);
  scoring.width = truth.image.size(1);
  const double peak = truth.target_psf.max().item<double>();
  scoring.photometry_flux = options.photometry_flux > 0 ? options.photometry_flux : 20 * settings.threshold / peak;
  setup.softening = truth.coadd_noise > 0 ? truth.coadd_noise : settings.threshold;
  setup.sweep_unit = truth.coadd_noise > 0 ? truth.coadd_noise : settings.threshold / options.threshold_sigma;
  for (double factor : options.sweep) setup.sweep.push_back(factor * setup.sweep_unit);
  std::sort(setup.sweep.begin(), setup.sweep.end());
  return setup;
}

/// The truth sources the noiseless truth image shows at `threshold` with the same setup.
std::vector<bool> detectable_at(const Setup& setup, double threshold, const std::string& name) {
  io::SourceExtractorSettings settings = setup.detection;
  settings.threshold = threshold;
  const auto found = io::extract_sources(setup.truth_fits, "", settings, setup.work, name);
  const std::vector<int> match = match_sources(setup.truth.catalog, found, setup.scoring.match_radius);
  std::vector<bool> detectable(match.size());
  for (std::size_t i = 0; i < match.size(); ++i) detectable[i] = match[i] >= 0;
  return detectable;
}

/// Scores the k-th image: detections, photometry and metrics at the threshold, and the sweep. The
/// image as scored goes to `shown` when it is not null.
Evaluated evaluate_image(const EvaluateOptions& options, const Setup& setup, const std::string& path, std::size_t k,
                         io::Image* shown) {
  Evaluated e;
  e.path = path;
  const torch::Tensor image = prepared_image(options, setup.truth, e);
  if (shown != nullptr) *shown = to_image(image);
  e.label = label_for(e);
  const std::string stem = "image_" + std::to_string(k);
  const std::string fits = write_single_hdu(setup.work + "/" + stem + ".fits", image);
  const auto detections = io::extract_sources(fits, "", setup.detection, setup.work, stem);
  const auto on_truth = io::extract_sources(fits, setup.truth_fits, setup.detection, setup.work, stem + "_on_truth");
  e.scores = score_detections(setup.truth.catalog, setup.detectable, detections, on_truth, setup.scoring);
  e.metrics = image_metrics(image, setup.truth.image, setup.softening, options.border);
  for (std::size_t s = 0; s < setup.sweep.size(); ++s) {
    io::SourceExtractorSettings settings = setup.detection;
    settings.threshold = setup.sweep[s];
    const auto found = io::extract_sources(fits, "", settings, setup.work, stem + "_sweep_" + std::to_string(s));
    SweepPoint point = count_detections(setup.truth.catalog, setup.sweep_detectable, found, setup.scoring);
    point.threshold = setup.sweep[s];
    e.sweep.push_back(point);
  }
  spdlog::info("{}: {} detections, completeness {:.3f}, false fraction {:.3f}", e.path, e.scores.detections,
               e.scores.completeness, e.scores.false_fraction);
  return e;
}

/// The image whose false-detection fraction the others are read at: --purity-reference, else the
/// first of --compare, else the first image.
std::size_t purity_reference(const EvaluateOptions& options, const std::vector<std::string>& paths) {
  const std::string wanted = !options.purity_reference.empty() ? options.purity_reference
                             : !options.compare.empty()         ? options.compare.front()
                                                                : paths.front();
  for (std::size_t k = 0; k < paths.size(); ++k) {
    if (paths[k] == wanted) return k;
  }
  throw Error("--purity-reference: " + wanted + " is not one of the images evaluated");
}

void print_sweep(const std::vector<Evaluated>& all, const Setup& setup, const Evaluated& reference) {
  if (setup.sweep.empty()) return;
  const int first = 34, column = 17;
  std::printf("threshold sweep: completeness (of the %d sources detectable at the lowest threshold) / false fraction\n",
              all.front().sweep.front().detectable);
  for (std::size_t s = 0; s < setup.sweep.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "  %5.2f x noise (%.4g)", setup.sweep[s] / setup.sweep_unit, setup.sweep[s]);
    std::printf("%-*s", first, name);
    for (const auto& e : all) {
      std::printf("%*s", column, (fixed(e.sweep[s].completeness(), 3) + "/" + fixed(e.sweep[s].false_fraction(), 3)).c_str());
    }
    std::printf("\n");
  }
  char name[96];
  std::snprintf(name, sizeof(name), "completeness at %.3f false (%s)", reference.scores.false_fraction,
                reference.label.c_str());
  std::printf("%-*s", first, name);
  for (const auto& e : all) std::printf("%*s", column, fixed(e.at_reference_purity, 3).c_str());
  std::printf("\n");
}

}  // namespace

Command add_evaluate_command(CLI::App& app) {
  auto options = std::make_shared<EvaluateOptions>();
  EvaluateOptions& o = *options;
  CLI::App* command = app.add_subcommand(
      "evaluate", "score images against a simulated stack's truth: detections (SExtractor), photometry, image metrics");
  command->add_option("images", o.results, "FITS images to score, side by side")->required();
  command->add_option("--compare", o.compare, "more images for the same table (e.g. coadd.fits rl.fits)");
  command->add_option("--truth", o.truth_dir, "folder with truth.fits and truth_catalog.csv")->required();
  command->add_option("--hdu", o.hdu, "EXTNAME of the HDU to score (default: first image)");
  add_choice(command, "--reconvolve", o.reconvolve, "auto (latent images), yes or no: convolve with the target PSF first");
  add_number(command, "--threshold", o.threshold, "absolute detection threshold (0: --threshold-sigma x coadd noise)",
             Range{0, 1e30});
  add_number(command, "--threshold-sigma", o.threshold_sigma,
             "threshold in units of the coadd's noise (truth.fits NOISECOA)", Range{0, 1e6, true});
  add_number(command, "--min-area", o.min_area, "SExtractor DETECT_MINAREA (pixels)", Range{1, 1e6});
  add_number(command, "--border", o.border, "pixels at the edges left out of every score", Range{0, 1e6});
  add_number(command, "--match-radius", o.match_radius, "pixels (0: the target FWHM)", Range{0, 1e4});
  add_number(command, "--aperture", o.aperture, "photometry aperture diameter, pixels (0: 4 x the target FWHM)",
             Range{0, 1e4});
  add_number(command, "--photometry-flux", o.photometry_flux, "photometry of matched sources brighter than this",
             Range{0, 1e30});
  add_number(command, "--sweep", o.sweep,
             "thresholds of the sweep, in units of the coadd noise (Note [threshold sweep])", Range{0, 1e6, true})
      ->delimiter(',');
  command->add_flag_callback("--no-sweep", [options] { options->sweep.clear(); }, "detect at the one threshold only");
  command->add_option("--purity-reference", o.purity_reference,
                      "the image whose false-detection fraction the others' completeness is read at (default: the "
                      "first of --compare, else the first image)");
  command->add_option("--json", o.json, "also write one JSON object per image to this file");
  command->add_option("--preview", o.preview,
                      "also write a PNG: the noiseless truth, then every image as scored (latent images at the target "
                      "PSF), left to right on one asinh stretch");
  command->add_flag("--overwrite", o.overwrite, "replace an existing --json or --preview file");
  command->add_option("--sextractor", o.sextractor, "SExtractor executable (default: source-extractor or sex on PATH)");
  command->add_option("--keep", o.keep_dir, "keep SExtractor's images, configuration and catalogues in this folder");
  return {command, [options](const mpi::MpiEnvironment& env) { return env.rank() == 0 ? run_evaluate(*options) : 0; }};
}

int run_evaluate(const EvaluateOptions& options) {
  std::vector<std::string> paths = options.results;
  paths.insert(paths.end(), options.compare.begin(), options.compare.end());
  if (paths.empty()) throw Error("evaluate: name at least one image");
  for (const auto& p : paths) {
    if (!fs::exists(p)) throw Error(p + ": no such file");
  }
  const std::size_t reference = purity_reference(options, paths);
  std::vector<std::string> inputs = paths;
  for (const char* name : {"truth.fits", "truth_catalog.csv"}) inputs.push_back((fs::path(options.truth_dir) / name).string());
  for (const std::string* output : {&options.json, &options.preview}) {
    if (!output->empty()) io::check_output_path(*output, options.overwrite, inputs);
  }
  if (!options.json.empty() && options.json == options.preview)
    throw Error("--json and --preview: both name " + options.json);
  Setup setup = make_setup(options);
  setup.work = make_work_dir(options.keep_dir);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (!dir.empty()) io::remove_tree(dir);
    }
  } cleanup{options.keep_dir.empty() ? setup.work : ""};

  // What a perfect restoration would detect: the same setup on the noiseless truth image.
  setup.truth_fits = write_single_hdu(setup.work + "/truth.fits", setup.truth.image);
  setup.detectable = detectable_at(setup, setup.detection.threshold, "truth");
  if (!setup.sweep.empty()) setup.sweep_detectable = detectable_at(setup, setup.sweep.front(), "truth_sweep");

  std::vector<Evaluated> all;
  // The preview's panels: the noiseless truth, then each image as it was scored.
  std::vector<io::Image> panels;
  if (!options.preview.empty()) panels.push_back(to_image(setup.truth.image));
  for (std::size_t k = 0; k < paths.size(); ++k) {
    io::Image shown;
    all.push_back(evaluate_image(options, setup, paths[k], k, options.preview.empty() ? nullptr : &shown));
    if (!options.preview.empty()) panels.push_back(std::move(shown));
  }
  for (Evaluated& e : all) {
    if (!e.sweep.empty()) e.at_reference_purity = completeness_at_false_fraction(e.sweep, all[reference].scores.false_fraction);
  }
  const io::SourceExtractorSettings& settings = setup.detection;
  std::printf("truth %s: %d sources inside a %d px border, %d detectable in the noiseless truth image\n",
              options.truth_dir.c_str(), all.front().scores.truth_sources, options.border, all.front().scores.detectable);
  std::printf("SExtractor: absolute threshold %.4g (%s), %d px minimum area, Gaussian filter FWHM %.2f px, "
              "aperture %.1f px, match radius %.1f px, photometry of sources brighter than %.4g\n",
              settings.threshold,
              options.threshold > 0 ? "--threshold" : (fixed(options.threshold_sigma, 2) + " x coadd noise " +
                                                       fixed(setup.truth.coadd_noise, 4)).c_str(),
              settings.min_area, settings.filter_fwhm, settings.aperture_diameter, setup.scoring.match_radius,
              setup.scoring.photometry_flux);
  print_table(all, setup.truth);
  print_sweep(all, setup, all[reference]);
  if (!options.json.empty()) write_json(options.json, all, settings.threshold, all[reference]);
  if (!options.preview.empty()) {
    // One stretch for every panel: sky at 0 (the inputs are sky-subtracted), softened at twice the
    // coadd's noise, topped by the truth's brightest pixels, so that the panels compare pixel for pixel.
    io::write_preview_png(options.preview, panels, io::stretch_for_noise(setup.sweep_unit, panels.front()),
                          options.overwrite);
    std::string order = "truth";
    for (const Evaluated& e : all) order += " | " + e.label;
    spdlog::info("wrote {} (left to right: {})", options.preview, order);
  }
  return kExitDone;
}

}  // namespace astroclear::jobs
