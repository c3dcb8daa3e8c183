// Checkpoint files and folders: the HDF5 format round trip, verification, and the store's
// write-verify-rename, keep-K pruning and latest.h5 pointer.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/checkpoint_file.hpp"
#include "io/checkpoint_store.hpp"
#include "io/fits_file.hpp"
#include "common/error.hpp"
#include "tests/test_support.hpp"

#ifndef ASTROCLEAR_EXE
#error "ASTROCLEAR_EXE must name the astroclear executable"
#endif

namespace astroclear {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

io::FloatArray array_of(std::vector<std::int64_t> shape, float start) {
  io::FloatArray a;
  a.shape = std::move(shape);
  std::int64_t count = 1;
  for (auto d : a.shape) count *= d;
  for (std::int64_t i = 0; i < count; ++i) a.values.push_back(start + 0.25f * static_cast<float>(i));
  return a;
}

io::Checkpoint sample_checkpoint(std::int64_t iteration) {
  io::Checkpoint c;
  c.iteration = iteration;
  c.ranks = 3;
  c.created_utc = "2026-11-23T10:00:00";
  c.software_version = "0.1.0";
  c.config = {{"kernel_sizes", "[3,5]"}, {"learning_rate", "0.01"}};
  for (std::int64_t i = 0; i < iteration; ++i) c.loss_history.push_back(1.0 / static_cast<double>(i + 1));
  c.manifest = "field/stack.toml";
  c.height = 4;
  c.width = 6;
  c.flux_unit = 12.5;
  c.inputs = {{"exp_000.fits", "psf_000.fits", 0x1234}, {"exp_001.fits", "psf_001.fits", 0xFEDCBA9876543210ULL}};
  io::CheckpointTensor weight{"depthwise_weight_0", true, array_of({2, 1, 3, 3}, 1), array_of({2, 1, 3, 3}, -1),
                              array_of({2, 1, 3, 3}, 2), 7};
  io::CheckpointTensor bias{"pointwise_bias", false, array_of({1}, 0.5f), array_of({1}, 0), array_of({1}, 0), 7};
  c.tensors = {weight, bias};
  c.latent = array_of({4, 6}, 3);
  return c;
}

TEST(CheckpointFile, RoundTripKeepsEveryField) {
  TempDir dir;
  const io::Checkpoint c = sample_checkpoint(5);
  io::write_checkpoint_file(dir / "c.h5", c);
  const io::Checkpoint r = io::read_checkpoint_file(dir / "c.h5", true);
  EXPECT_EQ(r.iteration, 5);
  EXPECT_EQ(r.ranks, 3);
  EXPECT_EQ(r.created_utc, c.created_utc);
  EXPECT_EQ(r.config, c.config);
  EXPECT_EQ(r.loss_history, c.loss_history);
  EXPECT_EQ(r.manifest, c.manifest);
  EXPECT_EQ(r.height, 4);
  EXPECT_EQ(r.width, 6);
  EXPECT_EQ(r.flux_unit, 12.5);
  ASSERT_EQ(r.inputs.size(), 2u);
  EXPECT_EQ(r.inputs[1].file, "exp_001.fits");
  EXPECT_EQ(r.inputs[1].psf, "psf_001.fits");
  EXPECT_EQ(r.inputs[1].checksum, 0xFEDCBA9876543210ULL);
  ASSERT_EQ(r.tensors.size(), 2u);
  EXPECT_EQ(r.tensors[0].name, "depthwise_weight_0");
  EXPECT_TRUE(r.tensors[0].sharded);
  EXPECT_FALSE(r.tensors[1].sharded);
  EXPECT_EQ(r.tensors[0].adam_step, 7);
  EXPECT_EQ(r.tensors[0].value.shape, (std::vector<std::int64_t>{2, 1, 3, 3}));
  EXPECT_EQ(r.tensors[0].value.values, c.tensors[0].value.values);
  EXPECT_EQ(r.tensors[0].exp_avg.values, c.tensors[0].exp_avg.values);
  EXPECT_EQ(r.tensors[0].exp_avg_sq.values, c.tensors[0].exp_avg_sq.values);
  EXPECT_EQ(r.latent.values, c.latent.values);
  EXPECT_TRUE(io::read_checkpoint_file(dir / "c.h5", false).latent.values.empty());
}

TEST(CheckpointFile, ABitFlipInTheLatentImageIsFoundWithOrWithoutReadingIt) {
  TempDir dir;
  io::Checkpoint c = sample_checkpoint(5);
  c.latent.values.assign(c.latent.values.size(), 7777.25f);  // a pattern found only in /latent
  io::write_checkpoint_file(dir / "c.h5", c);
  std::fstream file(dir / "c.h5", std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const float value = 7777.25f;
  std::string pattern(sizeof(float), '\0');
  std::memcpy(pattern.data(), &value, sizeof(float));
  const std::size_t at = bytes.find(pattern + pattern + pattern);
  ASSERT_NE(at, std::string::npos) << "the latent image is stored contiguously";
  file.seekp(static_cast<std::streamoff>(at + sizeof(float) + 1));
  file.put(static_cast<char>(bytes[at + sizeof(float) + 1] ^ 0x10));  // one bit of the second pixel
  file.close();
  for (const bool with_latent : {true, false}) {
    try {
      io::read_checkpoint_file(dir / "c.h5", with_latent);
      ADD_FAILURE() << "a flipped bit in /latent was not found (with_latent " << with_latent << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("dataset /latent: checksum"), std::string::npos) << e.what();
    }
  }
  const testing::CommandResult r = testing::run_command(std::string(ASTROCLEAR_EXE) + " inspect " + (dir / "c.h5"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dataset /latent: checksum"), std::string::npos) << r.output;
}

TEST(CheckpointFile, NotACheckpointIsNamed) {
  TempDir dir;
  std::ofstream(dir / "x.h5") << "plain text, not HDF5";
  try {
    io::read_checkpoint_file(dir / "x.h5");
    FAIL() << "a text file was read as a checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.h5: opening the HDF5 file failed"), std::string::npos) << e.what();
  }
}

TEST(CheckpointStore, KeepsTheNewestKAndPointsLatestAtTheLastSaved) {
  TempDir dir;
  io::CheckpointStore store(dir / "ck", 2);
  for (std::int64_t it : {10, 20, 30}) store.save(sample_checkpoint(it));
  const auto paths = store.candidates();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(fs::path(paths[0]).filename(), "checkpoint_00000030.h5");
  EXPECT_EQ(fs::path(paths[1]).filename(), "checkpoint_00000020.h5");
  EXPECT_EQ(fs::read_symlink(dir / "ck/latest.h5"), "checkpoint_00000030.h5");
  EXPECT_EQ(io::read_checkpoint_file(dir / "ck/latest.h5").iteration, 30);
}

}  // namespace
}  // namespace astroclear
