// make_runtime: threads, device binding, communicator.
#include "jobs/runtime.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include "common/error.hpp"
#include "mpi/partition.hpp"

namespace astroclear::jobs {

Runtime make_runtime(const RuntimeOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  runtime.threads = options.threads > 0 ? options.threads : mpi::default_threads(cores, env.local_size());
  torch::set_num_threads(runtime.threads);

  const int visible = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (options.device == Device::kCuda && visible == 0) {
    throw Error("--device cuda: no CUDA device visible (LibTorch CUDA support: " +
                std::string(torch::cuda::is_available() ? "yes" : "no") + ")");
  }
  int cuda_index = -1;
  if (options.device != Device::kCpu && visible > 0) {
    cuda_index = mpi::cuda_device_for(env.local_rank(), visible);
    runtime.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cuda_index));
  }
  if (options.tf32 != Tf32::kDefault) {
    // Process-wide switches; they only change what CUDA kernels do (float32 stays float32 on CPUs).
    at::globalContext().setAllowTF32CuDNN(options.tf32 == Tf32::kOn);
    at::globalContext().setAllowTF32CuBLAS(options.tf32 == Tf32::kOn);
  }
  runtime.comm = env.make_communicator(options.comm, cuda_index);
  if (env.rank() == 0) {
    spdlog::info("runtime: {} rank(s), device {}, {} thread(s) per rank, communicator {}", env.size(),
                 runtime.device.str(), runtime.threads, runtime.comm->backend());
    if (runtime.device.is_cuda()) {
      spdlog::info("TF32: convolutions {}, matrix products {} (--tf32 {})",
                   at::globalContext().allowTF32CuDNN() ? "on" : "off",
                   at::globalContext().allowTF32CuBLAS() ? "on" : "off", name_of(options.tf32));
    }
  }
  return runtime;
}

}  // namespace astroclear::jobs
