// device_memory_used_mib and device_copy_bandwidth through the CUDA runtime, where the build has it.
#include "jobs/device_memory.hpp"

#include <algorithm>

#ifdef ASTROCLEAR_WITH_CUDART
#include <cuda_runtime_api.h>
#endif

namespace astroclear::jobs {

std::optional<double> device_memory_used_mib(int index) {
#ifdef ASTROCLEAR_WITH_CUDART
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return std::nullopt;
  std::size_t free_bytes = 0, total_bytes = 0;
  const bool ok = cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
  cudaSetDevice(previous);
  if (!ok) return std::nullopt;
  return static_cast<double>(total_bytes - free_bytes) / (1024.0 * 1024.0);
#else
  (void)index;
  return std::nullopt;
#endif
}

std::optional<double> device_copy_bandwidth(int index, std::size_t bytes) {
#ifdef ASTROCLEAR_WITH_CUDART
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(index) != cudaSuccess) return std::nullopt;
  void* from = nullptr;
  void* to = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double best = 0;
  bool ok = cudaMalloc(&from, bytes) == cudaSuccess && cudaMalloc(&to, bytes) == cudaSuccess &&
            cudaMemset(from, 0, bytes) == cudaSuccess && cudaEventCreate(&start) == cudaSuccess &&
            cudaEventCreate(&stop) == cudaSuccess;
  for (int i = 0; ok && i < 6; ++i) {
    float ms = 0;
    ok = cudaEventRecord(start) == cudaSuccess && cudaMemcpy(to, from, bytes, cudaMemcpyDeviceToDevice) == cudaSuccess &&
         cudaEventRecord(stop) == cudaSuccess && cudaEventSynchronize(stop) == cudaSuccess &&
         cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
    if (ok && i > 0 && ms > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (1e-3 * ms));  // first warms up
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  cudaFree(from);
  cudaFree(to);
  cudaSetDevice(previous);
  if (!ok || best <= 0) return std::nullopt;
  return best;
#else
  (void)index;
  (void)bytes;
  return std::nullopt;
#endif
}

}  // namespace astroclear::jobs
