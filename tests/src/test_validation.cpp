// Held-out exposures: the held-out loss against a hand computation, the record and its stopping
// rule, and the choice of exposures to hold out.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "common/error.hpp"
#include "io/exposure_reader.hpp"
#include "jobs/stack_loader.hpp"
#include "src/validation.hpp"

namespace astroclear {
namespace {

/// Two held-out exposures of 9 x 11 px with 3 x 3 PSFs, a hand-made mask and noise levels.
LocalStack hand_made_held_out() {
  LocalStack s;
  s.exposure_ids = {2, 5};
  s.total_exposures = 2;
  torch::manual_seed(5);
  s.images = torch::randn({2, 9, 11}) * 3;
  s.sigmas = torch::rand({2, 9, 11}) + 0.5;
  s.good = (torch::rand({2, 9, 11}) > 0.2).to(torch::kFloat32);
  s.psfs = {torch::tensor({0.0, 0.1, 0.0, 0.1, 0.6, 0.1, 0.0, 0.1, 0.0}).view({3, 3}).to(torch::kFloat32),
            torch::full({3, 3}, 1.0 / 9)};
  s.good_pixels = s.good.sum().item<double>();
  return s;
}

/// The same loss written out: the PSF convolution by hand (zero padding), then the Huber function.
double loss_by_hand(const LocalStack& s, const torch::Tensor& x, double delta) {
  double sum = 0;
  const auto h = s.height(), w = s.width();
  for (std::int64_t t = 0; t < 2; ++t) {
    for (std::int64_t i = 0; i < h; ++i) {
      for (std::int64_t j = 0; j < w; ++j) {
        if (s.good[t][i][j].item<float>() < 0.5f) continue;
        double yhat = 0;
        for (int a = -1; a <= 1; ++a) {
          for (int b = -1; b <= 1; ++b) {
            if (i - a < 0 || i - a >= h || j - b < 0 || j - b >= w) continue;
            yhat += s.psfs[t][1 + a][1 + b].item<double>() * x[i - a][j - b].item<double>();
          }
        }
        const double r = std::abs((s.images[t][i][j].item<double>() - yhat) / s.sigmas[t][i][j].item<double>());
        sum += r <= delta ? 0.5 * r * r : delta * (r - 0.5 * delta);
      }
    }
  }
  return sum / s.good_pixels;
}

TEST(HeldOutLoss, EqualsTheHuberLossComputedByHand) {
  const LocalStack s = hand_made_held_out();
  const torch::Tensor x = torch::rand({9, 11}) * 4;
  mpi::LocalCommunicator comm;
  for (auto mode : {PsfDecoder::Mode::kDirect, PsfDecoder::Mode::kFft}) {
    const HeldOutLoss loss(s, 1.5, mode, torch::kCPU);
    EXPECT_NEAR(loss(x, comm), loss_by_hand(s, x, 1.5), 1e-5) << (mode == PsfDecoder::Mode::kFft ? "fft" : "direct");
    // Per exposure, the same sums, and chi^2 beside them.
    const auto fits = loss.per_exposure(x);
    ASSERT_EQ(fits.size(), 2u);
    EXPECT_NEAR((fits[0].huber_sum + fits[1].huber_sum) / s.good_pixels, loss_by_hand(s, x, 1.5), 1e-5);
    EXPECT_DOUBLE_EQ(fits[0].good_pixels + fits[1].good_pixels, s.good_pixels);
    EXPECT_GT(fits[0].chi2_sum, 2 * fits[0].huber_sum);  // Huber grows slower than r^2 / 2
  }
}

TEST(ValidationTrack, KeepsTheLowestAndStopsAfterThePatience) {
  ValidationConfig config;
  config.every = 10;
  config.patience = 20;
  ValidationTrack track(config);
  EXPECT_TRUE(track.due(0));
  EXPECT_FALSE(track.due(5));
  EXPECT_TRUE(track.due(5, /*last=*/true));
  int made = 0;
  const auto latent = [&](double v) {
    return [&made, v] {
      ++made;
      return torch::full({2, 2}, v);
    };
  };
  for (auto [it, loss] : {std::pair{0, 3.0}, {10, 2.0}, {20, 1.0}, {30, 1.5}}) track.record(it, loss, latent(it));
  EXPECT_EQ(made, 3) << "the image is made for a new lowest loss only";
  EXPECT_FALSE(track.due(30));
  EXPECT_EQ(track.best_iteration(), 20);
  EXPECT_FALSE(track.exhausted());
  track.record(40, 1.0, latent(40));  // equal is not lower
  EXPECT_TRUE(track.exhausted());
  EXPECT_EQ(track.best_latent()[0][0].item<double>(), 20);
  EXPECT_NE(track.stop_reason(40, 100).find("iteration 20 kept"), std::string::npos) << track.stop_reason(40, 100);

  ValidationTrack resumed(config);
  resumed.restore(track.iterations(), track.losses(), track.best_latent());
  EXPECT_EQ(resumed.best_iteration(), 20);
  EXPECT_TRUE(resumed.exhausted());

  config.stop = StopRule::kLast;
  ValidationTrack last(config);
  last.record(0, 2.0, latent(0));
  last.record(10, 5.0, latent(10));
  EXPECT_FALSE(last.best_latent().defined()) << "--stop last keeps no image";
  EXPECT_FALSE(last.exhausted());
}

TEST(ValidationConfig, HoldsOutATenthAndRefusesToHoldOutEverything) {
  ValidationConfig config;
  EXPECT_EQ(config.held_out_count(33), 3);
  EXPECT_EQ(config.held_out_count(5), 1);
  EXPECT_EQ(config.held_out_count(2), 0);
  config.exposures = 4;
  EXPECT_NO_THROW(config.validate(5));
  try {
    config.validate(4);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--validation-exposures: 4 held out of a stack of 4"), std::string::npos)
        << e.what();
  }
  config.exposures = 1;
  config.patience = 0;
  EXPECT_THROW(config.validate(5), Error);
}

TEST(HeldOutExposures, AreSpreadOverTheSeeing) {
  // FWHMs 1..10 in scrambled order: three held out come from the bottom, middle and top thirds.
  const std::vector<double> fwhm{5, 9, 1, 7, 3, 10, 2, 8, 4, 6};
  const std::vector<int> chosen = jobs::spread_over_seeing(fwhm, 3);
  ASSERT_EQ(chosen.size(), 3u);
  std::vector<double> seeing;
  for (int t : chosen) seeing.push_back(fwhm[t]);
  std::sort(seeing.begin(), seeing.end());
  EXPECT_EQ(seeing, (std::vector<double>{2, 6, 9}));
  EXPECT_TRUE(std::is_sorted(chosen.begin(), chosen.end()));
  EXPECT_TRUE(jobs::spread_over_seeing(fwhm, 0).empty());
}

TEST(HeldOutExposures, PsfFwhmFromTheHalfMaximumArea) {
  // A Gaussian of FWHM 6 px on a 41 px stamp.
  io::Image psf(41, 41);
  const double sigma = 6 / (2 * std::sqrt(2 * std::log(2.0)));
  for (int y = 0; y < 41; ++y) {
    for (int x = 0; x < 41; ++x) psf.pixels[y * 41 + x] = static_cast<float>(std::exp(-((x - 20) * (x - 20) + (y - 20) * (y - 20)) / (2 * sigma * sigma)));
  }
  EXPECT_NEAR(io::psf_fwhm(psf), 6.0, 0.3);
}

}  // namespace
}  // namespace astroclear
