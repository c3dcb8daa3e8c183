// FITS and manifest round trips, and every bad input refused by `astroclear train` with its message.
#include <gtest/gtest.h>

#include <array>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/exposure_reader.hpp"
#include "io/fits_file.hpp"
#include "io/fits_output.hpp"
#include "io/manifest.hpp"
#include "common/error.hpp"
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
  ASSERT_EQ(warnings.size(), 1u) << "SAT names no plane of this mask";
  EXPECT_EQ(warnings[0],
            "bad_mask_bits SAT name no plane of this mask (nor an alias), so they reject nothing; its planes: BAD, "
            "NO_DATA");
  warnings.clear();
  EXPECT_EQ(io::bad_bit_mask(f.read_cards(), {"BAD", "NO_DATA"}, warnings), 257);
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
  io::ExposureSpec mef, planes;
  mef.file = "exp_000.fits";
  mef.psf = "psf_000.fits";
  mef.flux_scale = 1.05;
  planes.image = "a.fits";
  planes.inverse_variance = "a_ivar.fits";
  planes.mask = "a_mask.fits";
  planes.psf = "a_psf.fits";
  planes.psf_position = std::array<double, 2>{12.5, 30};
  planes.zero_point = 30.0126;
  spec.exposures = {mef, planes};
  spec.mask_kind = "codes";
  spec.saturated_mask_codes = {3};
  spec.zero_point_key = "MAGZERO";
  spec.target_zero_point = 27.5;
  io::write_manifest(dir / "m.toml", spec);
  io::StackSpec back = io::load_manifest(dir / "m.toml");
  ASSERT_EQ(back.exposures.size(), 2u);
  EXPECT_EQ(back.exposures[0].file, dir / "exp_000.fits");
  EXPECT_DOUBLE_EQ(*back.exposures[0].flux_scale, 1.05);
  EXPECT_EQ(back.exposures[1].inverse_variance, dir / "a_ivar.fits");
  EXPECT_EQ(back.bad_mask_bits, spec.bad_mask_bits);
  EXPECT_EQ(back.mask_kind, "codes");
  EXPECT_EQ(back.saturated_mask_codes, spec.saturated_mask_codes);
  EXPECT_EQ(back.flux_scale_convention, "multiply");
  EXPECT_DOUBLE_EQ(*back.target_zero_point, 27.5);
  EXPECT_DOUBLE_EQ(*back.exposures[1].zero_point, 30.0126);
  EXPECT_DOUBLE_EQ((*back.exposures[1].psf_position)[0], 12.5);
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
  write("img.fits", [&](io::FitsFile& f) { f.write_image(planes.image); f.write_key("FSCALE", fscale); });
  write("ivar.fits", [&](io::FitsFile& f) { f.write_image(inverse); });
  write("mask.fits", [&](io::FitsFile& f) { write_mask_with_plane_names(f, planes); });
  io::ExposureSpec separate;
  separate.image = dir / "img.fits";
  separate.inverse_variance = dir / "ivar.fits";
  separate.mask = dir / "mask.fits";
  separate.psf = spec.exposures[0].psf;
  io::ExposureData a = io::read_exposure(spec.exposures[0], spec), b = io::read_exposure(separate, spec);
  EXPECT_NEAR(b.flux_scale, fscale, 1e-12);  // the manifest's FSCALE, in the image HDU of a plain file
  EXPECT_EQ(a.good, b.good);
  EXPECT_EQ(a.good_pixels, b.good_pixels);
  for (std::int64_t i = 0; i < a.image.size(); ++i) {
    ASSERT_FLOAT_EQ(a.image.pixels[i], b.image.pixels[i]);
    ASSERT_NEAR(a.sigma.pixels[i], b.sigma.pixels[i], 1e-5 * a.sigma.pixels[i]);
  }

  // An inverse-variance plane of zeros is named as what it is, not blamed on the mask.
  write("zero_ivar.fits", [&](io::FitsFile& f) { f.write_image(io::Image(40, 40, 0.0f)); });
  separate.inverse_variance = dir / "zero_ivar.fits";
  try {
    io::read_exposure(separate, spec);
    ADD_FAILURE() << "an exposure with no weight anywhere was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(" with inverse variance 0 in " + (dir / "zero_ivar.fits")), std::string::npos)
        << e.what();
  }
}

/// One part alone, for reading part of an exposure in one process: its sums are its own.
class OnePart final : public io::ExposureParts {
 public:
  void sum(std::vector<double>&) override {}
  void agree(const std::string& error) override {
    if (!error.empty()) throw Error(error);
  }
};

// Note [exposure parts]: a part is read with CFITSIO subset reads alone, so a file whose damage
// lies outside the part reads; and the part's pixels are the whole read's.
TEST(ExposureReader, APartIsReadAloneAndIsTheWholeReadsPixels) {
  TempDir dir;
  const std::int64_t h = 64, w = 40;
  testing::simulate_into(dir.path().string(), 2, h, w, 9);
  io::StackSpec spec = io::load_manifest(dir / "stack.toml");
  const MefPlanes planes = read_planes(spec.exposures[0].file);
  const double fscale = *io::FitsFile::open(spec.exposures[0].file).read_double("FSCALE");
  io::ExposureSpec separate;
  separate.image = dir / "img.fits";
  separate.variance = dir / "var.fits";
  separate.psf = spec.exposures[0].psf;
  {
    io::FitsFile f = io::FitsFile::create(separate.image);
    f.write_image(planes.image);
    f.write_key("FSCALE", fscale);
    f.close();
    io::FitsFile v = io::FitsFile::create(separate.variance);
    v.write_image(planes.variance);
    v.close();
  }
  const io::ExposureData whole = io::read_exposure(separate, spec);
  // Cut the image file after two FITS blocks of data (row 36 of 64; CFITSIO reads whole blocks).
  const std::uintmax_t data_start = fs::file_size(separate.image) - 2880 * ((h * w * 4 + 2879) / 2880);
  fs::resize_file(separate.image, data_start + 2 * 2880);
  testing::expect_error([&] { io::read_exposure(separate, spec); }, "img.fits");

  OnePart alone;
  io::ExposurePart part;
  part.read = {0, 30, 5, 40};
  part.own = {0, 24, 5, 35};
  part.others = &alone;
  part.description = "the top rows";
  const io::ExposureData read = io::read_exposure(separate, spec, part);
  EXPECT_TRUE(read.box == part.read);
  ASSERT_EQ(read.image.height, 30);
  ASSERT_EQ(read.image.width, 35);
  for (std::int64_t y = 0; y < 30; ++y) {
    for (std::int64_t x = 5; x < 40; ++x) {
      const std::int64_t i = y * w + x, j = y * 35 + (x - 5);
      ASSERT_EQ(read.image.pixels[j], whole.image.pixels[i]) << y << "," << x;
      ASSERT_EQ(read.sigma.pixels[j], whole.sigma.pixels[i]);
      ASSERT_EQ(read.good[j], whole.good[i]);
    }
  }
  std::int64_t own_good = 0;
  for (std::int64_t y = 0; y < 24; ++y) {
    for (std::int64_t x = 5; x < 35; ++x) own_good += whole.good[y * w + x];
  }
  EXPECT_EQ(read.good_pixels, own_good);  // the part's own pixels count, not its halo
  EXPECT_EQ(read.plane_checksum, 0u);     // only a whole read has the checksum of whole planes

  // A part that reaches into the damage names the file and the part.
  part.read = {20, 50, 0, 40};
  part.own = {24, 44, 0, 40};
  testing::expect_error([&] { io::read_exposure(separate, spec, part); }, "(reading the top rows)");
}

}  // namespace
}  // namespace astroclear
