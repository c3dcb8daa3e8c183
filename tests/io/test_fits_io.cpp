// FITS and manifest round trips, and every bad input refused by `astroclear train` with its message.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/exposure_reader.hpp"
#include "io/fits_file.hpp"
#include "io/fits_output.hpp"
#include "io/manifest.hpp"
#include "mpi/error.hpp"
#include "tests/test_support.hpp"

#ifndef ASTROCLEAR_EXE
#error "ASTROCLEAR_EXE must name the astroclear executable"
#endif

namespace astroclear {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

/// The planes of an MEF exposure as `simulate` writes it, with the MASK header's cards.
struct MefPlanes {
  io::Image image, variance;
  io::MaskImage mask;
  std::vector<io::HeaderCard> mask_cards;
};

MefPlanes read_planes(const std::string& path) {
  io::FitsFile f = io::FitsFile::open(path);
  MefPlanes p;
  f.move_to("IMAGE");
  p.image = f.read_image();
  f.move_to("MASK");
  p.mask = f.read_mask();
  p.mask_cards = f.read_cards();
  f.move_to("VARIANCE");
  p.variance = f.read_image();
  return p;
}

/// Writes a MASK HDU with the mask-plane names (MP_* cards) of `from`.
void write_mask_with_plane_names(io::FitsFile& f, const MefPlanes& from) {
  f.write_mask(from.mask, "MASK");
  for (const auto& c : from.mask_cards) {
    if (c.key.rfind("MP_", 0) == 0) f.write_card(c);
  }
}

io::Image ramp(std::int64_t h, std::int64_t w) {
  io::Image image(h, w);
  for (std::int64_t i = 0; i < image.size(); ++i) image.pixels[i] = 0.25f * static_cast<float>(i) - 3.0f;
  return image;
}

TEST(FitsFile, ImageMaskAndKeysRoundTrip) {
  TempDir dir;
  const std::string path = dir / "round.fits";
  const std::string long_text(150, 'x');
  {
    io::FitsFile f = io::FitsFile::create(path);
    f.write_empty_primary();
    f.write_key("FSCALE", 1.25, "scale");
    f.write_image(ramp(5, 7), "IMAGE");
    f.write_key("EXPID", 42LL);
    f.write_key("LONGKEY", long_text);
    f.write_card({"CTYPE1", "'RA---TAN'", "projection"});
    f.write_card({"CD1_1", "-4.6666E-05", ""});
    io::MaskImage mask{5, 7, std::vector<std::int32_t>(35, 0)};
    mask.pixels[3] = (1 << 8) | 1;
    f.write_mask(mask, "MASK");
    f.write_key("MP_BAD", 0LL);
    f.write_key("MP_NO_DATA", 8LL);
    f.close();
  }
  io::FitsFile f = io::FitsFile::open(path);
  EXPECT_EQ(f.hdu_count(), 3);
  f.move_to(0);
  EXPECT_DOUBLE_EQ(*f.read_double("FSCALE"), 1.25);
  ASSERT_TRUE(f.move_to("IMAGE"));
  EXPECT_EQ(f.where(), path + "[IMAGE]");
  io::Image image = f.read_image();
  EXPECT_EQ(image.height, 5);
  EXPECT_EQ(image.width, 7);
  EXPECT_EQ(image.pixels, ramp(5, 7).pixels);
  EXPECT_DOUBLE_EQ(*f.read_double("EXPID"), 42);
  EXPECT_EQ(*f.read_string("LONGKEY"), long_text);
  EXPECT_FALSE(f.read_double("NOSUCHKEY").has_value());
  auto wcs = io::wcs_cards(f.read_cards());
  ASSERT_EQ(wcs.size(), 2u);
  EXPECT_EQ(wcs[0].key, "CTYPE1");
  ASSERT_TRUE(f.move_to("MASK"));
  io::MaskImage mask = f.read_mask();
  EXPECT_EQ(mask.pixels[3], 257);
  std::vector<std::string> warnings;
  EXPECT_EQ(io::bad_bit_mask(f.read_cards(), {"BAD", "NO_DATA", "SAT"}, warnings), 257);
  EXPECT_TRUE(warnings.empty());
  EXPECT_FALSE(f.move_to("VARIANCE"));
}

TEST(FitsFile, NonFitsFileIsRefusedWithItsName) {
  TempDir dir;
  std::ofstream(dir / "notes.fits") << "this is not FITS\n";
  try {
    io::FitsFile::open(dir / "notes.fits");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.fits: not a readable FITS file"), std::string::npos) << e.what();
  }
}

TEST(FitsOutput, AtomicWriteRefusesToOverwrite) {
  TempDir dir;
  const std::string path = dir / "out.fits";
  io::write_fits_atomically(path, {{"", ramp(4, 4), {{"ORIGIN", "'astroclear'", ""}}, {"hello"}}}, false);
  EXPECT_THROW(io::write_fits_atomically(path, {{"", ramp(3, 3), {}, {}}}, false), Error);
  EXPECT_EQ(io::FitsFile::open(path).read_image().height, 4);  // untouched
  io::write_fits_atomically(path, {{"", ramp(3, 3), {}, {}}}, true);
  EXPECT_EQ(io::FitsFile::open(path).read_image().height, 3);
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "temporary file left behind";
  }
}

TEST(Manifest, RoundTripAndRelativePaths) {
  TempDir dir;
  io::StackSpec spec;
  spec.exposures.push_back({"exp_000.fits", "", "", "", "", "psf_000.fits", 1.05});
  spec.exposures.push_back({"", "a.fits", "", "a_ivar.fits", "a_mask.fits", "a_psf.fits", std::nullopt});
  io::write_manifest(dir / "m.toml", spec);
  io::StackSpec back = io::load_manifest(dir / "m.toml");
  ASSERT_EQ(back.exposures.size(), 2u);
  EXPECT_EQ(back.exposures[0].file, dir / "exp_000.fits");
  EXPECT_DOUBLE_EQ(*back.exposures[0].flux_scale, 1.05);
  EXPECT_EQ(back.exposures[1].inverse_variance, dir / "a_ivar.fits");
  EXPECT_EQ(back.bad_mask_bits, spec.bad_mask_bits);
}

TEST(Manifest, MalformedEntriesNameTheField) {
  TempDir dir;
  std::ofstream(dir / "bad.toml") << "[[exposure]]\nfile = \"a.fits\"\n";
  try {
    io::load_manifest(dir / "bad.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[[exposure]] #0: 'psf' is missing"), std::string::npos) << e.what();
  }
}

TEST(ExposureReader, SimulatedExposureIsCalibratedAndMasked) {
  TempDir dir;
  testing::simulate_into(dir.path().string(), 2, 48, 40, 5);
  io::StackSpec spec = io::load_manifest(dir / "stack.toml");
  io::ExposureData data = io::read_exposure(spec.exposures[0], spec);
  io::FitsFile raw = io::FitsFile::open(spec.exposures[0].file);
  raw.move_to(0);
  const double fscale = *raw.read_double("FSCALE");
  EXPECT_NEAR(data.flux_scale, fscale, 1e-12);
  raw.move_to("IMAGE");
  io::Image image = raw.read_image();
  raw.move_to("MASK");
  io::MaskImage mask = raw.read_mask();
  std::int64_t checked = 0;
  for (std::int64_t i = 0; i < image.size(); ++i) {
    if (mask.pixels[i] == 0) {
      ASSERT_EQ(data.good[i], 1);
      EXPECT_NEAR(data.image.pixels[i], image.pixels[i] / fscale, 1e-3);
      ++checked;
    } else {
      EXPECT_EQ(data.good[i], 0);  // EDGE, BAD, CR, SAT are all bad bits by default
    }
  }
  EXPECT_GT(checked, 1000);
  EXPECT_EQ(data.good_pixels, checked);
  EXPECT_NEAR(data.psf.pixels.size() > 0 ? [&] { double s = 0; for (float v : data.psf.pixels) s += v; return s; }() : 0,
              1.0, 1e-5);
}

TEST(ExposureReader, SeparatePlanesWithInverseVarianceReadLikeTheMef) {
  TempDir dir;
  testing::simulate_into(dir.path().string(), 2, 40, 40, 6);
  io::StackSpec spec = io::load_manifest(dir / "stack.toml");
  const double fscale = *io::FitsFile::open(spec.exposures[0].file).read_double("FSCALE");
  const MefPlanes planes = read_planes(spec.exposures[0].file);
  io::Image inverse = planes.variance;
  for (float& v : inverse.pixels) v = 1.0f / v;
  auto write = [&](const std::string& name, auto&& body) {
    io::FitsFile f = io::FitsFile::create(dir / name);
    body(f);
    f.close();
  };
  write("img.fits", [&](io::FitsFile& f) { f.write_image(planes.image); f.write_key("FLXSCALE", fscale); });
  write("ivar.fits", [&](io::FitsFile& f) { f.write_image(inverse); });
  write("mask.fits", [&](io::FitsFile& f) { write_mask_with_plane_names(f, planes); });
  io::ExposureSpec separate{"", dir / "img.fits", "", dir / "ivar.fits", dir / "mask.fits", spec.exposures[0].psf,
                            std::nullopt};
  io::ExposureData a = io::read_exposure(spec.exposures[0], spec), b = io::read_exposure(separate, spec);
  EXPECT_NEAR(b.flux_scale, fscale, 1e-12);  // found under FLXSCALE, the second key
  EXPECT_EQ(a.good, b.good);
  EXPECT_EQ(a.good_pixels, b.good_pixels);
  for (std::int64_t i = 0; i < a.image.size(); ++i) {
    ASSERT_FLOAT_EQ(a.image.pixels[i], b.image.pixels[i]);
    ASSERT_NEAR(a.sigma.pixels[i], b.sigma.pixels[i], 1e-5 * a.sigma.pixels[i]);
  }
}

// ---- Bad inputs through the executable: message, non-zero exit, no output file. ----

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
