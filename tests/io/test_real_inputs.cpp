// Survey inputs as pipelines write them: PSFEx models, PSF cubes, code-valued quality masks, mask
// planes under other names, and flux scales with an explicit convention. The PSFEx and mask tests
// read real DECam files (tests/data/legacypipe_testcase6/, BSD-3).
#include <gtest/gtest.h>

#include <fitsio.h>

#include <algorithm>
#include <array>
#include <functional>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/exposure_reader.hpp"
#include "io/fits_file.hpp"
#include "io/manifest.hpp"
#include "tests/test_support.hpp"

#ifndef ASTROCLEAR_TEST_DATA
#error "ASTROCLEAR_TEST_DATA must name tests/data"
#endif

namespace astroclear {
namespace {

using testing::TempDir;

const std::string kData = std::string(ASTROCLEAR_TEST_DATA) + "/legacypipe_testcase6/";
const std::string kModel = kData + "c4d_171113_061941_ooi_r_ls9-psfex.fits";  // CCD S4, 101 x 100 px

io::ExposureSpec psf_only(const std::string& psf) {
  io::ExposureSpec spec;
  spec.psf = psf;
  return spec;
}

// Note [PSFEx models]: the values below come from an independent evaluation of the same model
// (numpy: the basis images weighted by 1, u, u^2, v, uv, v^2, negative pixels set to 0, sum 1).
TEST(PsfexModel, RealDecamModelIsEvaluatedAtTheExposureCentre) {
  std::vector<std::string> warnings;
  const io::Image psf = io::read_psf(psf_only(kModel), 100, 101, warnings);
  ASSERT_EQ(psf.height, 63);
  ASSERT_EQ(psf.width, 63);
  EXPECT_NEAR(psf.pixels[31 * 63 + 31], 0.0377041, 2e-6);  // the centre, at (51, 50.5)
  EXPECT_NEAR(psf.pixels[31 * 63 + 35], 0.0057036, 2e-6);
  EXPECT_NEAR(psf.pixels[28 * 63 + 31], 0.0096338, 2e-6);
  double sum = 0;
  for (float v : psf.pixels) {
    EXPECT_GE(v, 0.0f);
    sum += v;
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  // PSFEx's PSF_FWHM for this model is 5.16 px, from a fit; the half-maximum area gives 4.51
  EXPECT_NEAR(io::psf_fwhm(psf), 5.16, 0.15 * 5.16);
  ASSERT_FALSE(warnings.empty());              // its negative wings, clipped
  EXPECT_NE(warnings.front().find("negative PSF pixels"), std::string::npos) << warnings.front();
}

// The Mosaic3 layout: no POLNAXIS or PSFAXIS1-2 in the header, the stamp size from the TDIM.
TEST(PsfexModel, MosaicLayoutTakesTheStampFromTheColumnDimensions) {
  std::vector<std::string> warnings;
  const io::Image psf = io::read_psf(
      psf_only(std::string(ASTROCLEAR_TEST_DATA) + "/legacypipe_mzlsbass3/decam-00074931-ccd3.fits"), 103, 103,
      warnings);
  ASSERT_EQ(psf.height, 63);
  EXPECT_NEAR(psf.pixels[31 * 63 + 31], 0.0554359, 2e-6);  // numpy, at (52, 52)
  EXPECT_NEAR(psf.pixels[31 * 63 + 34], 0.0081376, 2e-6);
  EXPECT_NEAR(psf.pixels[29 * 63 + 31], 0.0231171, 2e-6);
}

TEST(PsfexModel, PositionAndCcdSelectTheModel) {
  io::ExposureSpec spec = psf_only(kModel);
  spec.psf_position = std::array<double, 2>{2000, 4000};  // far from the cutout: the polynomial's terms matter
  spec.psf_ccd = "S4";
  std::vector<std::string> warnings;
  const io::Image psf = io::read_psf(spec, 100, 101, warnings);
  EXPECT_NEAR(psf.pixels[31 * 63 + 31], 0.0347173, 2e-6);
  EXPECT_NEAR(psf.pixels[28 * 63 + 31], 0.0082080, 2e-6);
  spec.psf_ccd = "N4";
  testing::expect_error([&] { io::read_psf(spec, 100, 101, warnings); },
                        "no model for psf_ccd = \"N4\"; its CCDNAMEs: S4");
}

// Note [tile PSFs]: a tile's PSF is the model at the tile's centre; the printed L1 distances say how
// much a DECam PSF changes across a CCD (docs/design.md, "Tiles").
TEST(PsfexModel, TilePsfIsTheModelAtTheTileCentre) {
  std::vector<std::string> warnings;
  io::ExposureSpec spec = psf_only(kModel);
  const io::Image centre = io::read_psf(spec, 100, 101, warnings);
  const io::Image tile = io::read_psf(spec, 100, 101, warnings, "", {-25.5, 12});
  spec.psf_position = std::array<double, 2>{51 - 25.5, 50.5 + 12};  // the centre, (51, 50.5), moved
  const io::Image moved = io::read_psf(spec, 100, 101, warnings);
  const auto l1 = [](const io::Image& a, const io::Image& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.pixels.size(); ++i) d += std::abs(a.pixels[i] - b.pixels[i]);
    return d;
  };
  EXPECT_EQ(l1(tile, moved), 0.0);
  EXPECT_GT(l1(tile, centre), 0.0);
  // An explicit psf_position moves with the offset too.
  const io::Image far = io::read_psf(spec, 100, 101, warnings, "", {1000, 0});
  spec.psf_position = std::array<double, 2>{51 - 25.5 + 1000, 50.5 + 12};
  EXPECT_EQ(l1(far, io::read_psf(spec, 100, 101, warnings)), 0.0);
  // How much the model changes over a DECam CCD (2046 x 4094 px): the L1 distance (of PSFs of sum
  // 1) between its centre's PSF and one 500 and 2000 px away.
  spec.psf_position = std::array<double, 2>{1023, 2047};
  const io::Image ccd_centre = io::read_psf(spec, 100, 101, warnings);
  const double near = l1(ccd_centre, io::read_psf(spec, 100, 101, warnings, "", {0, 500}));
  const double across = l1(ccd_centre, io::read_psf(spec, 100, 101, warnings, "", {0, 2000}));
  std::printf("DECam PSFEx model: L1 distance %.4f at 500 px, %.4f at 2000 px from the CCD's centre\n", near, across);
  EXPECT_GT(across, near);
  EXPECT_GT(near, 0.0);
}

TEST(PsfexModel, CroppedToFitASmallExposure) {
  std::vector<std::string> warnings;
  const io::Image psf = io::read_psf(psf_only(kModel), 41, 52, warnings);
  EXPECT_EQ(psf.height, 41);  // the largest odd sizes that fit 41 x 52
  EXPECT_EQ(psf.width, 51);
  bool said = false;
  for (const auto& w : warnings) said |= w.find("PSF of 63x63 pixels cropped to 51x41") != std::string::npos;
  EXPECT_TRUE(said);
}

// PSFEx's own layout (the polynomial in the table's header): Debian's source-extractor and psfex
// fit a model to the stars of a simulated exposure. Sampled at the pixels (PSF_SAMP 1), the model
// as astroclear evaluates it matches the PSF that made the exposure; sampled every half pixel
// (PSF_SAMP 0.5), astroclear's resampling to the pixel grid equals every second sample of the
// model (the Lanczos-3 kernel is 1 at whole samples and 0 at the others).
TEST(PsfexModel, FittedByPsfexToASimulatedExposureMatchesItsTruePsf) {
  ASSERT_EQ(testing::run_command("psfex -v").exit_code, 0) << "psfex (Debian package psfex; .ci/setup.sh installs it)";
  TempDir dir;
  testing::simulate_into(dir.path().string(), 2, 256, 256, 5);
  const io::StackSpec spec = io::load_manifest(dir / "stack.toml");
  {
    io::FitsFile exposure = io::FitsFile::open(spec.exposures[0].file);
    ASSERT_TRUE(exposure.move_to("IMAGE"));
    io::FitsFile single = io::FitsFile::create(dir / "image.fits");
    single.write_image(exposure.read_image());
    single.close();
  }
  std::ofstream(dir / "psfex.param") << "VIGNET(35,35)\nX_IMAGE\nY_IMAGE\nFLUX_APER(1)\nFLUXERR_APER(1)\nFLUX_RADIUS\nELONGATION\nFLAGS\nSNR_WIN\n";
  const std::string at = "cd " + dir.path().string() + " && ";
  const auto sex = testing::run_command(at + "source-extractor image.fits -CATALOG_NAME stars.fits -CATALOG_TYPE FITS_LDAC -PARAMETERS_NAME psfex.param -FILTER N -DETECT_THRESH 10 -BACK_TYPE MANUAL -BACK_VALUE 0 -PHOT_APERTURES 10 -VERBOSE_TYPE QUIET -WRITE_XML N");
  ASSERT_EQ(sex.exit_code, 0) << sex.output;
  for (const char* sampling : {"1.0", "0.5"}) {
    const auto fit = testing::run_command(at + "psfex stars.fits -PSF_SIZE 31,31 -PSFVAR_DEGREES 1 -PSF_SAMPLING " +
                                          sampling + " -PSF_SUFFIX _" + sampling + ".psf -CHECKPLOT_TYPE NONE -CHECKIMAGE_TYPE NONE -WRITE_XML N -VERBOSE_TYPE QUIET");
    ASSERT_EQ(fit.exit_code, 0) << fit.output;
  }
  std::vector<std::string> warnings;
  const io::Image truth = io::read_psf(spec.exposures[0], 256, 256, warnings);
  const io::Image model = io::read_psf(psf_only(dir / "stars_1.0.psf"), 256, 256, warnings);
  ASSERT_EQ(model.height, truth.height);  // 31 x 31 both
  double distance = 0;
  for (std::size_t i = 0; i < model.pixels.size(); ++i) distance += std::abs(model.pixels[i] - truth.pixels[i]);
  std::printf("PSFEx model against the true PSF: L1 %.4f, FWHM %.3f against %.3f px\n", distance,
              io::psf_fwhm(model), io::psf_fwhm(truth));
  EXPECT_LT(distance, 0.15);  // of two PSFs of sum 1 (measured 0.09)
  EXPECT_NEAR(io::psf_fwhm(model), io::psf_fwhm(truth), 0.15 * io::psf_fwhm(truth));

  warnings.clear();
  const io::Image half = io::read_psf(psf_only(dir / "stars_0.5.psf"), 256, 256, warnings);
  ASSERT_EQ(half.height, 15);  // 31 samples every half pixel: 15 image pixels
  bool said = false;
  for (const auto& w : warnings) said |= w.find("PSF_SAMP = 0.5: the model was resampled") != std::string::npos;
  EXPECT_TRUE(said);
  io::FitsFile file = io::FitsFile::open(dir / "stars_0.5.psf");
  ASSERT_TRUE(file.move_to("PSF_DATA"));
  const std::vector<double> basis = file.read_cell("PSF_MASK", 0);  // 3 x 31 x 31: 1, u, v
  const double u = (128.5 - *file.read_double("POLZERO1")) / *file.read_double("POLSCAL1");
  const double v = (128.5 - *file.read_double("POLZERO2")) / *file.read_double("POLSCAL2");
  std::vector<double> expected;
  for (int r = 1; r < 31; r += 2) {
    for (int c = 1; c < 31; c += 2) {
      const int k = r * 31 + c;
      expected.push_back(std::max(0.0, basis[k] + u * basis[961 + k] + v * basis[2 * 961 + k]));
    }
  }
  double sum = 0;
  for (double e : expected) sum += e;
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(half.pixels[i], expected[i] / sum, 1e-6) << i;
}

// Note [PSF frames]: a PSF made on a grid rotated by 90 degrees from the exposure's is rotated
// with it: an elongated Gaussian's long axis moves from x to y.
TEST(PsfFrame, APsfIsMappedFromTheGridItWasMadeOn) {
  TempDir dir;
  auto write_with_wcs = [&](const std::string& name, const io::Image& pixels, double cd11, double cd12, double cd21,
                            double cd22) {
    io::FitsFile f = io::FitsFile::create(dir / name);
    f.write_image(pixels);
    f.write_key("CTYPE1", std::string("RA---TAN"));
    f.write_key("CTYPE2", std::string("DEC--TAN"));
    f.write_key("CRVAL1", 150.0);
    f.write_key("CRVAL2", 2.0);
    f.write_key("CRPIX1", 32.5);
    f.write_key("CRPIX2", 32.5);
    f.write_key("CD1_1", cd11);
    f.write_key("CD1_2", cd12);
    f.write_key("CD2_1", cd21);
    f.write_key("CD2_2", cd22);
    f.close();
  };
  const double s = 7.3e-5;  // 0.26 arcsec pixels
  write_with_wcs("frame.fits", io::Image(64, 64, 0.0f), -s, 0, 0, s);  // north up, east left
  write_with_wcs("exposure.fits", io::Image(64, 64, 0.0f), 0, s, s, 0);  // x along Dec: DECam's CCDs
  io::Image elongated(21, 21, 0.0f);
  for (int r = 0; r < 21; ++r) {
    for (int c = 0; c < 21; ++c) {
      elongated.pixels[r * 21 + c] = static_cast<float>(std::exp(-0.5 * ((c - 10) * (c - 10) / 9.0 + (r - 10) * (r - 10) / 2.25)));
    }
  }
  {
    io::FitsFile f = io::FitsFile::create(dir / "psf.fits");
    double sum = 0;
    for (float v : elongated.pixels) sum += v;
    for (float& v : elongated.pixels) v = static_cast<float>(v / sum);
    f.write_image(elongated);
    f.close();
  }
  io::ExposureSpec spec = psf_only(dir / "psf.fits");
  spec.psf_frame = dir / "frame.fits";
  const std::string header = io::FitsFile::open_image(dir / "exposure.fits", "").header_text();
  auto moments = [](const io::Image& p) {  // second moments along x (columns) and y (rows)
    double xx = 0, yy = 0, sum = 0;
    for (std::int64_t r = 0; r < p.height; ++r) {
      for (std::int64_t c = 0; c < p.width; ++c) {
        const double v = p.at(r, c), dx = c - p.width / 2, dy = r - p.height / 2;
        xx += v * dx * dx, yy += v * dy * dy, sum += v;
      }
    }
    return std::array<double, 2>{xx / sum, yy / sum};
  };
  std::vector<std::string> warnings;
  const auto own = moments(io::read_psf(spec, 64, 64, warnings));  // no exposure header: its own grid
  EXPECT_NEAR(own[0], 9.0, 0.1);
  EXPECT_NEAR(own[1], 2.25, 0.1);
  const auto mapped = moments(io::read_psf(spec, 64, 64, warnings, header));
  EXPECT_NEAR(mapped[0], 2.25, 0.15);
  EXPECT_NEAR(mapped[1], 9.0, 0.15);
  bool said = false;
  for (const auto& w : warnings) said |= w.find("rotated by 90 degrees, pixel scale x 1") != std::string::npos;
  EXPECT_TRUE(said) << (warnings.empty() ? "" : warnings.back());
}

// A PSF cube: one plane by index; without one, the error says how to choose.
TEST(PsfCube, PlaneChosenByIndex) {
  TempDir dir;
  const std::string path = dir / "cube.fits";
  {
    fitsfile* f = nullptr;
    int status = 0;
    long axes[3] = {5, 5, 3};
    fits_create_file(&f, path.c_str(), &status);
    fits_create_img(f, FLOAT_IMG, 3, axes, &status);
    std::vector<float> pixels(75, 0.0f);
    for (int k = 0; k < 3; ++k) {  // plane k: half at the centre, half k px to its right
      pixels[k * 25 + 12] = 0.5f;
      pixels[k * 25 + 12 + k] += 0.5f;
    }
    fits_write_img(f, TFLOAT, 1, 75, pixels.data(), &status);
    fits_close_file(f, &status);
    ASSERT_EQ(status, 0);
  }
  io::ExposureSpec spec = psf_only(path);
  std::vector<std::string> warnings;
  testing::expect_error([&] { io::read_psf(spec, 20, 20, warnings); },
                        "a PSF cube of 3 planes; say which with psf_plane");
  spec.psf_plane = 2;
  const io::Image psf = io::read_psf(spec, 20, 20, warnings);
  EXPECT_FLOAT_EQ(psf.pixels[12], 0.5f);
  EXPECT_FLOAT_EQ(psf.pixels[14], 0.5f);
  spec.psf_plane = 3;
  testing::expect_error([&] { io::read_psf(spec, 20, 20, warnings); },
                        "plane 3 asked for, but the cube has planes 0-2");
}

/// A manifest over the real S4 exposure (separate planes), with `stack` lines in [stack].
std::string real_manifest(const TempDir& dir, const std::string& stack, const std::string& exposure = "") {
  const std::string path = dir / "stack.toml";
  std::ofstream(path) << "[stack]\nsubtract_sky = \"median\"\n"
                      << stack << "\n[[exposure]]\nimage = \"" << kData << "c4d_171113_061941_ooi_r_ls9.S4.fits\"\n"
                      << "inverse_variance = \"" << kData << "c4d_171113_061941_oow_r_ls9.S4.fits\"\n"
                      << "mask = \"" << kData << "c4d_171113_061941_ood_r_ls9.S4.fits\"\n"
                      << "psf = \"" << kModel << "\"\n"
                      << exposure;
  return path;
}

// Note [mask kinds]: the CP's ood mask holds codes (8495 pixels 0, 866 saturated (3), 739 bleed
// trail (4)); read as codes, exactly the 0 pixels are good and the 3s are remembered as saturated.
TEST(QualityMask, CodeValuedMaskOfARealExposure) {
  TempDir dir;
  io::StackSpec spec = io::load_manifest(real_manifest(dir, "mask_kind = \"codes\"\nsaturated_mask_codes = [3]\n"));
  io::ExposureData data = io::read_exposure(spec.exposures[0], spec);
  EXPECT_EQ(data.mask_rejected_pixels, 866 + 739);
  EXPECT_EQ(data.good_pixels + data.zero_weight_pixels + data.nonfinite_pixels, 8495);
  EXPECT_EQ(std::count(data.saturated.begin(), data.saturated.end(), 1), 866);

  spec = io::load_manifest(real_manifest(dir, "mask_kind = \"codes\"\nbad_mask_codes = [4]\n"));
  data = io::read_exposure(spec.exposures[0], spec);
  EXPECT_EQ(data.mask_rejected_pixels, 739);  // saturated pixels used: the user said only 4 is bad

  testing::expect_error([&] { io::load_manifest(real_manifest(dir, "bad_mask_codes = [4]\n")); },
                        "'bad_mask_codes' and 'saturated_mask_codes' need mask_kind = \"codes\"");
  testing::expect_error([&] { io::load_manifest(real_manifest(dir, "mask_kind = \"values\"\n")); },
                        "'mask_kind' must be one of \"bits\", \"codes\", got \"values\"");
}

/// `planes` (edited) of the simulated MEF exposure `from`, written as separate image (with its
/// FSCALE), variance and mask (with its plane names) files in `dir`; the spec that reads them.
io::ExposureSpec write_separate_planes(const TempDir& dir, const io::ExposureSpec& from,
                                       const testing::MefPlanes& planes) {
  io::FitsFile f = io::FitsFile::create(dir / "image.fits");
  f.write_image(planes.image);
  f.write_key("FSCALE", *io::FitsFile::open(from.file).read_double("FSCALE"));
  f.close();
  io::FitsFile v = io::FitsFile::create(dir / "variance.fits");
  v.write_image(planes.variance);
  v.close();
  io::FitsFile m = io::FitsFile::create(dir / "mask.fits");
  m.write_empty_primary();
  testing::write_mask_with_plane_names(m, planes);
  m.close();
  io::ExposureSpec spec = from;
  spec.file.clear();
  spec.image = dir / "image.fits";
  spec.variance = dir / "variance.fits";
  spec.mask = dir / "mask.fits";
  return spec;
}

// A mask whose saturation plane is called SATUR is read by the default SAT.
TEST(QualityMask, PlaneNamesMatchTheirAliases) {
  TempDir dir;
  testing::simulate_into(dir.path().string(), 2, 40, 40, 9);
  io::StackSpec spec = io::load_manifest(dir / "stack.toml");
  const io::ExposureData expected = io::read_exposure(spec.exposures[0], spec);
  testing::MefPlanes planes = testing::read_planes(spec.exposures[0].file);
  int sat_bit = -1;
  for (auto& card : planes.mask_cards) {
    if (card.key == "MP_SAT") card.key = "MP_SATUR", sat_bit = std::stoi(card.value);
  }
  ASSERT_GE(sat_bit, 0);
  for (int i = 0; i < 10; ++i) planes.mask.pixels[i] |= 1 << sat_bit;  // ten saturated pixels
  const io::ExposureSpec renamed_spec = write_separate_planes(dir, spec.exposures[0], planes);
  const io::ExposureData read = io::read_exposure(renamed_spec, spec);
  std::int64_t flagged = 0;
  for (std::size_t i = 0; i < read.good.size(); ++i) {
    const bool sat = (planes.mask.pixels[i] & (1 << sat_bit)) != 0;
    flagged += sat ? 1 : 0;
    EXPECT_EQ(read.saturated[i], sat ? 1 : 0) << "pixel " << i;
    EXPECT_EQ(read.good[i], sat ? 0 : expected.good[i]) << "pixel " << i;  // SATUR rejects like SAT
  }
  EXPECT_GE(flagged, 10);
}

// Note [sky check]: a sky of 10 sigma with a gradient of 20 sigma across the field, subtracted by
// the mesh, leaves the exposure as it was without it, to a fraction of a sigma in every quadrant.
TEST(SkyMesh, ASkyGradientIsRemovedByTheMesh) {
  TempDir dir;
  testing::simulate_into(dir.path().string(), 2, 128, 128, 4);
  io::StackSpec spec = io::load_manifest(dir / "stack.toml");
  const io::ExposureData clean = io::read_exposure(spec.exposures[0], spec);
  testing::MefPlanes planes = testing::read_planes(spec.exposures[0].file);
  std::vector<float> sigmas;
  for (float v : planes.variance.pixels) sigmas.push_back(std::sqrt(v));
  std::nth_element(sigmas.begin(), sigmas.begin() + static_cast<std::ptrdiff_t>(sigmas.size() / 2), sigmas.end());
  const float sigma = sigmas[sigmas.size() / 2];  // in image units
  for (std::int64_t r = 0; r < 128; ++r) {
    for (std::int64_t c = 0; c < 128; ++c) planes.image.pixels[r * 128 + c] += sigma * (10.0f + 20.0f * c / 127.0f);
  }
  const io::ExposureSpec with_sky = write_separate_planes(dir, spec.exposures[0], planes);
  testing::expect_error([&] { io::read_exposure(with_sky, spec); }, "sigma from zero");
  spec.subtract_sky = "mesh";
  spec.sky_mesh_px = 32;
  const io::ExposureData mended = io::read_exposure(with_sky, spec);
  ASSERT_EQ(mended.good, clean.good);
  for (int quadrant = 0; quadrant < 4; ++quadrant) {
    std::vector<float> residual;
    for (std::int64_t r = (quadrant / 2) * 64; r < (quadrant / 2 + 1) * 64; ++r) {
      for (std::int64_t c = (quadrant % 2) * 64; c < (quadrant % 2 + 1) * 64; ++c) {
        const std::int64_t i = r * 128 + c;
        if (clean.good[i] != 0) residual.push_back((mended.image.pixels[i] - clean.image.pixels[i]) / clean.sigma.pixels[i]);
      }
    }
    std::nth_element(residual.begin(), residual.begin() + static_cast<std::ptrdiff_t>(residual.size() / 2),
                     residual.end());
    EXPECT_NEAR(residual[residual.size() / 2], 0.0, 0.5) << "quadrant " << quadrant;
  }
}

// Note [flux scale]: FLXSCALE multiplies (SWarp's meaning) unless the manifest says otherwise; a
// zero point scales to the target; the old key list is refused with what to write instead.
TEST(FluxScale, ConventionAndZeroPoint) {
  TempDir dir;
  auto scale_of = [&](const std::string& stack, const std::string& exposure) {
    io::StackSpec spec = io::load_manifest(real_manifest(dir, stack, exposure));
    return io::read_exposure(spec.exposures[0], spec);
  };
  io::ExposureData none = scale_of("", "");
  EXPECT_DOUBLE_EQ(none.flux_scale, 1.0);
  EXPECT_NE(none.flux_scale_source.find("no FLXSCALE keyword"), std::string::npos) << none.flux_scale_source;
  EXPECT_DOUBLE_EQ(scale_of("", "flux_scale = 2\n").flux_scale, 0.5);  // multiply: calibrated = image x 2
  EXPECT_DOUBLE_EQ(scale_of("flux_scale_convention = \"divide\"\n", "flux_scale = 2\n").flux_scale, 2.0);
  // AVSKY is in this image's header: as a flux-scale keyword it divides (378.5062)
  const io::ExposureData by_key = scale_of("flux_scale_key = \"AVSKY\"\nflux_scale_convention = \"divide\"\n", "");
  EXPECT_NEAR(by_key.flux_scale, 378.5062, 1e-9);
  EXPECT_NE(by_key.flux_scale_source.find("AVSKY = 378.506 (divide)"), std::string::npos) << by_key.flux_scale_source;
  const io::ExposureData zp = scale_of("target_zero_point = 27.5\n", "zero_point = 30.0126\n");
  EXPECT_NEAR(zp.flux_scale, std::pow(10.0, 0.4 * (30.0126 - 27.5)), 1e-9);
  EXPECT_NE(zp.flux_scale_source.find("zero_point = 30.0126 to target_zero_point 27.5"), std::string::npos)
      << zp.flux_scale_source;
  testing::expect_error([&] { scale_of("target_zero_point = 27.5\n", ""); },
                        "target_zero_point needs zero_point_key or each exposure's zero_point");
  testing::expect_error([&] { scale_of("target_zero_point = 27.5\nzero_point_key = \"MAGZERO\"\n", ""); },
                        "no zero point: no MAGZERO keyword in its headers");
  testing::expect_error([&] { scale_of("", "zero_point = 30\n"); }, "zero points are given, but no target_zero_point");
  testing::expect_error([&] { scale_of("flux_scale_keys = [\"FSCALE\"]\n", ""); },
                        "'flux_scale_keys' is no longer read: give flux_scale_key");
  testing::expect_error([&] { scale_of("flux_scale_convension = \"divide\"\n", ""); },
                        "'flux_scale_convension' is not a manifest key; did you mean 'flux_scale_convention'?");
}

}  // namespace
}  // namespace astroclear
