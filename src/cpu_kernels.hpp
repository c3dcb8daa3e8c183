// Which kernels run on CPUs: astroclear's own (Notes [depthwise forward], [pointwise sum]) or LibTorch's.
#pragma once

namespace astroclear {

/// On (the default), float32 CPU tensors go through astroclear's hand-written kernels where they
/// apply. Off, CPUs run the LibTorch operations that GPUs run, with the same autograd graph and
/// the same tensors saved for the backward pass: `bench --cpu-kernels libtorch` times them side
/// by side, and the memory tests count the GPU path's planes that way.
void set_fast_cpu_kernels(bool on);
bool fast_cpu_kernels();

/// Sets the switch for its lifetime and puts back the previous setting after, also when what it
/// guards throws (tests and the benchmark, so that nothing after them runs with their choice).
class ScopedFastCpuKernels {
 public:
  explicit ScopedFastCpuKernels(bool on) : previous_(fast_cpu_kernels()) { set_fast_cpu_kernels(on); }
  ~ScopedFastCpuKernels() { set_fast_cpu_kernels(previous_); }
  ScopedFastCpuKernels(const ScopedFastCpuKernels&) = delete;
  ScopedFastCpuKernels& operator=(const ScopedFastCpuKernels&) = delete;

 private:
  bool previous_;
};

}  // namespace astroclear
