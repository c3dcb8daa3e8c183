// GPU tests: the CUDA path gives the CPU result. Skipped (label gpu) where no CUDA device is visible.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <utility>
#include <vector>

#include "jobs/stack_loader.hpp"
#include "src/psf_decoder.hpp"
#include "src/trainer.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

/// 20 iterations of the default configuration on the stack in `dir`, on `device`: latent and losses.
std::pair<torch::Tensor, std::vector<double>> train_20(const std::filesystem::path& dir, torch::Device device) {
  mpi::LocalCommunicator comm;
  TrainConfig config;
  config.iterations = 20;
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

}  // namespace
}  // namespace astroclear
