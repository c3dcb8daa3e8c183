// Restart through the executable: exact continuation in a new process, and every way a checkpoint
// can be unusable (killed writer, truncation, flipped byte, other inputs, other configuration).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "common/error.hpp"
#include "io/checkpoint_file.hpp"
#include "io/checkpoint_store.hpp"
#include "io/fits_file.hpp"
#include "jobs/checkpointing.hpp"
#include "jobs/stack_loader.hpp"
#include "mpi/communicator.hpp"
#include "tests/test_support.hpp"

#ifndef ASTROCLEAR_EXE
#error "ASTROCLEAR_EXE must name the astroclear executable"
#endif

namespace astroclear {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::TempDir;

/// Offset and size in the file of a contiguous dataset, from h5dump's storage layout.
std::pair<long, long> dataset_bytes(const std::string& file, const std::string& dataset) {
  const CommandResult r = testing::run_command("h5dump -p -H -d " + dataset + " " + file);
  std::smatch m;
  const std::regex layout(R"(SIZE (\d+)[^O]*OFFSET (\d+))");
  if (r.exit_code != 0 || !std::regex_search(r.output, m, layout)) return {-1, -1};
  return {std::stol(m[2]), std::stol(m[1])};
}

void flip_byte(const std::string& file, long offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char byte = 0;
  f.get(byte);
  f.seekp(offset);
  f.put(static_cast<char>(byte ^ 0x10));
}

void truncate_to_half(const std::string& file) { fs::resize_file(file, fs::file_size(file) / 2); }

std::vector<float> latent_of(const std::string& fits) { return io::FitsFile::open(fits).read_image().pixels; }

/// Whether two images are the same bit for bit (NaN included: pixels no exposure measured).
::testing::AssertionResult bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << a.size() << " pixels against " << b.size();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "pixel " << i << ": " << a[i] << " against " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// A stack and runs of `astroclear train` on it, each with its own checkpoint folder.
class Restart : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TempDir;
    testing::simulate_into(stack_->path().string(), 5, 64, 64, 3);
    // The reference: 40 iterations never interrupted.
    const CommandResult r = run(*stack_ / "straight.fits", 40, *stack_ / "straight.ck", "");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete stack_; }

  static CommandResult run(const std::string& output, int iterations, const std::string& checkpoints,
                           const std::string& extra, const std::string& manifest = "") {
    return testing::run_command(std::string(ASTROCLEAR_EXE) + " train -m " +
                                (manifest.empty() ? *stack_ / "stack.toml" : manifest) + " -o " + output + " -n " +
                                std::to_string(iterations) + " --threads 1 --log-every 10 --checkpoint-dir " +
                                checkpoints + " " + extra);
  }
  CommandResult train(int iterations, const std::string& extra = "") {
    return run(dir_ / "out.fits", iterations, ck(), extra);
  }
  std::string ck() const { return dir_ / "ck"; }
  std::string ck(int iteration) const {
    char name[32];
    std::snprintf(name, sizeof(name), "/checkpoint_%08d.h5", iteration);
    return ck() + name;
  }
  static void expect_in(const CommandResult& r, const std::string& text) {
    EXPECT_NE(r.output.find(text), std::string::npos) << "expected «" << text << "» in:\n" << r.output;
  }
  void expect_equals_straight_run() {
    EXPECT_TRUE(bitwise_equal(latent_of(dir_ / "out.fits"), latent_of(*stack_ / "straight.fits")))
        << "latent images differ";
    const io::Checkpoint mine = io::read_checkpoint_file(ck(40));
    const io::Checkpoint straight = io::read_checkpoint_file(*stack_ / "straight.ck/checkpoint_00000040.h5");
    ASSERT_EQ(mine.tensors.size(), straight.tensors.size());
    for (std::size_t i = 0; i < mine.tensors.size(); ++i) {
      EXPECT_EQ(mine.tensors[i].value.values, straight.tensors[i].value.values) << mine.tensors[i].name;
      EXPECT_EQ(mine.tensors[i].exp_avg.values, straight.tensors[i].exp_avg.values) << mine.tensors[i].name;
      EXPECT_EQ(mine.tensors[i].exp_avg_sq.values, straight.tensors[i].exp_avg_sq.values) << mine.tensors[i].name;
      EXPECT_EQ(mine.tensors[i].adam_step, 40);
    }
    EXPECT_EQ(mine.loss_history, straight.loss_history);
    // The held-out record (Note [early stopping]) continues exactly too.
    EXPECT_EQ(mine.held_out, straight.held_out);
    EXPECT_EQ(mine.validation.iterations, straight.validation.iterations);
    EXPECT_EQ(mine.validation.losses, straight.validation.losses);
    EXPECT_EQ(mine.validation.best_latent.values, straight.validation.best_latent.values);
    EXPECT_EQ(mine.validation.iterations, (std::vector<std::uint64_t>{0, 10, 20, 30, 40}));
  }

  static TempDir* stack_;
  TempDir dir_;
};
TempDir* Restart::stack_ = nullptr;

TEST_F(Restart, TwentyPlusTwentyInANewProcessIsBitwiseEqualToForty) {
  CommandResult r = train(20);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::remove(dir_ / "out.fits");
  r = train(40, "--resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "resumed from " + ck(20) + " at iteration 20");
  expect_in(r, "iterations 21-40 run in this process");
  expect_equals_straight_run();
}

TEST_F(Restart, KillDuringTheCheckpointWriteLeavesThePreviousOneToResumeFrom) {
  CommandResult r = train(40, "--checkpoint-every 10 --test-kill-midway-at 20");
  ASSERT_EQ(r.exit_code, 128 + 9) << "expected death by SIGKILL\n" << r.output;
  EXPECT_FALSE(fs::exists(ck(20))) << "a half-written checkpoint took the final name";
  EXPECT_EQ(io::read_checkpoint_file(ck() + "/latest.h5").iteration, 10);
  bool temporary_left = false;
  for (const auto& e : fs::directory_iterator(ck())) temporary_left |= e.path().string().find(".tmp.") != std::string::npos;
  EXPECT_TRUE(temporary_left) << "the test hook did not stop the write halfway";

  r = train(40, "--checkpoint-every 10 --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "left by an interrupted write");
  expect_in(r, "resumed from " + ck(10) + " at iteration 10");
  expect_equals_straight_run();
}

TEST_F(Restart, TruncatedLatestIsReportedAndThePreviousUsed) {
  ASSERT_EQ(train(30, "--checkpoint-every 10").exit_code, 0);
  truncate_to_half(ck(30));
  const CommandResult r = train(40, "--resume auto --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "skipping checkpoint " + ck(30) + ": opening the HDF5 file failed");
  expect_in(r, "resumed from " + ck(20) + " at iteration 20");
  expect_equals_straight_run();
}

TEST_F(Restart, FlippedByteInADatasetIsReportedAndThePreviousUsed) {
  ASSERT_EQ(train(30, "--checkpoint-every 10").exit_code, 0);
  const auto [offset, size] = dataset_bytes(ck(30), "/parameters/depthwise_weight_1");
  ASSERT_GT(offset, 0) << "h5dump did not give the dataset's offset";
  flip_byte(ck(30), offset + size / 2);
  const CommandResult r = train(40, "--resume auto --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, ck(30) + ": dataset /parameters/depthwise_weight_1: checksum");
  expect_in(r, "the file is corrupt");
  expect_in(r, "resumed from " + ck(20) + " at iteration 20");
  expect_equals_straight_run();
}

TEST_F(Restart, CorruptCheckpointNamedExplicitlyIsRefused) {
  ASSERT_EQ(train(20).exit_code, 0);
  const auto [offset, size] = dataset_bytes(ck(20), "/adam/exp_avg_sq/norm_weight_0");
  ASSERT_GT(offset, 0);
  flip_byte(ck(20), offset + 1);
  const CommandResult r = run(dir_ / "other.fits", 40, dir_ / "ck2", "--resume " + ck(20));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_in(r, ck(20) + ": dataset /adam/exp_avg_sq/norm_weight_0: checksum");
  EXPECT_FALSE(fs::exists(dir_ / "other.fits"));
}

TEST_F(Restart, CheckpointOfAnotherStackIsRefused) {
  testing::simulate_into(dir_ / "other", 5, 64, 64, 4);
  ASSERT_EQ(run(dir_ / "o.fits", 10, dir_ / "other.ck", "", dir_ / "other/stack.toml").exit_code, 0);
  const CommandResult r = train(20, "--resume " + dir_ / "other.ck/latest.h5");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_in(r, "other.ck/latest.h5 is a checkpoint of other inputs: exposure 0 (");
  expect_in(r, "has pixel checksum");
  EXPECT_FALSE(fs::exists(dir_ / "out.fits"));
}

TEST_F(Restart, CheckpointOfOtherKernelSizesIsRefused) {
  ASSERT_EQ(train(10).exit_code, 0);
  fs::remove(dir_ / "out.fits");
  const CommandResult r = train(20, "--resume auto --kernel-sizes 3,5");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_in(r, "was written with kernel_sizes=[3,5,7]; this run asks for kernel_sizes=[3,5]: an incompatible configuration");
  EXPECT_FALSE(fs::exists(dir_ / "out.fits"));
  EXPECT_TRUE(fs::exists(ck(10))) << "a refused resume must leave the checkpoint alone";
}

// Note [warm start]: the latent image training begins at is the warm start's; a resume must start
// from the same image.
TEST_F(Restart, WarmStartBeginsAtTheImageAndMustBeTheSameToResume) {
  const std::string rl = std::string(ASTROCLEAR_EXE) + " rl -m " + *stack_ / "stack.toml" + " --threads 1 -n ";
  ASSERT_EQ(testing::run_command(rl + "20 -o " + dir_ / "rl.fits").exit_code, 0);
  ASSERT_EQ(testing::run_command(rl + "30 -o " + dir_ / "rl30.fits").exit_code, 0);
  // One step of a vanishing learning rate: the image written is the image training began at.
  CommandResult r =
      run(dir_ / "start.fits", 1, dir_ / "start.ck", "--learning-rate 1e-12 --warm-start " + dir_ / "rl.fits");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<float> start = latent_of(dir_ / "start.fits"), image = latent_of(dir_ / "rl.fits");
  ASSERT_EQ(start.size(), image.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < image.size(); ++i) {
    ASSERT_EQ(std::isnan(start[i]), std::isnan(image[i])) << "pixel " << i;  // no data: NaN in both
    if (std::isnan(image[i])) continue;
    diff += (start[i] - image[i]) * (start[i] - image[i]);
    norm += image[i] * image[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-6) << "the warm start is not where training begins";
  ASSERT_EQ(train(10, "--warm-start " + dir_ / "rl.fits").exit_code, 0);
  fs::remove(dir_ / "out.fits");
  r = train(20, "--resume auto --warm-start " + dir_ / "rl30.fits");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_in(r, "warm_start=");
  EXPECT_FALSE(fs::exists(dir_ / "out.fits"));
  r = train(20, "--resume auto --warm-start " + dir_ / "rl.fits");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "resumed from " + ck(10) + " at iteration 10");
}

TEST_F(Restart, AnotherPrecisionResumesAndIsLogged) {
  ASSERT_EQ(train(10).exit_code, 0);
  fs::remove(dir_ / "out.fits");
  const CommandResult r = train(15, "--resume auto --precision bf16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "resume: precision was float32, now bf16");
  expect_in(r, "resumed from " + ck(10) + " at iteration 10");
  EXPECT_TRUE(fs::exists(ck(15)));
}

TEST_F(Restart, EarlierCheckpointsAreNotOverwrittenWithoutAsking) {
  ASSERT_EQ(train(10).exit_code, 0);
  CommandResult r = run(dir_ / "second.fits", 10, ck(), "");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_in(r, "holds checkpoints of an earlier run");
  expect_in(r, "pass --resume auto to continue it, or --overwrite to start over");
  EXPECT_TRUE(fs::exists(ck(10)));
  r = run(dir_ / "second.fits", 5, ck(), "--overwrite");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(ck(10))) << "--overwrite starts over";
  EXPECT_TRUE(fs::exists(ck(5)));
}

TEST_F(Restart, ResumeAutoStartsFreshWithoutCheckpointsAndFinishesAtOnceWhenDone) {
  CommandResult r = train(20, "--resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "no usable checkpoint in " + ck() + ", starting fresh");
  r = train(20, "--resume auto --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "resumed from " + ck(20) + " at iteration 20");
  EXPECT_EQ(r.output.find("iter "), std::string::npos) << "a finished run trained again:\n" << r.output;
}

TEST_F(Restart, InspectPrintsIterationLossConfigInputsAndRanks) {
  ASSERT_EQ(train(20).exit_code, 0);
  const CommandResult r = testing::run_command(std::string(ASTROCLEAR_EXE) + " inspect " + ck());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "checkpoint  " + ck(20));
  expect_in(r, "iteration   20\n");
  expect_in(r, "loss        0.");
  expect_in(r, "ranks       1\n");
  expect_in(r, "kernel_sizes=[3,5,7] huber_delta=1 learning_rate=0.01");
  expect_in(r, "inputs      5 exposures of 64x64 px");
  expect_in(r, "exp_004.fits  psf ");
}

// --stop best (the default): the output is the latent image of the lowest held-out loss, the
// header names that iteration and its loss, and `validate` on the held-out exposure gives that
// loss back from the output alone.
TEST_F(Restart, StopBestKeepsTheIterationItReportsAndValidateAgrees) {
  const CommandResult r = train(60, "--validate-every 5 --patience 15 --learning-rate 0.05");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_in(r, "held out: rank 0: exposures ");
  io::FitsFile out = io::FitsFile::open(dir_ / "out.fits");
  const int kept = static_cast<int>(*out.read_double("ACVALIT"));
  const double loss = *out.read_double("ACVALLOS");
  EXPECT_EQ(*out.read_double("ACVALN"), 1);
  EXPECT_EQ(*out.read_string("ACSTOP"), "best");
  const io::Checkpoint c = io::read_checkpoint_file(ck() + "/latest.h5", /*with_latent=*/true);
  ASSERT_EQ(c.held_out.size(), 1u);
  const auto& v = c.validation;
  const auto lowest = std::min_element(v.losses.begin(), v.losses.end()) - v.losses.begin();
  EXPECT_EQ(static_cast<int>(v.iterations[lowest]), kept);
  EXPECT_NEAR(v.losses[lowest], loss, 1e-7 * loss);
  // the kept latent image, with NaN where no exposure measured (Note [coverage])
  const std::vector<float> written = latent_of(dir_ / "out.fits");
  std::vector<float> best = v.best_latent.values;
  for (std::size_t i = 0; i < best.size() && i < written.size(); ++i) {
    if (std::isnan(written[i])) best[i] = written[i];
  }
  EXPECT_TRUE(bitwise_equal(written, best)) << "the output is not the kept latent image";
  if (c.iteration < 60) {
    expect_in(r, "none lower in the ");
    EXPECT_GE(c.iteration - kept, 15) << "stopped before the patience ran out";
  }
  const std::string held_out = std::to_string(c.held_out[0]);
  const CommandResult check = testing::run_command(std::string(ASTROCLEAR_EXE) + " validate " + dir_ / "out.fits" +
                                                   " -m " + *stack_ / "stack.toml" + " --exposures " + held_out);
  ASSERT_EQ(check.exit_code, 0) << check.output;
  char expected[64];
  std::snprintf(expected, sizeof(expected), "over the 1 exposure(s): %.9g", loss);
  EXPECT_NE(check.output.find(expected), std::string::npos) << "expected «" << expected << "» in:\n" << check.output;
}

TEST_F(Restart, CheckpointHoldingOutOtherExposuresIsRefused) {
  ASSERT_EQ(train(10).exit_code, 0);
  fs::remove(dir_ / "out.fits");
  const CommandResult r = train(20, "--resume auto --validation-exposures 2");
  EXPECT_EQ(r.exit_code, 1);
  expect_in(r, "was written holding out exposures [");
  expect_in(r, "(resume with the same --validation-exposures");
}

TEST_F(Restart, H5dumpListsTheDocumentedLayout) {
  ASSERT_EQ(train(5).exit_code, 0);
  const CommandResult r = testing::run_command("h5dump -H " + ck() + "/latest.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"ATTRIBUTE \"format\"", "ATTRIBUTE \"format_version\"", "ATTRIBUTE \"iteration\"",
                           "ATTRIBUTE \"ranks\"", "ATTRIBUTE \"checksum\"", "GROUP \"config\"",
                           "ATTRIBUTE \"kernel_sizes\"", "GROUP \"inputs\"", "DATASET \"files\"",
                           "DATASET \"checksums\"", "DATASET \"loss_history\"", "DATASET \"latent\"",
                           "GROUP \"parameters\"", "DATASET \"depthwise_weight_2\"", "DATASET \"pointwise_bias\"",
                           "GROUP \"adam\"", "GROUP \"exp_avg\"", "GROUP \"exp_avg_sq\"",
                           "DATASET \"held_out\"", "GROUP \"validation\"", "DATASET \"losses\"",
                           "DATASET \"best_latent\"",
                           // 5 exposures, 1 held out by default: the sharded axis runs over the 4 fitted
                           "DATASPACE  SIMPLE { ( 4, 1, 7, 7 ) / ( 4, 1, 7, 7 ) }",
                           "DATASPACE  SIMPLE { ( 64, 64 ) / ( 64, 64 ) }"}) {
    expect_in(r, name);
  }
}

// Note [input fingerprint]: checkpoints of format 3 name each input by a fingerprint that any tile
// grid computes; those of formats 1 and 2 by a checksum of its whole planes, which only a run that
// reads whole exposures can compare.
TEST(CheckpointInputs, EarlierFormatsAreComparedByWholePlaneChecksumsAndRefusedOnTiles) {
  TempDir dir;
  testing::simulate_into(dir.path().string(), 3, 40, 36, 4);
  mpi::LocalCommunicator local;
  jobs::LoadedStack loaded = jobs::load_stack(dir / "stack.toml", local);
  const TrainConfig config;
  io::Checkpoint c;
  c.height = 40;
  c.width = 36;
  for (const Setting& s : config.settings()) c.config.emplace_back(s.key, s.value);
  const auto& exposures = loaded.plan.spec.exposures;
  for (std::size_t t = 0; t < exposures.size(); ++t) {
    c.inputs.push_back({exposures[t].label(), exposures[t].psf, loaded.checksums[t]});
    EXPECT_NE(loaded.plane_checksums[t], loaded.checksums[t]);
  }
  EXPECT_NO_THROW(jobs::check_compatible(c, "now.h5", loaded, config));
  c.format_version = 2;  // the same inputs, named as format 2 named them
  testing::expect_error([&] { jobs::check_compatible(c, "old.h5", loaded, config); }, "has pixel checksum");
  for (std::size_t t = 0; t < exposures.size(); ++t) c.inputs[t].checksum = loaded.plane_checksums[t];
  EXPECT_NO_THROW(jobs::check_compatible(c, "old.h5", loaded, config));
  c.inputs[1].checksum ^= 1;
  testing::expect_error([&] { jobs::check_compatible(c, "old.h5", loaded, config); }, "exposure 1 (");
  c.inputs[1].checksum ^= 1;
  std::fill(loaded.plane_checksums.begin(), loaded.plane_checksums.end(), 0);  // as read on tiles
  testing::expect_error([&] { jobs::check_compatible(c, "old.h5", loaded, config); },
                        "old.h5 is a checkpoint of format 2 (astroclear ), which identifies its inputs by checksums of "
                        "whole exposures, and exposures on tiles are read in parts: resume it once without --tiles");
  for (auto& [key, value] : c.config) {
    if (key == "psf_tiles") value = "2x1";  // its PSFs depend on the grid: it resumes on its grid alone
  }
  testing::expect_error([&] { jobs::check_compatible(c, "old.h5", loaded, config); },
                        "written with --psf-per-tile on tiles, it cannot be resumed; start over without --resume");
}

}  // namespace
}  // namespace astroclear
