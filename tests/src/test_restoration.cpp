// Restoration quality on a simulated stack: closer to truth and sharper than the coadd.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "io/fits_file.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/tensor_image.hpp"
#include "eval/coadd.hpp"
#include "src/psf_decoder.hpp"
#include "src/target_resolution.hpp"
#include "src/trainer.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

struct Star {
  double x, y, flux;
};

std::vector<Star> read_stars(const std::string& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::vector<Star> stars;
  std::vector<Star> all;
  while (std::getline(in, line)) {
    std::stringstream s(line);
    std::string type, field;
    std::getline(s, type, ',');
    std::vector<double> v;
    while (std::getline(s, field, ',')) v.push_back(std::stod(field));
    all.push_back({v[0], v[1], v[2]});
    if (type == "star") stars.push_back({v[0], v[1], v[2]});
  }
  // Bright enough to measure, faint enough never to saturate, nothing bright within 10 px, inside.
  std::vector<Star> chosen;
  for (const Star& s : stars) {
    bool isolated = true;
    for (const Star& o : all) {
      const double d = std::hypot(o.x - s.x, o.y - s.y);
      if (d > 0.01 && d < 10 && o.flux > 0.05 * s.flux) isolated = false;
    }
    if (s.flux > 3e3 && s.flux < 3e5 && isolated && s.x > 12 && s.y > 12 && s.x < 116 && s.y < 116) {
      chosen.push_back(s);
    }
  }
  return chosen;
}

/// FWHM from the area above half the peak near (x, y): 2 sqrt(A / pi).
double fwhm_at(const torch::Tensor& image, const Star& s) {
  const int cx = static_cast<int>(std::lround(s.x)), cy = static_cast<int>(std::lround(s.y));
  torch::Tensor stamp = image.narrow(0, cy - 10, 21).narrow(1, cx - 10, 21);
  const double peak = stamp.narrow(0, 8, 5).narrow(1, 8, 5).max().item<double>();
  const double area = (stamp > 0.5 * peak).sum().item<double>();
  return 2.0 * std::sqrt(area / M_PI);
}

TEST(Restoration, SharperAndCloserToTruthThanTheCoadd) {
  testing::TempDir dir;
  testing::simulate_into(dir.path().string(), 16, 128, 128, 2024);
  mpi::LocalCommunicator comm;
  torch::set_num_threads(2);
  jobs::LoadedStack loaded = jobs::load_stack(dir / "stack.toml", comm);
  loaded.stack.normalise(comm);
  TrainConfig config;
  config.iterations = 300;
  Trainer trainer(config, loaded.stack, comm, torch::kCPU);
  trainer.train();
  torch::Tensor latent = trainer.latent();
  torch::Tensor coadd = inverse_variance_coadd(loaded.stack, comm);
  EXPECT_GE(latent.min().item<float>(), 0.0f);

  io::FitsFile truth_file = io::FitsFile::open(dir / "truth.fits");
  torch::Tensor truth = jobs::to_tensor(truth_file.read_image());
  ASSERT_TRUE(truth_file.move_to("TARGET_PSF"));
  torch::Tensor target_psf = jobs::to_tensor(truth_file.read_image());
  torch::Tensor restored = fft_convolve(latent, target_psf.unsqueeze(0))[0];

  // Pixels that no exposure saw (the detector edge, masked everywhere) are NaN in the coadd: skip them.
  torch::Tensor seen = torch::isfinite(coadd);
  ASSERT_GT(seen.sum().item<double>(), 0.9 * seen.numel());
  auto relative_error = [&](const torch::Tensor& x) {
    return ((x - truth).masked_select(seen).norm() / truth.masked_select(seen).norm()).item<double>();
  };
  const double restored_error = relative_error(restored), coadd_error = relative_error(coadd);
  std::printf("relative L2 error vs truth: astroclear %.4f, coadd %.4f (ratio %.3f)\n", restored_error, coadd_error,
              restored_error / coadd_error);
  EXPECT_LT(restored_error, 0.7 * coadd_error);

  std::vector<Star> stars = read_stars(dir / "truth_catalog.csv");
  ASSERT_GE(stars.size(), 1u) << "the seed must give at least one measurable star";
  double fwhm_restored = 0, fwhm_coadd = 0;
  for (const Star& s : stars) {
    fwhm_restored += fwhm_at(restored, s) / stars.size();
    fwhm_coadd += fwhm_at(coadd, s) / stars.size();
  }
  std::printf("mean FWHM of %zu stars: astroclear %.2f px, coadd %.2f px, target %.2f px\n", stars.size(),
              fwhm_restored, fwhm_coadd, 2.5);
  EXPECT_LT(fwhm_restored, fwhm_coadd);
  EXPECT_LT(fwhm_restored, 0.8 * fwhm_coadd);
}

// Note [target resolution]: for Gaussians the kernel is known in closed form, a Gaussian of FWHM
// sqrt(psf^2 - target^2); the Richardson-Lucy iterations must find it, non-negative with sum 1.
TEST(TargetResolution, TheKernelOfAGaussianPsfToANarrowerGaussianIsAGaussian) {
  const torch::Tensor psf = gaussian_kernel(31, 5.0), target = gaussian_kernel(31, 2.5);
  double residual = 1;
  const torch::Tensor h = kernel_to_target(psf, target, residual);
  EXPECT_LT(residual, 0.02);
  EXPECT_NEAR(h.sum().item<double>(), 1.0, 1e-9);
  EXPECT_GE(h.min().item<double>(), 0.0);
  const torch::Tensor expected = gaussian_kernel(31, std::sqrt(5.0 * 5.0 - 2.5 * 2.5));
  EXPECT_LT(((h - expected).norm() / expected.norm()).item<double>(), 0.1);
}

}  // namespace
}  // namespace astroclear
