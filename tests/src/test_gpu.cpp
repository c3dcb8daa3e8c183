// GPU tests: the CUDA path gives the CPU result (Cuda.*, label gpu, skipped where no CUDA device is
// visible); TF32 and bf16 stay close to float32 (bf16 on the CPU too).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "jobs/stack_loader.hpp"
#include "common/error.hpp"
#include "src/depthwise_conv.hpp"
#include "src/psf_decoder.hpp"
#include "src/trainer.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

/// 20 iterations of the default configuration in `precision` on the stack in `dir`, on `device`:
/// latent and losses.
std::pair<torch::Tensor, std::vector<double>> train_20(const std::filesystem::path& dir, torch::Device device,
                                                       Precision precision = Precision::kFloat32) {
  mpi::LocalCommunicator comm;
  TrainConfig config;
  config.iterations = 20;
  config.precision = precision;
  jobs::LoadedStack loaded = jobs::load_stack(dir / "stack.toml", comm);
  loaded.stack.normalise(comm);
  loaded.stack.to_for_training(device);
  Trainer trainer(config, loaded.stack, comm, device);
  trainer.train();
  return {trainer.latent(), trainer.loss_history()};
}

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible";
    // Float32 everywhere for the comparison (LibTorch 2.x lets cuDNN use TF32 by default).
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
};

TEST_F(Cuda, DecodersAgreeOnTheGpu) {
  std::vector<torch::Tensor> psfs;
  for (int k : {41, 33, 3}) {
    torch::Tensor p = torch::rand({k, k});
    psfs.push_back(p / p.sum());
  }
  torch::Tensor latent = torch::rand({100, 77}) * 10;
  torch::Tensor cpu = PsfDecoder(psfs, 100, 77, PsfDecoder::Mode::kDirect, torch::kCPU).forward(latent);
  for (auto mode : {PsfDecoder::Mode::kDirect, PsfDecoder::Mode::kFft}) {
    torch::Tensor gpu = PsfDecoder(psfs, 100, 77, mode, torch::kCUDA).forward(latent.cuda()).cpu();
    EXPECT_LT(((gpu - cpu).norm() / cpu.norm()).item<double>(), 1e-5);
  }
}

TEST_F(Cuda, TrainingMatchesTheCpu) {
  testing::TempDir dir;
  testing::simulate_into(dir.path().string(), 6, 64, 72, 8);
  auto [cpu_latent, cpu_loss] = train_20(dir.path(), torch::kCPU);
  auto [gpu_latent, gpu_loss] = train_20(dir.path(), torch::kCUDA);
  const double diff = ((gpu_latent - cpu_latent).norm() / cpu_latent.norm()).item<double>();
  std::printf("CUDA vs CPU after 20 iterations: latent relative L2 %.3g, final loss %.6f vs %.6f\n", diff,
              gpu_loss.back(), cpu_loss.back());
  EXPECT_LT(diff, 1e-3);
  EXPECT_NEAR(gpu_loss.back(), cpu_loss.back(), 1e-4 * cpu_loss.back());
}

// --tf32 on: the same training with TF32 convolutions and matrix products stays close to float32
// (TF32 keeps 10 mantissa bits: a relative rounding of about 5e-4 per product).
TEST_F(Cuda, Tf32StaysCloseToFloat32) {
  testing::TempDir dir;
  testing::simulate_into(dir.path().string(), 6, 64, 72, 8);
  auto run = [&](bool tf32) {
    at::globalContext().setAllowTF32CuDNN(tf32);
    at::globalContext().setAllowTF32CuBLAS(tf32);
    return train_20(dir.path(), torch::kCUDA);
  };
  auto [tf32_latent, tf32_loss] = run(true);
  auto [fp32_latent, fp32_loss] = run(false);
  const double diff = ((tf32_latent - fp32_latent).norm() / fp32_latent.norm()).item<double>();
  std::printf("TF32 vs float32 on CUDA after 20 iterations: latent relative L2 %.3g, final loss %.6f vs %.6f\n", diff,
              tf32_loss.back(), fp32_loss.back());
  EXPECT_LT(diff, 1e-2);
  EXPECT_NEAR(tf32_loss.back(), fp32_loss.back(), 1e-3 * fp32_loss.back());
}

/// The latent's relative L2 difference and the final losses of bf16 against float32 training.
void expect_bf16_close_to_float32(torch::Device device) {
  testing::TempDir dir;
  testing::simulate_into(dir.path().string(), 6, 64, 72, 8);
  auto [bf16_latent, bf16_loss] = train_20(dir.path(), device, Precision::kBf16);
  auto [fp32_latent, fp32_loss] = train_20(dir.path(), device, Precision::kFloat32);
  const double diff = ((bf16_latent - fp32_latent).norm() / fp32_latent.norm()).item<double>();
  std::printf("bf16 vs float32 on %s after 20 iterations: latent relative L2 %.3g, final loss %.6f vs %.6f\n",
              device.str().c_str(), diff, bf16_loss.back(), fp32_loss.back());
  EXPECT_GT(diff, 0) << "bf16 did not change the arithmetic";
  // bf16 keeps 8 significant bits, a relative rounding of 2^-9 = 2e-3 per stored value: measured on
  // the CPU, 1.5e-2 for the latent and 1.6e-3 for the loss.
  EXPECT_LT(diff, 3e-2);
  EXPECT_NEAR(bf16_loss.back(), fp32_loss.back(), 4e-3 * fp32_loss.back());
}

// --precision bf16 (Note [bf16 encoder]): LibTorch's operations in bf16 on the CPU, the GPU's
// arithmetic up to the order of the sums.
TEST(Precision, Bf16EncoderStaysCloseToFloat32) { expect_bf16_close_to_float32(torch::kCPU); }

TEST_F(Cuda, Bf16EncoderStaysCloseToFloat32) { expect_bf16_close_to_float32(torch::kCUDA); }

TEST(Precision, Bf16ReflectPadEqualsFloat32s) {
  const torch::Tensor images = torch::randn({1, 3, 9, 11});
  for (std::int64_t pad : {1, 3}) {
    EXPECT_TRUE(torch::equal(reflect_pad(images.to(torch::kBFloat16), pad),
                             reflect_pad(images, pad).to(torch::kBFloat16)));
  }
}

// The precision is parsed once, by name, when the command line is read: an unknown one is
// refused there (exit 2) with the allowed values, before any work.
TEST(Precision, AnUnknownPrecisionIsAnError) {
  testing::TempDir dir;
  const testing::CommandResult r =
      testing::run_command(std::string(ASTROCLEAR_EXE) + " train -m " + dir / "stack.toml" + " -o " + dir / "out.fits" +
                           " --precision fp16");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--precision: 'fp16' is not one of float32, bf16"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "out.fits"));
}

}  // namespace
}  // namespace astroclear
