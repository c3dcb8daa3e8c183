// GPU memory, counted on the CPU: the stack-sized planes a training iteration holds at its peak.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "mpi/communicator.hpp"
#include "src/cpu_kernels.hpp"
#include "src/trainer.hpp"
#include "tests/memory_tracker.hpp"

namespace astroclear {
namespace {

using testing::PeakSampler;
using testing::TrackingAllocator;

/// A normalised stack of `n` random exposures of size x size px, with 41 px PSFs as HSC's.
LocalStack random_stack(int n, std::int64_t size, mpi::Communicator& comm) {
  torch::manual_seed(3);
  LocalStack stack;
  stack.total_exposures = n;
  for (int t = 0; t < n; ++t) stack.exposure_ids.push_back(t);
  stack.good = (torch::rand({n, size, size}) > 0.01).to(torch::kFloat32);
  stack.images = (torch::randn({n, size, size}) + 2) * stack.good;
  stack.sigmas = torch::rand({n, size, size}) + 0.5;
  const torch::Tensor r = torch::arange(-20, 21, torch::kFloat32);
  for (int t = 0; t < n; ++t) {
    const torch::Tensor g = torch::exp(-(r * r) / (2.0 * (2.0 + 0.2 * t)));
    const torch::Tensor psf = torch::outer(g, g);
    stack.psfs.push_back(psf / psf.sum());
  }
  stack.normalise(comm);
  return stack;
}

// The GPU path's memory, measured where CI runs. With astroclear's CPU kernels off, a CPU runs the
// operations a GPU runs, and the same tensors live at each point of the iteration. The peak of
// live tensors over one iteration, in stack-sized planes (n x H x W floats), then says what the
// GPU needs for any stack: 2.33 GB a plane for 33 x 4200^2 (HSC), plus the CUDA context and
// cuDNN's workspace.
/// The peak of live tensors over one iteration on the GPU path, in stack planes, for `precision`.
double peak_planes_of_an_iteration(Precision precision) {
  static TrackingAllocator tracker;  // outlives every tensor it allocated
  tracker.install();
  double planes = 0;
  {
    const ScopedFastCpuKernels libtorch_operations(false);  // the GPU path's operations and saved tensors
    mpi::LocalCommunicator comm;
    const int n = 33;
    const std::int64_t size = 600;  // an FFT grid of 640^2 (41 px PSFs): 1.14 planes of spectra, as 4320^2 at 4200
    LocalStack stack = random_stack(n, size, comm);
    TrainConfig config;
    config.decoder = DecoderChoice::kFft;
    config.precision = precision;
    Trainer trainer(config, stack, comm, torch::kCPU);
    trainer.step();  // Adam's moments exist from here on
    trainer.loss_history();
    std::int64_t peak = 0;
    {
      PeakSampler sampler;
      trainer.step();
      trainer.loss_history();
      peak = sampler.peak();
    }
    // On a GPU the sigmas and the mask stay on the host (LocalStack::to_for_training).
    const double host = static_cast<double>(stack.sigmas.nbytes() + stack.good.nbytes());
    const double plane = static_cast<double>(stack.images.nbytes());
    planes = (static_cast<double>(peak) - host) / plane;
    const double hsc_plane_gb = 33.0 * 4200 * 4200 * 4 / 1e9;
    std::printf("peak of one %s iteration on the GPU path: %.2f stack planes (%.1f GB at 33 x 4200^2)\n",
                name_of(precision).c_str(), planes, planes * hsc_plane_gb);
  }
  tracker.uninstall();
  return planes;
}

// The one H100 measurement, with an earlier build, was 44.6 GB, about 19 planes: the sigmas and mask on the
// device, a padded copy of the stack per branch and the decoder's FFT grids kept for the backward
// pass (Notes [noise planes on the host], [re-padded inputs], [chunked decoder loss]). What is
// left: the images, the two loss planes and the PSF spectra (4.1 planes), per branch the ReLU and
// BatchNorm outputs kept for the backward (6), and two gradients of a branch during the backward (2).
TEST(GpuMemory, AnIterationHoldsAtMostTwelveAndAHalfStackPlanes) {
  const double planes = peak_planes_of_an_iteration(Precision::kFloat32);
  EXPECT_LE(planes, 12.5);
  EXPECT_GE(planes, 10.0) << "fewer planes than the resident and saved tensors: the counting broke";
}

// Note [bf16 encoder]: the ReLU and BatchNorm outputs kept for the backward and the branch
// gradients are bf16 (half a plane each), at the cost of a bf16 copy of the exposures. Measured
// 8.71 planes, 20.3 GB at 33 x 4200^2.
TEST(GpuMemory, ABf16IterationHoldsAtMostNinePlanes) {
  const double planes = peak_planes_of_an_iteration(Precision::kBf16);
  EXPECT_LE(planes, 9.0);
  // 4.1 resident, half a plane of bf16 exposures, 3 of saved activations
  EXPECT_GE(planes, 7.5) << "fewer planes than the resident and saved tensors: the counting broke";
}

}  // namespace
}  // namespace astroclear
