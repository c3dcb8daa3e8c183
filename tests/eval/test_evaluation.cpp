// Science validation pieces: the simulator, matching and scores, catalogues, SExtractor, image metrics,
// Richardson-Lucy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "io/catalogs.hpp"
#include "io/fits_file.hpp"
#include "io/source_extractor.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/tensor_image.hpp"
#include "common/error.hpp"
#include "eval/coadd.hpp"
#include "eval/detection_scores.hpp"
#include "eval/image_metrics.hpp"
#include "eval/richardson_lucy.hpp"
#include "eval/simulator.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

io::TruthEntry source(double x, double y, double flux, const std::string& type = "galaxy") {
  io::TruthEntry e;
  e.type = type;
  e.x = x;
  e.y = y;
  e.flux = flux;
  return e;
}

io::Detection detection(double x, double y, double flux_aper = 0, double fwhm = 0, int flags = 0) {
  io::Detection d;
  d.x = x;
  d.y = y;
  d.flux_aper = flux_aper;
  d.fwhm = fwhm;
  d.flags = flags;
  return d;
}

TEST(Matching, OneToOneClosestPairsFirst) {
  const std::vector<io::TruthEntry> truth{source(10, 10, 1), source(12, 10, 1), source(50, 50, 1)};
  const std::vector<io::Detection> found{detection(11.2, 10), detection(30, 30), detection(52, 51)};
  const std::vector<int> match = match_sources(truth, found, 2.5);
  // (12, 10) is 0.8 px from the first detection, (10, 10) 1.2 px: the closer pair wins, once.
  EXPECT_EQ(match, (std::vector<int>{-1, 0, 2}));
  EXPECT_EQ(match_sources(truth, found, 2.0), (std::vector<int>{-1, 0, -1}));  // (52, 51) is 2.24 px away
}

TEST(Scores, CompletenessFalseDetectionsPhotometryAndStars) {
  ScoringSettings s;
  s.height = s.width = 100;
  s.border = 5;
  s.match_radius = 2;
  s.photometry_flux = 50;
  const std::vector<io::TruthEntry> truth{source(20, 20, 1000, "star"), source(40, 40, 100), source(60, 60, 60),
                                          source(80, 80, 10), source(2, 50, 1000) /* in the border */};
  const std::vector<bool> detectable{true, true, true, false, true};
  const std::vector<io::Detection> found{detection(20.5, 20, 1030, 2.6), detection(40, 41, 90, 3.0),
                                         detection(70, 20, 40, 2.0), detection(80.5, 80.5, 12, 2.0)};
  const std::vector<io::Detection> on_truth{detection(20.5, 20, 1000), detection(40, 41, 100),
                                            detection(70, 20, 0), detection(80.5, 80.5, 10)};
  const DetectionScores scores = score_detections(truth, detectable, found, on_truth, s);
  EXPECT_EQ(scores.truth_sources, 4);
  EXPECT_EQ(scores.detectable, 3);
  EXPECT_EQ(scores.found, 2);  // the faint (80, 80) one is found but was not detectable
  EXPECT_DOUBLE_EQ(scores.completeness, 2.0 / 3.0);
  EXPECT_EQ(scores.detections, 4);
  EXPECT_EQ(scores.false_detections, 1);  // (70, 20)
  EXPECT_DOUBLE_EQ(scores.false_fraction, 0.25);
  EXPECT_EQ(scores.photometry_sources, 2);  // flux >= 50 and matched: +3% and -10%
  EXPECT_NEAR(scores.flux_bias, -0.035, 1e-12);
  EXPECT_NEAR(scores.flux_scatter, 1.4826 * 0.065, 1e-12);
  EXPECT_EQ(scores.isolated_stars, 1);
  EXPECT_DOUBLE_EQ(scores.star_fwhm, 2.6);
  EXPECT_DOUBLE_EQ(magnitude(1000), 19.5);
}

TEST(Scores, FiftyPercentMagnitudeIsInterpolated) {
  ScoringSettings s;
  s.height = s.width = 1000;
  s.border = 0;
  std::vector<io::TruthEntry> truth;
  std::vector<io::Detection> found;
  // Four sources per magnitude bin, 0.5 mag wide: 100%, 75%, 25% found from bright to faint.
  const double mags[] = {20.25, 20.75, 21.25};
  const int found_per_bin[] = {4, 3, 1};
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 4; ++i) {
      const double x = 100 * b + 20 * i + 10;
      truth.push_back(source(x, 10, std::pow(10.0, (27 - mags[b]) / 2.5)));
      if (i < found_per_bin[b]) found.push_back(detection(x, 10));
    }
  }
  const DetectionScores scores =
      score_detections(truth, std::vector<bool>(truth.size(), true), found, found, s);
  ASSERT_EQ(scores.bins.size(), 3u);
  EXPECT_DOUBLE_EQ(scores.bins[1].completeness(), 0.75);
  EXPECT_NEAR(scores.mag50, 20.75 + 0.5 * (0.75 - 0.5) / (0.75 - 0.25), 1e-9);
}

TEST(Catalogs, TruthCatalogueErrorsNameFileLineAndField) {
  testing::TempDir dir;
  const std::string path = dir / "truth_catalog.csv";
  std::ofstream(path) << "type,x,y,flux,half_light_radius\nstar,1,2,300,0\ngalaxy,5,6,abc,1.5\n";
  try {
    io::read_truth_catalog(path);
    FAIL() << "a bad flux was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":3 field flux: 'abc' is not a number"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "type,x,y\nstar,1,2\n";
  EXPECT_THROW(io::read_truth_catalog(path), Error);
}

TEST(SourceExtractor, FindsSourcesWhereTheyAreWithTheirFlux) {
  testing::TempDir dir;
  // Three Gaussian sources (FWHM 3 px) on an empty 70 x 90 image; positions 0-indexed pixel centres.
  const std::vector<io::TruthEntry> truth{source(20.3, 15.0, 5000), source(60.0, 40.6, 2000), source(75.5, 55.2, 800)};
  torch::Tensor image = torch::zeros({70, 90}, torch::kFloat64);
  const double sigma = 3.0 / 2.3548;
  torch::Tensor yy = torch::arange(70, torch::kFloat64).view({-1, 1}), xx = torch::arange(90, torch::kFloat64).view({1, -1});
  for (const auto& t : truth) {
    image += t.flux / (2 * M_PI * sigma * sigma) *
             torch::exp(-((xx - t.x) * (xx - t.x) + (yy - t.y) * (yy - t.y)) / (2 * sigma * sigma));
  }
  io::FitsFile f = io::FitsFile::create(dir / "image.fits");
  f.write_image(jobs::to_image(image));
  f.close();
  io::SourceExtractorSettings settings;
  settings.threshold = 1.0;
  settings.aperture_diameter = 16;
  const auto found = io::extract_sources(dir / "image.fits", "", settings, dir.path().string(), "image");
  ASSERT_EQ(found.size(), 3u);
  const std::vector<int> match = match_sources(truth, found, 0.1);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    ASSERT_GE(match[i], 0) << "source " << i << " not found within 0.1 px";
    const io::Detection& d = found[match[i]];
    EXPECT_NEAR(d.x, truth[i].x, 0.05);
    EXPECT_NEAR(d.y, truth[i].y, 0.05);
    EXPECT_NEAR(d.flux_aper / truth[i].flux, 1.0, 0.01);  // a 16 px aperture holds all of a 3 px Gaussian
    EXPECT_NEAR(d.fwhm, 3.0, 0.5);
  }
  EXPECT_THROW(io::find_source_extractor(dir / "no-such-program"), Error);
}

TEST(ImageMetrics, PerfectNoisyAndShiftedImages) {
  torch::manual_seed(5);
  const torch::Tensor truth = torch::rand({64, 64}) * 10;
  const ImageMetrics same = image_metrics(truth, truth, 1.0, 4);
  EXPECT_DOUBLE_EQ(same.relative_l2, 0.0);
  EXPECT_NEAR(same.ssim, 1.0, 1e-9);
  EXPECT_GT(same.psnr, 200);
  const ImageMetrics noisy = image_metrics(truth + torch::randn({64, 64}), truth, 1.0, 4);
  const ImageMetrics noisier = image_metrics(truth + 3 * torch::randn({64, 64}), truth, 1.0, 4);
  EXPECT_NEAR(noisy.relative_l2, 1.0 / std::sqrt(100.0 / 3), 0.02);  // |noise| / |U(0, 10)|
  EXPECT_LT(noisier.ssim, noisy.ssim);
  EXPECT_LT(noisier.psnr, noisy.psnr);
  EXPECT_THROW(image_metrics(truth, truth.narrow(0, 0, 32), 1.0, 4), Error);
}

TEST(RichardsonLucy, ApproachesTheTruthAndKeepsFluxAndSign) {
  testing::TempDir dir;
  testing::simulate_into(dir.path().string(), 8, 96, 96, 21);
  mpi::LocalCommunicator local;
  jobs::LoadedStack loaded = jobs::load_stack(dir / "stack.toml", local);
  const torch::Tensor coadd = torch::nan_to_num(inverse_variance_coadd(loaded.stack, local), 0.0);  // NaN: no good pixel
  loaded.stack.normalise(local);
  const PsfDecoder decoder(loaded.stack.psfs, 96, 96, PsfDecoder::Mode::kFft, torch::kCPU);
  io::FitsFile f = io::FitsFile::open(dir / "truth.fits");
  f.move_to_first_image();
  const torch::Tensor truth = jobs::to_tensor(f.read_image());
  f.move_to("TARGET_PSF");
  const torch::Tensor target = jobs::to_tensor(f.read_image()).unsqueeze(0);
  double previous = ((coadd - truth).norm() / truth.norm()).item<double>();
  std::printf("coadd relative L2 %.4f\n", previous);
  for (int iterations : {10, 100}) {
    RichardsonLucyConfig config;
    config.iterations = iterations;
    const torch::Tensor x = richardson_lucy(loaded.stack, decoder, config, local);
    const double error = ((fft_convolve(x, target)[0] - truth).norm() / truth.norm()).item<double>();
    std::printf("Richardson-Lucy %d iterations: relative L2 %.4f, total flux / coadd's %.4f / truth's %.4f\n",
                iterations, error, (x.sum() / coadd.sum()).item<double>(), (x.sum() / truth.sum()).item<double>());
    EXPECT_LT(error, 0.8 * previous);
    EXPECT_GE(x.min().item<double>(), 0.0);
    previous = error;
    if (iterations < 100) continue;
    // Non-negativity rectifies the sky noise into a faint positive background: a few percent.
    EXPECT_NEAR((x.sum() / truth.sum()).item<double>(), 1.0, 0.06);
  }
  RichardsonLucyConfig bad;
  bad.pedestal = 0;
  EXPECT_THROW(bad.validate(), Error);
}

TEST(Simulator, PsfsAreNormalisedAndOdd) {
  torch::Tensor p = moffat_psf(41, 5.0, 3.0, 0.9, 0.3);
  EXPECT_NEAR(p.sum().item<double>(), 1.0, 1e-5);
  EXPECT_EQ(p.size(0) % 2, 1);
  // Half maximum is reached at FWHM / 2 from the centre (circular case).
  torch::Tensor round = moffat_psf(41, 6.0, 3.0, 1.0, 0.0);
  const double peak = round[20][20].item<double>(), at_half = round[20][23].item<double>();
  EXPECT_NEAR(at_half / peak, 0.5, 0.06);
}

// Note [simulated errors]: the errors change the written PSFs, the CR flags and a constant in each
// image, and nothing else: the sky, the noise and the defects of a seed stay what they were.
TEST(Simulator, ErrorsOfRealDataLeaveTheSkyAndNoiseOfTheSeed) {
  SimulationConfig exact;
  exact.exposures = 4;
  exact.height = exact.width = 96;
  exact.seed = 21;
  SimulationConfig wrong = exact;
  wrong.psf_error = 0.04;
  wrong.unmasked_cr = 1.0;
  wrong.sky_residual = 0.5;
  const SimulatedStack a = simulate_stack(exact), b = simulate_stack(wrong);
  ASSERT_EQ(a.exposures.size(), b.exposures.size());
  EXPECT_TRUE(torch::equal(a.truth, b.truth));
  const std::int32_t cr = 1 << 3;  // mask_bit_names()[3] == "CR"
  ASSERT_EQ(mask_bit_names()[3], "CR");
  double fwhm_error = 0;
  for (std::size_t t = 0; t < a.exposures.size(); ++t) {
    const SimulatedExposure &e = a.exposures[t], &f = b.exposures[t];
    // The same noise and sources, plus one constant: the sky left in.
    EXPECT_NEAR((f.image - e.image - f.sky_residual).abs().max().item<double>(), 0.0, 1e-2);
    EXPECT_NE(f.sky_residual, 0.0);
    EXPECT_LT(std::abs(f.sky_residual), 5 * 0.5 * std::sqrt(f.sky + 25.0));
    EXPECT_TRUE(torch::equal(e.variance, f.variance));
    // Every cosmic ray unflagged, every other flag as it was.
    EXPECT_GT((e.mask.bitwise_and(cr) != 0).sum().item<int>(), 0);
    EXPECT_EQ((f.mask.bitwise_and(cr) != 0).sum().item<int>(), 0);
    EXPECT_TRUE(torch::equal(e.mask.bitwise_and(~cr), f.mask.bitwise_and(~cr)));
    EXPECT_GT(f.unmasked_cosmic_rays, 0);
    // The written PSF is a model with errors; the exact run writes the true one.
    EXPECT_EQ(e.model_fwhm_arcsec, e.fwhm_arcsec);
    EXPECT_EQ(f.fwhm_arcsec, e.fwhm_arcsec);
    EXPECT_FALSE(torch::allclose(e.psf, f.psf));
    EXPECT_NEAR(f.psf.sum().item<double>(), 1.0, 1e-5);
    fwhm_error = std::max(fwhm_error, std::abs(f.model_fwhm_arcsec / f.fwhm_arcsec - 1));
  }
  EXPECT_GT(fwhm_error, 0.0);
  EXPECT_LT(fwhm_error, 0.2);  // 5 sigma of a 4% error
  SimulationConfig bad = exact;
  bad.unmasked_cr = 1.5;
  EXPECT_THROW(simulate_stack(bad), Error);
}

}  // namespace
}  // namespace astroclear
