// Bad inputs through the executable: a message naming file, field and value, a non-zero exit, and
// no output file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "common/error.hpp"
#include "io/checkpoint_file.hpp"
#include "io/fits_file.hpp"
#include "io/run_lock.hpp"
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

/// The size of the tmpfs that stands for a full disk: a few checkpoints of the 48 x 48 test stack.
constexpr int kFullDiskBytes = 160 * 1024;

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

// Note [PSF inputs]: a stamp larger than the exposure is cropped to fit; the flux cut off counts
// towards the sum check, so a PSF that loses much of its flux is refused.
TEST_F(BadInput, PsfLargerThanTheImageIsCroppedAndRefusedWhenThatLosesMuchFlux) {
  io::Image peaked(51, 51, 0.0f);
  peaked.pixels[25 * 51 + 25] = 0.999f;
  peaked.pixels[0] = 0.001f;  // a wing outside the 47 px that fit
  write_psf(1, peaked);
  testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PSF of 51x51 pixels cropped to 47x47 to fit the exposure (48x48); 0.1% of its sum was "
                          "outside"),
            std::string::npos)
      << r.output;
  write_psf(1, box_psf(51, 51, 1.0f));
  const testing::CommandResult refused = train("--overwrite");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("PSF sums to 0.849"), std::string::npos) << refused.output;
}

TEST_F(BadInput, NegativePsf) {
  io::Image psf = box_psf(5, 5, 1.0f);
  psf.pixels[0] = -0.05f;
  write_psf(1, psf);
  expect_refused("1 PSF pixels are negative, down to -1.25 of the peak; a PSF must be non-negative");
  psf.pixels[0] = -0.0002f;  // -0.5% of the peak: a PSFEx-like wing, clipped
  write_psf(1, psf);
  const testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 negative PSF pixels (down to -0.005 of the peak) set to 0"), std::string::npos)
      << r.output;
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
  // Several images are scored on the same exposures and ranked: the trained image predicts them
  // better than an empty sky.
  io::FitsFile empty = io::FitsFile::create(dir_ / "empty.fits");
  empty.write_image(io::Image(48, 48, 0.0f));
  empty.close();
  r = testing::run_command(validate + " " + (dir_ / "empty.fits") + " --exposures 0,2 --overwrite --json " +
                           (dir_ / "v.jsonl"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("lowest held-out loss: " + output() + " ("), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("; " + (dir_ / "empty.fits") + " +"), std::string::npos) << r.output;
  std::ifstream both(dir_ / "v.jsonl");
  lines = 0;
  for (std::string line; std::getline(both, line);) ++lines;
  EXPECT_EQ(lines, 6) << "three lines for each image";
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
    const std::string expected = "--target-fwhm: must be a finite number in [0, 50], got " + value;
    r = train("--target-fwhm " + value);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << value << ": " << r.output;
    r = testing::run_command(std::string(ASTROCLEAR_EXE) + " rl -m " + (dir_ / "stack.toml") + " -o " + output() +
                             " -n 2 --target-fwhm " + value);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << value << ": " << r.output;
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
  EXPECT_EQ(out.hdu_count(), 1 + 2 + 1 + 3);  // latent, COVERAGE and MASK, COADD, CHI_000..002
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

// Every numeric option of every subcommand goes through one check (jobs/cli.hpp, add_number):
// finite, in its range, named in the message, refused before any work with exit 2.
TEST_F(BadInput, NumericOptionsMustBeFiniteAndInRange) {
  const std::string exe = ASTROCLEAR_EXE;
  const std::string stack = dir_ / "stack.toml";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train --learning-rate inf", "--learning-rate: must be a finite number in (0, 1], got inf"},
      {"train --learning-rate 1e30", "--learning-rate: must be a finite number in (0, 1], got 1e30"},
      {"train --learning-rate nan", "--learning-rate: must be a finite number in (0, 1], got nan"},
      {"train -n 0", "--iterations: must be a finite number in [1, 1e9], got 0"},
      {"train --seed -1", "--seed: must be a finite number in [0, "},
      {"train --threads -1", "--threads: must be a finite number in [0, "},
      {"train --threads 100000", "--threads: must be a finite number in [0, "},
      {"train --checkpoint-minutes nan", "--checkpoint-minutes: must be a finite number in [0, 1e6], got nan"},
      {"train --huber-delta 0", "--huber-delta: must be a finite number in (0, 1000], got 0"},
      {"train --kernel-sizes 3,-5", "--kernel-sizes: must be a finite number in [1, 4095], got -5"},
      {"mm --kappa 1", "--kappa: must be a finite number in (1, 1e6], got 1"},
      {"rl --pedestal -3", "--pedestal: must be a finite number in (0, 1e6], got -3"},
  };
  for (const auto& [args, message] : cases) {
    const std::string command = args.substr(0, args.find(' '));
    const testing::CommandResult r =
        testing::run_command(exe + " " + command + " -m " + stack + " -o " + output() + args.substr(args.find(' ')));
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << ": expected «" << message << "» in\n" << r.output;
  }
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"compare a.fits b.fits --tolerance nan", "--tolerance: must be a finite number in [0, 1e30], got nan"},
           {"compare a.fits b.fits --tolerance -1", "--tolerance: must be a finite number in [0, 1e30], got -1"},
           {"evaluate a.fits --truth . --threshold -1", "--threshold: must be a finite number in [0, 1e30], got -1"},
           {"evaluate a.fits --truth . --aperture nan", "--aperture: must be a finite number in [0, 10000], got nan"},
           {"simulate -o x --size 4", "--size: must be a finite number in [8, 100000], got 4"}}) {
    const testing::CommandResult r = testing::run_command(exe + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << ": expected «" << message << "» in\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(output()));
}

TEST_F(BadInput, BranchLargerThanTheImageIsRefusedBeforeAnyWork) {
  const testing::CommandResult r = train("--kernel-sizes 3,1001");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--kernel-sizes: a branch of 1001 px needs an image of at least 501 px a side, but the "
                          "stack is 48 x 48 px"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("c10::Error"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(output()));
}

// Note [output safety]: whatever --overwrite says, no run replaces a file it reads.
TEST_F(BadInput, AnOutputThatIsAnInputIsRefusedEvenWithOverwrite) {
  const std::string exe = ASTROCLEAR_EXE;
  const std::string stack = dir_ / "stack.toml";
  const auto size_of = [&](const std::string& name) { return fs::file_size(dir_ / name); };
  const auto manifest_size = size_of("stack.toml"), exposure_size = size_of("exp_001.fits");
  for (const std::string& command :
       {exe + " train -n 2 --threads 1 -m " + stack + " --overwrite -o " + stack,
        exe + " train -n 2 --threads 1 -m " + stack + " --overwrite -o " + (dir_ / "exp_001.fits"),
        exe + " train -n 2 --threads 1 -m " + stack + " --overwrite -o " + output() + " --preview " +
            (dir_ / "psf_000.fits"),
        exe + " coadd -m " + stack + " --overwrite -o " + (dir_ / "exp_001.fits"),
        exe + " mm -n 2 -m " + stack + " --overwrite -o " + stack}) {
    const testing::CommandResult r = testing::run_command(command);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.output;
    EXPECT_NE(r.output.find("one of this run's inputs; choose another output path"), std::string::npos)
        << command << ": " << r.output;
  }
  EXPECT_EQ(size_of("stack.toml"), manifest_size);
  EXPECT_EQ(size_of("exp_001.fits"), exposure_size);
  EXPECT_FALSE(fs::exists(output()));
  EXPECT_FALSE(fs::exists(dir_ / "stack.checkpoints"));
  EXPECT_FALSE(fs::exists(dir_ / "exp_001.checkpoints"));
}

TEST_F(BadInput, FoldersWhereFilesBelongAndFilesWhereFoldersBelong) {
  fs::create_directory(dir_ / "folder");
  testing::CommandResult r = testing::run_command(std::string(ASTROCLEAR_EXE) + " train -n 2 --overwrite -m " +
                                                  (dir_ / "stack.toml") + " -o " + (dir_ / "folder"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("folder: output is a folder; give a file name"), std::string::npos) << r.output;
  r = testing::run_command(std::string(ASTROCLEAR_EXE) + " train -m " + dir_.path().string() + " -o " + output());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is a folder, not a manifest file"), std::string::npos) << r.output;
  r = train("--resume " + (dir_ / "folder"));
  EXPECT_NE(r.output.find("--resume: " + (dir_ / "folder") + " is a folder"), std::string::npos) << r.output;
  std::ofstream(dir_ / "ck") << "a file";
  r = train("--checkpoint-dir " + (dir_ / "ck"));
  EXPECT_NE(r.output.find("--checkpoint-dir: " + (dir_ / "ck") + " is a file, not a folder"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(output()));
}

// Note [config files]
TEST_F(BadInput, ConfigFilesWithUnknownKeysOrBadSyntaxAreRefusedNamingThem) {
  const auto run_with = [&](const std::string& text) {
    std::ofstream(dir_ / "run.toml") << text;
    return testing::run_command(std::string(ASTROCLEAR_EXE) + " --config " + (dir_ / "run.toml") + " train -m " +
                                (dir_ / "stack.toml") + " -o " + output() + " --threads 1");
  };
  testing::CommandResult r = run_with("[train]\niteration = 5\n");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("[train] 'iteration' is not an option of train; did you mean 'iterations'?"),
            std::string::npos)
      << r.output;
  r = run_with("[trian]\niterations = 5\n");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'trian' is not a table of a subcommand"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'train'?"), std::string::npos) << r.output;
  r = run_with("iterations = 5\n");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'iterations' is not a table of a subcommand"), std::string::npos) << r.output;
  r = run_with("[train]\niterations = 5\nlearning-rate = \"0.01\n");  // an unterminated string on line 3
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("run.toml is not valid TOML"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" 3 | learning-rate = \"0.01"), std::string::npos) << "the line, numbered: " << r.output;
  r = run_with("[train]\niterations = 2\nlearning-rate = 0.005\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("learning_rate=0.005"), std::string::npos) << r.output;
}

// Note [diverged training]: an image that overflows float32 in the decoder makes the first loss
// infinite; the run stops there, naming the iteration, and writes nothing.
TEST_F(BadInput, ANonFiniteLossStopsTheRunNamingTheIteration) {
  io::FitsFile huge = io::FitsFile::create(dir_ / "huge.fits");
  huge.write_image(io::Image(48, 48, 3e38f));
  huge.close();
  const testing::CommandResult r = train("--warm-start " + (dir_ / "huge.fits") + " --checkpoint-every 1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("training diverged: the loss is "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" at iteration 1 (--learning-rate 0.01"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(output()));
  EXPECT_TRUE(!fs::exists(dir_ / "restored.checkpoints") || fs::is_empty(dir_ / "restored.checkpoints"))
      << "no checkpoint of a diverged state";
}

TEST_F(BadInput, AnExposureListedTwiceAndAMaskPlaneNameNoFileDefines) {
  std::string manifest;
  {
    std::ifstream in(dir_ / "stack.toml");
    manifest.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::ofstream(dir_ / "stack.toml", std::ios::app)
      << "\n[[exposure]]\nfile = \"exp_000.fits\"\npsf = \"psf_000.fits\"\n";
  expect_refused("exp_000.fits is already exposure #0; each exposure may be listed once");

  const auto at = manifest.find("bad_mask_bits = [");
  ASSERT_NE(at, std::string::npos) << manifest;
  manifest.insert(at + std::string("bad_mask_bits = [").size(), "\"GHOST\", ");
  std::ofstream(dir_ / "stack.toml", std::ios::trunc) << manifest;
  const testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(
      r.output.find("bad_mask_bits GHOST name no plane of this mask (nor an alias), so they reject nothing; its planes: "
                    "BAD, SAT"),
      std::string::npos)
      << r.output;
}

// Note [sky check]: an exposure with its sky still in is refused with the median in sigmas, and
// runs once the manifest asks for the median to be subtracted.
TEST_F(BadInput, AnExposureWithItsSkyStillInIsRefusedUnlessAskedToSubtractIt) {
  edit_exposure(1, [](io::Image& image, io::MaskImage&, io::Image& variance) {
    std::vector<float> v = variance.pixels;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    const float sky = 10.0f * std::sqrt(v[v.size() / 2]);
    for (float& p : image.pixels) p += sky;
  });
  const std::string said = "exp_001.fits[IMAGE]: its sky level is ";
  expect_refused(said);
  testing::CommandResult r = train();
  const auto at = r.output.find(said);
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_NEAR(std::stod(r.output.substr(at + said.size())), 10.0, 0.5) << r.output;
  EXPECT_NE(r.output.find("sigma from zero"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("set subtract_sky in the manifest's [stack]: \"median\" subtracts a constant, \"mesh\""),
            std::string::npos)
      << r.output;
  std::string manifest;
  {
    std::ifstream in(dir_ / "stack.toml");
    manifest.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  manifest.insert(manifest.find("[stack]\n") + 8, "subtract_sky = \"median\"\n");
  std::ofstream(dir_ / "stack.toml", std::ios::trunc) << manifest;
  r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("exp_001.fits[IMAGE]: subtract_sky = \"median\": subtracted "), std::string::npos) << r.output;
}

TEST_F(BadInput, ATruncatedExposureIsCalledTruncated) {
  const std::string path = dir_ / "exp_001.fits";
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_refused("exp_001.fits: no HDU with EXTNAME = 'VARIANCE': the file is truncated or damaged (");
}

TEST_F(BadInput, CompareCountsPixelsWithoutAValue) {
  io::FitsFile a = io::FitsFile::create(dir_ / "a.fits");
  a.write_image(io::Image(8, 8, 1.0f));
  a.close();
  io::FitsFile b = io::FitsFile::create(dir_ / "b.fits");
  b.write_image(io::Image(8, 8, std::nanf("")));
  b.close();
  const testing::CommandResult r = testing::run_command(std::string(ASTROCLEAR_EXE) + " compare " + (dir_ / "a.fits") +
                                                        " " + (dir_ / "b.fits") + " --tolerance 0.5");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("relative_l2 inf"), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find("not finite: 0 pixels in " + (dir_ / "a.fits") + " only, 64 in " + (dir_ / "b.fits") + " only"),
      std::string::npos)
      << r.output;
}

// NaN pixels are counted and reported by evaluate, never scored silently; an image with no finite
// pixel has nothing to score.
TEST_F(BadInput, EvaluateCountsPixelsWithoutAValueAndRefusesAnImageOfNone) {
  io::Image image(48, 48, 0.5f);
  for (int i = 0; i < 10; ++i) image.pixels[100 + 48 * i] = std::nanf("");
  for (const auto& [name, picture] : {std::pair{"some_nan.fits", image}, std::pair{"all_nan.fits",
                                      io::Image(48, 48, std::nanf(""))}}) {
    io::FitsFile f = io::FitsFile::create(dir_ / name);
    f.write_image(picture);
    f.close();
  }
  const std::string evaluate = std::string(ASTROCLEAR_EXE) + " evaluate --no-sweep --truth " + dir_.path().string() + " ";
  testing::CommandResult r = testing::run_command(evaluate + (dir_ / "some_nan.fits"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto row = r.output.find("pixels not finite (scored as 0)");
  ASSERT_NE(row, std::string::npos) << r.output;
  const std::string line = r.output.substr(row, r.output.find('\n', row) - row);
  EXPECT_EQ(line.substr(line.find_last_of(' ') + 1), "10") << "the 10 NaN pixels counted: " << line;
  r = testing::run_command(evaluate + (dir_ / "all_nan.fits"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("all_nan.fits: no pixel is finite (all NaN or infinite): nothing to score"),
            std::string::npos)
      << r.output;
}

// Note [run lock]: a run holding the output is never raced by a second one.
TEST_F(BadInput, ASecondRunOnTheSameOutputIsRefusedNamingTheHolder) {
  std::string warning;
  {
    io::RunLock held(output() + ".lock", output(), warning);  // this test process stands in for the first run
    ASSERT_TRUE(warning.empty()) << warning;
    const testing::CommandResult r = train();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(output() + " is in use by another run (host "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("pid " + std::to_string(::getpid())), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(output()));
  }
  EXPECT_FALSE(fs::exists(output() + ".lock")) << "released and removed";
  const testing::CommandResult r = train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(output() + ".lock"));
  EXPECT_FALSE(fs::exists(dir_ / "restored.checkpoints.lock"));
}

// Note [in-memory HDF5 writes]: a full disk while a checkpoint is written is an error like any
// other (it was a segmentation fault inside HDF5), and the checkpoints before it survive.
TEST_F(BadInput, AFullDiskDuringACheckpointEndsInAClearError) {
  const std::string full = dir_ / "full";
  fs::create_directory(full);
  if (std::system(
          ("mount -t tmpfs -o size=" + std::to_string(kFullDiskBytes) + " tmpfs " + full + " 2>/dev/null").c_str()) !=
      0) {
    GTEST_SKIP() << "cannot mount a size-limited tmpfs here (it needs root and the right to mount): the full-disk "
                    "case is not run";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { [[maybe_unused]] const int rc = std::system(("umount " + path).c_str()); }
  } unmount{full};
  const testing::CommandResult r = testing::run_command(
      std::string(ASTROCLEAR_EXE) + " train -m " + (dir_ / "stack.toml") + " -o " + output() + " --threads 1 -n 50 " +
      "--checkpoint-dir " + full + " --checkpoint-every 1 --keep-checkpoints 1000");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(full + "/checkpoint_"), std::string::npos) << "the message names the file: " << r.output;
  EXPECT_FALSE(fs::exists(output()));
  int whole = 0;
  for (const auto& entry : fs::directory_iterator(full)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "a temporary file was left: " << name;
    if (name.rfind("checkpoint_", 0) == 0) {
      EXPECT_NO_THROW(io::read_checkpoint_file(entry.path().string(), true)) << name;
      ++whole;
    }
  }
  EXPECT_GE(whole, 1) << "the checkpoints written before the disk filled are kept";
}

}  // namespace
}  // namespace astroclear
