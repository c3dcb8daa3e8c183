// Memory in use on a CUDA device, for the benchmark's peak-GPU-memory column.
#pragma once

#include <optional>

namespace astroclear::jobs {

/// MiB in use on CUDA device `index` (total minus free, as nvidia-smi counts it: this process's
/// context and LibTorch's caching allocator, which keeps what it reserved at its peak).
/// Empty when astroclear was built without the CUDA runtime or the query fails.
std::optional<double> device_memory_used_mib(int index);

}  // namespace astroclear::jobs
