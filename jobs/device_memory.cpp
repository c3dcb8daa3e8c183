// device_memory_used_mib through the CUDA runtime, where the build has it.
#include "jobs/device_memory.hpp"

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

}  // namespace astroclear::jobs
