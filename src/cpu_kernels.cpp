// The process-wide choice of CPU kernels.
#include "src/cpu_kernels.hpp"

#include <atomic>

namespace astroclear {
namespace {
std::atomic<bool> fast{true};
}  // namespace

void set_fast_cpu_kernels(bool on) { fast = on; }
bool fast_cpu_kernels() { return fast; }

}  // namespace astroclear
