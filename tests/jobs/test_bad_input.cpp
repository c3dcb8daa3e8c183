// Bad inputs through the executable: a message naming file, field and value, a non-zero exit, and
// no output file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "io/fits_file.hpp"
#include "tests/test_support.hpp"

#ifndef ASTROCLEAR_EXE
#error "ASTROCLEAR_EXE must name the astroclear executable"
#endif

namespace astroclear {
namespace {

namespace fs = std::filesystem;
using testing::MefPlanes;
using testing::read_planes;
using testing::TempDir;
using testing::write_mask_with_plane_names;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override { testing::simulate_into(dir_.path().string(), 3, 48, 48, 11); }

  /// Rewrites exposure `t`'s MEF with a change applied to its planes.
  template <typename Edit>
  void edit_exposure(int t, Edit edit) {
    const std::string path = dir_ / ("exp_00" + std::to_string(t) + ".fits");
    MefPlanes planes = read_planes(path);
    edit(planes.image, planes.mask, planes.variance);
    fs::remove(path);
    io::FitsFile out = io::FitsFile::create(path);
    out.write_empty_primary();
    out.write_key("FSCALE", 1.0);
    if (planes.image.size() > 0) out.write_image(planes.image, "IMAGE");
    if (planes.mask.height > 0) write_mask_with_plane_names(out, planes);
    if (planes.variance.size() > 0) out.write_image(planes.variance, "VARIANCE");
    out.close();
  }

  void write_psf(int t, const io::Image& psf) {
    const std::string path = dir_ / ("psf_00" + std::to_string(t) + ".fits");
    fs::remove(path);
    io::FitsFile f = io::FitsFile::create(path);
    f.write_image(psf);
    f.close();
  }

  static io::Image box_psf(std::int64_t h, std::int64_t w, float total) {
    io::Image psf(h, w, total / static_cast<float>(h * w));
    return psf;
  }

  testing::CommandResult train(const std::string& extra = "") {
    return testing::run_command(std::string(ASTROCLEAR_EXE) + " train -m " + (dir_ / "stack.toml") + " -o " +
                                output() + " -n 2 --threads 1 " + extra);
  }
  std::string output() const { return dir_ / "restored.fits"; }

  void expect_refused(const std::string& message) {
    testing::CommandResult r = train();
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << "expected «" << message << "» in:\n" << r.output;
    EXPECT_FALSE(fs::exists(output())) << "a refused run must not leave an output file";
  }

  TempDir dir_;
};

TEST_F(BadInput, GoodStackTrains) {
  testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(output()));
}

TEST_F(BadInput, MissingFile) {
  fs::remove(dir_ / "exp_001.fits");
  expect_refused("exp_001.fits: file not found");
}

TEST_F(BadInput, MissingHdu) {
  edit_exposure(1, [](io::Image&, io::MaskImage&, io::Image& variance) { variance = io::Image(); });
  expect_refused("exp_001.fits: no HDU with EXTNAME = 'VARIANCE'");
}

TEST_F(BadInput, PlanesOfDifferentShapes) {
  edit_exposure(2, [](io::Image&, io::MaskImage&, io::Image& variance) { variance = io::Image(48, 40, 1.0f); });
  expect_refused("exp_002.fits[VARIANCE]: 40x48 pixels, but");
}

TEST_F(BadInput, ExposuresOfDifferentSizes) {
  edit_exposure(1, [](io::Image& image, io::MaskImage& mask, io::Image& variance) {
    image = io::Image(40, 48, 0.0f);
    variance = io::Image(40, 48, 1.0f);
    mask = io::MaskImage{40, 48, std::vector<std::int32_t>(40 * 48, 0)};
  });
  expect_refused("all exposures must be co-registered on one grid");
}

TEST_F(BadInput, NanPixelsAreMaskedCountedAndReported) {
  edit_exposure(0, [](io::Image& image, io::MaskImage& mask, io::Image&) {
    for (int i = 1100; i < 1112; ++i) {
      image.pixels[i] = std::nanf("");
      mask.pixels[i] = 0;
    }
  });
  testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("12 NaN/Inf pixels in image or variance, masked"), std::string::npos) << r.output;
}

TEST_F(BadInput, NonPositiveVarianceUnderGoodMask) {
  edit_exposure(1, [](io::Image&, io::MaskImage& mask, io::Image& variance) {
    for (int i = 500; i < 531; ++i) {
      mask.pixels[i] = 0;
      variance.pixels[i] = (i % 2) ? 0.0f : -1.0f;
    }
  });
  expect_refused("exp_001.fits[VARIANCE]: 31 pixels <= 0 where MASK is good; variance must be > 0");
}

TEST_F(BadInput, ExposureWithNoGoodPixel) {
  edit_exposure(2, [](io::Image&, io::MaskImage& mask, io::Image&) {
    std::fill(mask.pixels.begin(), mask.pixels.end(), 1);  // BAD everywhere
  });
  expect_refused("exp_002.fits: no good pixel");
}

TEST_F(BadInput, EvenSizedPsf) {
  write_psf(0, box_psf(8, 9, 1.0f));
  expect_refused("psf_000.fits[HDU 0]: PSF is 9x8 pixels; PSF sizes must be odd");
}

TEST_F(BadInput, PsfLargerThanTheImage) {
  write_psf(1, box_psf(51, 51, 1.0f));
  expect_refused("PSF is 51x51 pixels, larger than the exposure (48x48)");
}

TEST_F(BadInput, NegativePsf) {
  io::Image psf = box_psf(5, 5, 1.0f);
  psf.pixels[0] = -0.05f;
  write_psf(1, psf);
  expect_refused("1 PSF pixels are negative (min -0.05");
}

TEST_F(BadInput, PsfSummingFarFromOne) {
  write_psf(2, box_psf(5, 5, 3.0f));
  expect_refused("PSF sums to 3; expected 1");
}

TEST_F(BadInput, PsfSummingCloseToOneIsRenormalisedWithAWarning) {
  write_psf(2, box_psf(5, 5, 1.04f));
  testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PSF sums to 1.04; renormalised to 1"), std::string::npos) << r.output;
}

TEST_F(BadInput, FewerThanTwoExposures) {
  std::ofstream(dir_ / "stack.toml") << "[[exposure]]\nfile = \"exp_000.fits\"\npsf = \"psf_000.fits\"\n";
  expect_refused("1 exposure(s); astroclear needs at least 2 exposures");
}

TEST_F(BadInput, HoldingOutTheWholeStack) {
  const testing::CommandResult r = train("--validation-exposures 3");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--validation-exposures: 3 held out of a stack of 3 exposures would leave 0 to fit; at "
                          "most 2 can be held out"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(output()));
}

TEST_F(BadInput, ValidateNamesAMissingExposureAndAnImageOfAnotherShape) {
  ASSERT_EQ(train().exit_code, 0);
  const std::string validate = std::string(ASTROCLEAR_EXE) + " validate " + output() + " -m " + (dir_ / "stack.toml");
  testing::CommandResult r = testing::run_command(validate + " --exposures 1,7 --json " + (dir_ / "v.jsonl"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("exposure 7: no such exposure; " + (dir_ / "stack.toml") + " lists exposures 0-2"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "v.jsonl"));
  io::FitsFile small = io::FitsFile::create(dir_ / "small.fits");
  small.write_image(io::Image(40, 48, 1.0f));
  small.close();
  r = testing::run_command(std::string(ASTROCLEAR_EXE) + " validate " + (dir_ / "small.fits") + " -m " +
                           (dir_ / "stack.toml") + " --exposures 1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("small.fits: 48x40 pixels, but the stack " + (dir_ / "stack.toml") + " is 48x48"),
            std::string::npos)
      << r.output;
  r = testing::run_command(validate + " --exposures 1,1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("exposure 1 is named twice"), std::string::npos) << r.output;
  r = testing::run_command(validate + " --exposures 0,2 --json " + (dir_ / "v.jsonl"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::ifstream json(dir_ / "v.jsonl");
  int lines = 0;
  for (std::string line; std::getline(json, line);) ++lines;
  EXPECT_EQ(lines, 3) << "one line per exposure and one for both";
}

TEST_F(BadInput, WarmStartOfAnotherShapeAndTargetResolutionOutOfRange) {
  io::FitsFile small = io::FitsFile::create(dir_ / "small.fits");
  small.write_image(io::Image(40, 48, 1.0f));
  small.close();
  testing::CommandResult r = train("--warm-start " + (dir_ / "small.fits"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--warm-start: " + (dir_ / "small.fits")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is 48x40 pixels, but the stack is 48x48"), std::string::npos) << r.output;
  for (const std::string value : {"-1", "nan", "51"}) {
    r = train("--target-fwhm " + value);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("--target-fwhm: must be in [0, 50]"), std::string::npos) << value << ": " << r.output;
    r = testing::run_command(std::string(ASTROCLEAR_EXE) + " rl -m " + (dir_ / "stack.toml") + " -o " + output() +
                             " -n 2 --target-fwhm " + value);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("--target-fwhm: must be in [0, 50]"), std::string::npos) << value << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(output()));
}

TEST_F(BadInput, NonFitsFile) {
  std::ofstream(dir_ / "exp_001.fits", std::ios::trunc) << "SIMPLE? no, a text file\n";
  expect_refused("exp_001.fits: not a readable FITS file");
}

TEST_F(BadInput, ExistingOutputIsKeptWithoutOverwrite) {
  std::ofstream(output()) << "precious";
  testing::CommandResult r = train();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("output exists; pass --overwrite"), std::string::npos) << r.output;
  std::ifstream in(output());
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  r = train("--overwrite");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(BadInput, OutputCarriesWcsAndProvenance) {
  ASSERT_EQ(train("--with-coadd --with-residuals").exit_code, 0);
  io::FitsFile in = io::FitsFile::open(dir_ / "exp_000.fits");
  in.move_to("IMAGE");
  io::FitsFile out = io::FitsFile::open(output());
  EXPECT_EQ(out.hdu_count(), 1 + 1 + 3);  // latent, COADD, CHI_000..002
  out.move_to(0);
  for (const char* key : {"CRVAL1", "CRVAL2", "CRPIX1", "CD1_1", "CD2_2"}) {
    EXPECT_DOUBLE_EQ(*out.read_double(key), *in.read_double(key)) << key;
  }
  EXPECT_EQ(*out.read_string("CTYPE1"), "RA---TAN");
  EXPECT_EQ(*out.read_string("ORIGIN"), "astroclear");
  EXPECT_DOUBLE_EQ(*out.read_double("ACITER"), 2);
  EXPECT_DOUBLE_EQ(*out.read_double("ACNEXP"), 3);
  EXPECT_TRUE(out.read_double("ACLOSS").has_value());
  ASSERT_TRUE(out.move_to("CHI_002"));
  EXPECT_NE(out.read_string("EXPOSURE")->find("exp_002.fits"), std::string::npos);
}

}  // namespace
}  // namespace astroclear
