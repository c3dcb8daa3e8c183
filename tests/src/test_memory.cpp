// GPU memory, counted on the CPU: the stack-sized planes a training iteration holds at its peak.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/record_function.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "mpi/communicator.hpp"
#include "src/cpu_kernels.hpp"
#include "src/trainer.hpp"

namespace astroclear {
namespace {

/// Takes the place of LibTorch's CPU allocator and counts the bytes of live CPU tensors. Each
/// block carries its size in a 64-byte header, so that a raw pointer can be freed too (oneDNN
/// allocates through raw_allocate()).
class TrackingAllocator final : public c10::Allocator {
 public:
  // LibTorch 1.x declares allocate() const, 2.x not: one of the two overrides, the other is unused.
  c10::DataPtr allocate(std::size_t bytes) const {
    void* block = nullptr;
    if (posix_memalign(&block, kHeader, kHeader + bytes) != 0) throw std::bad_alloc();
    std::memcpy(block, &bytes, sizeof bytes);
    live_ += static_cast<std::int64_t>(bytes);
    void* data = static_cast<char*>(block) + kHeader;
    return {data, data, &release, c10::Device(c10::kCPU)};
  }
  c10::DataPtr allocate(std::size_t bytes) { return static_cast<const TrackingAllocator*>(this)->allocate(bytes); }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

  void install() {
    base_ = c10::GetCPUAllocator();
    c10::SetCPUAllocator(this);
  }
  void uninstall() { c10::SetCPUAllocator(base_); }
  static std::int64_t live() { return live_; }

 private:
  static constexpr std::size_t kHeader = 64;  // keeps the 64-byte alignment oneDNN expects
  static void release(void* data) {
    if (data == nullptr) return;
    void* block = static_cast<char*>(data) - kHeader;
    std::size_t bytes = 0;
    std::memcpy(&bytes, block, sizeof bytes);
    live_ -= static_cast<std::int64_t>(bytes);
    std::free(block);
  }
  c10::Allocator* base_ = nullptr;
  static inline std::atomic<std::int64_t> live_{0};
};

/// The most live bytes at the end of any LibTorch operation while it is installed. LibTorch's CPU
/// convolutions are counted as a whole: their output, not oneDNN's copies of the data in its
/// blocked layout (channels padded to a multiple of 16), which are the CPU library's scratch space. On a
/// GPU, cuDNN's workspace is the counterpart, and it is not in this count.
class PeakSampler {
 public:
  PeakSampler() {
    peak_ = TrackingAllocator::live();
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&enter, &leave));
  }
  ~PeakSampler() { at::removeCallback(handle_); }
  static std::int64_t peak() { return peak_; }

 private:
  static bool opaque(const at::RecordFunction& fn) {
    const std::string name = fn.name();
    return name == "aten::mkldnn_convolution" || name == "aten::convolution_backward";
  }
  static std::unique_ptr<at::ObserverContext> enter(const at::RecordFunction& fn) {
    if (opaque(fn)) ++inside_;
    return nullptr;
  }
  static void leave(const at::RecordFunction& fn, at::ObserverContext*) {
    if (opaque(fn)) --inside_;
    if (inside_ > 0) return;
    const std::int64_t now = TrackingAllocator::live();
    for (std::int64_t peak = peak_; now > peak && !peak_.compare_exchange_weak(peak, now);) {
    }
  }
  at::CallbackHandle handle_;
  static inline std::atomic<int> inside_{0};
  static inline std::atomic<std::int64_t> peak_{0};
};

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
