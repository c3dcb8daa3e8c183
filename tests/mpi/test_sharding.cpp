// Exposure sharding on real ranks: any split trains the same encoder as one process.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "jobs/stack_loader.hpp"
#include "eval/image_mm.hpp"
#include "eval/richardson_lucy.hpp"
#include "src/trainer.hpp"
#include "src/validation.hpp"
#include "tests/mpi/held_out_restoration.hpp"
#include "tests/mpi/mpi_test_env.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

using testing::on_all_ranks;

class Sharding : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    comm_ = testing::g_mpi_env->make_communicator(mpi::Backend::kMpi, -1);
    // Rank 0 writes the stack; every rank reads its own exposures of it (7 of 80 x 96: uneven splits).
    manifest_ = testing::simulated_manifest(*comm_, dir_, 7, 80, 96, 99);
    config_.iterations = 30;
  }

  std::unique_ptr<mpi::Communicator> comm_;
  std::unique_ptr<testing::TempDir> dir_;  // rank 0 only
  std::string manifest_;
  TrainConfig config_;
};

TEST_F(Sharding, SameLossCurveAndLatentForAnySplit) {
  for (const Init init : {Init::kIdentity, Init::kRandom}) {
    config_.init = init;
    jobs::LoadedStack sharded = jobs::load_stack(manifest_, *comm_);
    sharded.stack.normalise(*comm_);
    Trainer trainer(config_, sharded.stack, *comm_, torch::kCPU);
    trainer.train();
    const std::vector<double> losses = trainer.loss_history();
    const torch::Tensor latent = trainer.latent();

    bool ok = true;
    if (comm_->rank() == 0) {
      mpi::LocalCommunicator local;
      jobs::LoadedStack whole = jobs::load_stack(manifest_, local);
      whole.stack.normalise(local);
      Trainer reference(config_, whole.stack, local, torch::kCPU);
      reference.train();
      const std::vector<double>& expected = reference.loss_history();
      double worst_loss = 0;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        worst_loss = std::max(worst_loss, std::abs(losses[i] - expected[i]) / std::abs(expected[i]));
      }
      const double latent_diff = ((latent - reference.latent()).norm() / reference.latent().norm()).item<double>();
      std::printf("[P=%d init=%s] max relative loss difference %.3g, latent relative L2 difference %.3g\n",
                  comm_->size(), name_of(init).c_str(), worst_loss, latent_diff);
      EXPECT_EQ(losses.size(), expected.size());
      EXPECT_LT(worst_loss, 1e-5);
      EXPECT_LT(latent_diff, 1e-4);
      // Training must have moved the loss for the comparison to mean anything.
      EXPECT_GT(std::abs(expected.back() - expected.front()), 1e-3 * expected.front());
      ok = !::testing::Test::HasFailure();
    }
    ASSERT_TRUE(on_all_ranks(*comm_, ok));
  }
}

TEST_F(Sharding, RichardsonLucyIsTheSameForAnySplit) {
  RichardsonLucyConfig rl;
  rl.iterations = 20;
  const auto restore = [&](jobs::LoadedStack& loaded, mpi::Communicator& comm) {
    loaded.stack.normalise(comm);
    const PsfDecoder decoder(loaded.stack.psfs, loaded.stack.height(), loaded.stack.width(), PsfDecoder::Mode::kFft,
                             torch::kCPU);
    return richardson_lucy(loaded.stack, decoder, rl, comm);
  };
  jobs::LoadedStack sharded = jobs::load_stack(manifest_, *comm_);
  const torch::Tensor latent = restore(sharded, *comm_);
  bool ok = true;
  if (comm_->rank() == 0) {
    mpi::LocalCommunicator local;
    jobs::LoadedStack whole = jobs::load_stack(manifest_, local);
    const torch::Tensor expected = restore(whole, local);
    const double diff = ((latent - expected).norm() / expected.norm()).item<double>();
    std::printf("[P=%d] Richardson-Lucy latent relative L2 difference %.3g\n", comm_->size(), diff);
    EXPECT_LT(diff, 1e-5);
    EXPECT_GE(latent.min().item<double>(), 0.0);
    ok = !::testing::Test::HasFailure();
  }
  ASSERT_TRUE(on_all_ranks(*comm_, ok));
}

TEST_F(Sharding, GradientsEqualSingleProcessGradients) {
  config_.init = Init::kRandom;
  jobs::LoadedStack sharded = jobs::load_stack(manifest_, *comm_);
  sharded.stack.normalise(*comm_);
  Trainer trainer(config_, sharded.stack, *comm_, torch::kCPU);
  trainer.compute_gradients();

  mpi::LocalCommunicator local;
  jobs::LoadedStack whole = jobs::load_stack(manifest_, local);
  whole.stack.normalise(local);
  Trainer reference(config_, whole.stack, local, torch::kCPU);
  reference.compute_gradients();

  // Sharded parameters: this rank's rows of the reference's; the bias: all of it.
  const auto& ids = sharded.stack.exposure_ids;
  torch::Tensor index = torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()));
  auto mine = trainer.encoder()->named_parameters();
  auto all = reference.encoder()->named_parameters();
  double worst = 0;
  std::string worst_name;
  for (const auto& item : mine) {
    torch::Tensor expected = all[item.key()].grad();
    if (item.key() != "pointwise_bias") expected = expected.index_select(0, index);
    const double rel = ((item.value().grad() - expected).norm() / expected.norm().clamp_min(1e-30)).item<double>();
    if (rel > worst) {
      worst = rel;
      worst_name = item.key();
    }
  }
  double global_worst = worst;
  std::vector<double> gather(comm_->size(), 0.0);
  gather[comm_->rank()] = worst;
  comm_->all_reduce_sum(gather.data(), gather.size());
  for (double w : gather) global_worst = std::max(global_worst, w);
  if (comm_->rank() == 0) std::printf("[P=%d] worst relative gradient difference %.3g\n", comm_->size(), global_worst);
  EXPECT_LT(worst, 1e-4) << "parameter " << worst_name << " on rank " << comm_->rank();
  ASSERT_TRUE(on_all_ranks(*comm_, worst < 1e-4));
}

// Note [held-out exposures]: two exposures held out (one each of the narrowest and the widest
// seeing halves), possibly on any rank: the same held-out record and kept latent image for any
// split as in one process.
TEST_F(Sharding, HeldOutRecordIsTheSameForAnySplit) {
  config_.validation.every = 5;
  config_.validation.exposures = 2;
  const auto run = [&](mpi::Communicator& comm) {
    jobs::LoadedStack loaded = jobs::load_for_fit(manifest_, config_.validation, comm);
    Trainer trainer(config_, loaded.stack, comm, torch::kCPU);
    trainer.validate_on(loaded.held_out);
    trainer.train();
    return std::make_pair(*trainer.validation(), trainer.result());
  };
  const auto [track, result] = run(*comm_);
  bool ok = true;
  if (comm_->rank() == 0) {
    mpi::LocalCommunicator local;
    const auto [expected_track, expected] = run(local);
    ASSERT_EQ(track.iterations(), expected_track.iterations());
    EXPECT_EQ(track.iterations().size(), 7u);  // 0, 5, ..., 30
    double worst = 0;
    for (std::size_t k = 0; k < track.losses().size(); ++k) {
      worst = std::max(worst, std::abs(track.losses()[k] / expected_track.losses()[k] - 1));
    }
    const double diff = ((result - expected).norm() / expected.norm()).item<double>();
    std::printf("[P=%d] held-out loss worst relative difference %.3g, kept latent (iteration %d) %.3g\n",
                comm_->size(), worst, track.best_iteration(), diff);
    EXPECT_LT(worst, 1e-5);
    EXPECT_EQ(track.best_iteration(), expected_track.best_iteration());
    EXPECT_LT(diff, 1e-4);
    ok = !::testing::Test::HasFailure();
  }
  ASSERT_TRUE(on_all_ranks(*comm_, ok));
}

TEST_F(Sharding, ImageMmAndHeldOutRichardsonLucyAreTheSameForAnySplit) {
  ImageMmConfig mm;
  mm.iterations = 20;
  RichardsonLucyConfig rl;
  rl.iterations = 20;
  rl.validation.every = mm.validation.every = 4;
  rl.validation.exposures = mm.validation.exposures = 2;
  const auto restore = [&](mpi::Communicator& comm, bool image_mm_method) {
    return testing::held_out_restoration(manifest_, comm, jobs::TileRequest{}, image_mm_method, rl, mm);
  };
  for (bool image_mm_method : {false, true}) {
    const auto [latent, losses] = restore(*comm_, image_mm_method);
    bool ok = true;
    if (comm_->rank() == 0) {
      mpi::LocalCommunicator local;
      const auto [expected, expected_losses] = restore(local, image_mm_method);
      const double diff = ((latent - expected).norm() / expected.norm()).item<double>();
      std::printf("[P=%d] %s latent relative L2 difference %.3g\n", comm_->size(),
                  image_mm_method ? "ImageMM" : "Richardson-Lucy", diff);
      EXPECT_LT(diff, 1e-5);
      EXPECT_GE(latent.min().item<double>(), 0.0);
      ASSERT_EQ(losses.size(), 6u);  // 0, 4, ..., 20
      for (std::size_t k = 0; k < losses.size(); ++k) EXPECT_NEAR(losses[k], expected_losses[k], 1e-5 * losses[k]);
      EXPECT_LT(losses.back(), losses.front()) << "the restoration predicts the held-out exposures no better";
      ok = !::testing::Test::HasFailure();
    }
    ASSERT_TRUE(on_all_ranks(*comm_, ok));
  }
}

TEST_F(Sharding, NcclOnGpusMatchesMpiOnCpus) {
  // Each rank on a GPU (local rank modulo devices), all-reducing through NCCL.
  int missing = torch::cuda::is_available() && mpi::nccl_available() ? 0 : 1;
  comm_->all_reduce_max(&missing, 1);  // the same verdict on every rank
  if (missing) GTEST_SKIP() << "needs CUDA devices and an NCCL build on every rank";
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  const int device = static_cast<int>(testing::g_mpi_env->local_rank() % torch::cuda::device_count());
  auto nccl = testing::g_mpi_env->make_communicator(mpi::Backend::kNccl, device);
  ASSERT_EQ(nccl->backend(), "nccl");
  const torch::Device cuda(torch::kCUDA, static_cast<c10::DeviceIndex>(device));

  jobs::LoadedStack on_gpu = jobs::load_stack(manifest_, *nccl);
  on_gpu.stack.normalise(*nccl);
  on_gpu.stack.to_for_training(cuda);
  Trainer gpu_trainer(config_, on_gpu.stack, *nccl, cuda);
  gpu_trainer.train();
  const torch::Tensor gpu_latent = gpu_trainer.latent();

  jobs::LoadedStack on_cpu = jobs::load_stack(manifest_, *comm_);
  on_cpu.stack.normalise(*comm_);
  Trainer cpu_trainer(config_, on_cpu.stack, *comm_, torch::kCPU);
  cpu_trainer.train();
  const double diff = ((gpu_latent - cpu_trainer.latent()).norm() / cpu_trainer.latent().norm()).item<double>();
  if (comm_->rank() == 0) {
    std::printf("[P=%d] NCCL on CUDA vs MPI on CPU: latent relative L2 %.3g, bytes through NCCL %zu\n",
                comm_->size(), diff, nccl->stats().bytes_all_reduced);
  }
  EXPECT_LT(diff, 1e-3);
  ASSERT_TRUE(on_all_ranks(*comm_, diff < 1e-3));
}

}  // namespace
}  // namespace astroclear
