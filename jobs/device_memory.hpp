// Memory in use on a CUDA device and its copy bandwidth, for the benchmark's peak-GPU-memory column and memory floor.
#pragma once

#include <cstddef>
#include <optional>

namespace astroclear::jobs {

/// MiB in use on CUDA device `index` (total minus free, as nvidia-smi counts it: this process's
/// context and LibTorch's caching allocator, which keeps what it reserved at its peak).
/// Empty when astroclear was built without the CUDA runtime or the query fails.
std::optional<double> device_memory_used_mib(int index);

/// Bytes per second a device-to-device copy of `bytes` reaches on CUDA device `index` (each byte
/// read and written), best of five after one warm-up. The buffers come from cudaMalloc and are
/// freed before it returns: measured through LibTorch, they would stay reserved in its caching
/// allocator and count in the peak-GPU-memory column. Empty where the CUDA runtime is missing or fails.
std::optional<double> device_copy_bandwidth(int index, std::size_t bytes);

}  // namespace astroclear::jobs
