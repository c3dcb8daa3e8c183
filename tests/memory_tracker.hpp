// Counting the bytes of live CPU tensors, and their peak over LibTorch operations: GPU memory,
// counted on the CPU (the GPU path's operations run there with astroclear's CPU kernels off).
#pragma once

#include <ATen/record_function.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

namespace astroclear::testing {

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

}  // namespace astroclear::testing
