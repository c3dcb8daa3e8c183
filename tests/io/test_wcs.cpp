// Every output keeps the first exposure's full WCS, distortion included: pixel to sky through WCSLIB
// (the library astropy's WCS wraps) gives the same position on the input and on the output.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "io/fits_file.hpp"
#include "io/fits_output.hpp"
#include "io/wcs.hpp"
#include "tests/test_support.hpp"

#ifndef ASTROCLEAR_EXE
#error "ASTROCLEAR_EXE must name the astroclear executable"
#endif
#ifndef ASTROCLEAR_TEST_DATA
#error "ASTROCLEAR_TEST_DATA must name tests/data"
#endif

namespace astroclear {
namespace {

namespace fs = std::filesystem;
using testing::MefPlanes;
using testing::read_planes;
using testing::TempDir;

/// Sky positions (RA, Dec in degrees) of a grid of pixels, through WCSLIB's reading of `header`.
std::vector<double> sky_of(const std::string& header, int height, int width) {
  const std::optional<io::Wcs> wcs = io::Wcs::from_header(header, "the header");
  EXPECT_TRUE(wcs.has_value()) << "no WCS in the header";
  if (!wcs) return {};
  std::vector<double> world;
  for (int y = 1; y <= height; y += 7) {
    for (int x = 1; x <= width; x += 7) {
      const std::array<double, 2> sky = wcs->pixel_to_sky(x, y);
      world.insert(world.end(), sky.begin(), sky.end());
    }
  }
  return world;
}

/// Rewrites exposure `t` of the stack in `dir` with `wcs` in place of the simulated WCS.
void give_exposure(const std::string& dir, int t, const std::vector<io::HeaderCard>& wcs) {
  const std::string path = dir + "/exp_00" + std::to_string(t) + ".fits";
  const MefPlanes planes = read_planes(path);
  fs::remove(path);
  io::FitsFile out = io::FitsFile::create(path);
  out.write_empty_primary();
  out.write_key("FSCALE", 1.0);
  out.write_image(planes.image, "IMAGE");
  for (const io::HeaderCard& card : wcs) out.write_card(card);
  testing::write_mask_with_plane_names(out, planes);
  out.write_image(planes.variance, "VARIANCE");
  out.close();
}

void give_every_exposure(const std::string& dir, int exposures, const std::vector<io::HeaderCard>& wcs) {
  for (int t = 0; t < exposures; ++t) give_exposure(dir, t, wcs);
}

/// The WCS cards of the real DECam exposure in tests/data (TPV).
std::vector<io::HeaderCard> decam_tpv_wcs() {
  io::FitsFile real = io::FitsFile::open_image(std::string(ASTROCLEAR_TEST_DATA) +
                                                   "/legacypipe_testcase6/c4d_171113_061941_ooi_r_ls9.S4.fits", "");
  return io::wcs_cards(real.read_cards());
}

/// The largest distance in degrees between two lists of sky positions.
double largest_offset(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i + 1 < a.size(); i += 2) {
    const double dec = a[i + 1] * M_PI / 180;
    double dra = std::fmod(std::abs(a[i] - b[i]), 360.0);
    dra = std::min(dra, 360 - dra);
    worst = std::max(worst, std::hypot(dra * std::cos(dec), a[i + 1] - b[i + 1]));
  }
  return worst;
}

class OutputWcs : public ::testing::Test {
 protected:
  void SetUp() override { testing::simulate_into(dir_.path().string(), 3, 48, 48, 5); }

  /// Writes `wcs` into every exposure, runs `coadd` and `train`, and holds each output's pixel-to-sky
  /// mapping equal to the first exposure's within 1e-8 degrees.
  void expect_outputs_keep(const std::vector<io::HeaderCard>& wcs) {
    give_every_exposure(dir_.path().string(), 3, wcs);
    io::FitsFile in = io::FitsFile::open_image(dir_ / "exp_000.fits", "IMAGE");
    const std::vector<double> expected = sky_of(in.header_text(), 48, 48);
    ASSERT_FALSE(expected.empty());
    const std::string stack = dir_ / "stack.toml";
    for (const std::string command : {" coadd -m " + stack + " -o " + (dir_ / "coadd.fits"),
                                      " train -n 2 --threads 1 -m " + stack + " -o " + (dir_ / "train.fits")}) {
      const testing::CommandResult r = testing::run_command(std::string(ASTROCLEAR_EXE) + command);
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    for (const char* name : {"coadd.fits", "train.fits"}) {
      io::FitsFile out = io::FitsFile::open_image(dir_ / name, "");
      const std::vector<double> got = sky_of(out.header_text(), 48, 48);
      ASSERT_EQ(got.size(), expected.size()) << name;
      EXPECT_LT(largest_offset(expected, got), 1e-8) << name << ": pixel to sky differs from the input's";
    }
  }

  TempDir dir_;
};

TEST_F(OutputWcs, ARealDecamTpvHeaderReachesEveryOutput) {
  const std::vector<io::HeaderCard> wcs = decam_tpv_wcs();
  const auto pv = std::count_if(wcs.begin(), wcs.end(), [](const io::HeaderCard& c) { return c.key.rfind("PV", 0) == 0; });
  EXPECT_EQ(pv, 22) << "PV1_0..PV1_10 and PV2_0..PV2_10";
  // Without its PV terms the same header puts the pixels elsewhere: the test can tell.
  std::vector<io::HeaderCard> without_pv;
  std::copy_if(wcs.begin(), wcs.end(), std::back_inserter(without_pv),
               [](const io::HeaderCard& c) { return c.key.rfind("PV", 0) != 0; });
  give_every_exposure(dir_.path().string(), 3, without_pv);
  const std::vector<double> plain =
      sky_of(io::FitsFile::open_image(dir_ / "exp_000.fits", "IMAGE").header_text(), 48, 48);
  give_every_exposure(dir_.path().string(), 3, wcs);
  const std::vector<double> tpv =
      sky_of(io::FitsFile::open_image(dir_ / "exp_000.fits", "IMAGE").header_text(), 48, 48);
  EXPECT_GT(largest_offset(plain, tpv), 1e-5) << "the PV terms should move the sky positions";
  expect_outputs_keep(wcs);
}

TEST_F(OutputWcs, ASipHeaderReachesEveryOutput) {
  expect_outputs_keep({{"CTYPE1", "'RA---TAN-SIP'", ""}, {"CTYPE2", "'DEC--TAN-SIP'", ""},
                       {"CRVAL1", "150.1163", ""},      {"CRVAL2", "2.2056", ""},
                       {"CRPIX1", "24.5", ""},          {"CRPIX2", "24.5", ""},
                       {"CD1_1", "-4.66666667E-05", ""}, {"CD1_2", "1.2E-07", ""},
                       {"CD2_1", "-0.9E-07", ""},        {"CD2_2", "4.66666667E-05", ""},
                       {"A_ORDER", "2", ""},            {"A_0_2", "2.1E-05", ""},
                       {"A_1_1", "-1.3E-05", ""},       {"A_2_0", "3.2E-05", ""},
                       {"B_ORDER", "2", ""},            {"B_0_2", "-1.7E-05", ""},
                       {"B_1_1", "2.4E-05", ""},        {"B_2_0", "0.8E-05", ""}});
}

// Note [co-registration]: an exposure whose WCS puts the image half a pixel away from the first
// exposure's is refused with its offset, unless the manifest allows that much.
TEST_F(OutputWcs, AnExposureOffTheFirstOnesGridIsRefusedWithItsOffset) {
  std::vector<io::HeaderCard> wcs = decam_tpv_wcs();
  give_every_exposure(dir_.path().string(), 3, wcs);
  for (io::HeaderCard& card : wcs) {
    if (card.key == "CRPIX1") card.value = std::to_string(std::stod(card.value) + 0.5);
  }
  give_exposure(dir_.path().string(), 2, wcs);
  const std::string coadd = std::string(ASTROCLEAR_EXE) + " coadd -m " + (dir_ / "stack.toml") + " -o " +
                            (dir_ / "coadd.fits");
  testing::CommandResult r = testing::run_command(coadd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("exp_002.fits[IMAGE]: its WCS puts the image 0.5 px"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("from where " + (dir_ / "exp_000.fits") + "[IMAGE]'s WCS puts it"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "coadd.fits"));

  std::string manifest;
  {
    std::ifstream in(dir_ / "stack.toml");
    manifest.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  manifest.insert(manifest.find("[stack]\n") + 8, "registration_tolerance_px = 0.6\n");
  std::ofstream(dir_ / "stack.toml", std::ios::trunc) << manifest;
  r = testing::run_command(coadd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace astroclear
