// astroclear bench: ms/iteration, bytes and time in all-reduces, peak memory, on simulated stacks.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "io/file_tree.hpp"
#include "io/fits_output.hpp"
#include "jobs/commands.hpp"
#include "jobs/device_memory.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "src/cpu_kernels.hpp"
#include "src/trainer.hpp"

namespace astroclear::jobs {
namespace {

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // kilobytes on Linux
}

struct ReferenceRun {
  double ms_per_iteration = -1;  ///< mean over its iterations after the warm-up; -1 when it failed
  std::vector<double> losses;    ///< every iteration's loss (with log_every 1)
};

/// Runs the plain PyTorch reference on `stack_dir` for `iterations`, with its loss every iteration.
ReferenceRun run_reference(const BenchOptions& options, const std::string& stack_dir, int iterations, int threads,
                           int warmup) {
  const std::string out = stack_dir + "/reference_out.fits";
  const std::string command = options.python + " " + options.reference + " " + stack_dir + " " + out + " --iters " +
                              std::to_string(iterations) + " --threads " + std::to_string(threads) +
                              " --decoder fft --log-every 1 2>&1";
  ReferenceRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) text.append(buffer, n);
  const int status = ::pclose(pipe);
  const std::size_t at = text.rfind("\"ms_per_iter\": ");
  if (status != 0 || at == std::string::npos) {
    spdlog::warn("reference run failed ({}):\n{}", command, text);
    return run;
  }
  run.ms_per_iteration = std::stod(text.substr(at + 15));
  // "iter 12 loss 1.23e+06 431 ms/iter": the mean since the start, so the elapsed time after
  // iteration i is mean * (i + 1); the warm-up iterations are taken out as for astroclear.
  std::vector<double> elapsed;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string iter, loss_word;
    int it = 0;
    double loss = 0, mean_ms = 0;
    if (words >> iter >> it >> loss_word >> loss >> mean_ms && iter == "iter" && loss_word == "loss") {
      run.losses.push_back(loss);
      elapsed.push_back(mean_ms * (it + 1));
    }
  }
  const int n = static_cast<int>(elapsed.size());
  if (n == iterations && n > warmup && warmup > 0) {
    run.ms_per_iteration = (elapsed[n - 1] - elapsed[warmup - 1]) / (n - warmup);
  }
  return run;
}

/// Iterations until the loss stays within `tolerance` (relative) of its last value: the
/// time-to-solution count of issue 6 (first k after which every loss is within 0.5% of the end).
int iterations_to_solution(const std::vector<double>& losses, double tolerance = 0.005) {
  if (losses.empty()) return -1;
  const double target = losses.back();
  int k = static_cast<int>(losses.size());
  while (k > 0 && std::abs(losses[k - 1] - target) <= tolerance * std::abs(target)) --k;
  return k + 1;  // iterations done when the loss first stayed within the band
}

struct TimedSteps {
  std::vector<double> ms;     ///< each step's time (each waits for the device)
  double peak_gpu_mib = -1;   ///< on a GPU, the most device memory in use after any step; -1 where unknown
};

TimedSteps time_steps(Trainer& trainer, int iterations, const torch::Device& device) {
  trainer.loss_history();  // synchronise before timing
  TimedSteps timed;
  for (int i = 0; i < iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    trainer.step();
    trainer.loss_history();  // waits for the device
    timed.ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (device.is_cuda()) {
      if (const auto used = device_memory_used_mib(device.index())) {
        timed.peak_gpu_mib = std::max(timed.peak_gpu_mib, *used);
      }
    }
  }
  return timed;
}

// Note [memory floor]: the least traffic between the device's memory and its cores that one
// iteration needs on a rank, whatever the implementation: every input read once, nothing
// stack-sized written, all intermediates kept on chip. With P the bytes of the rank's stack
// (n x H x W floats):
// - encoder forward, 2P: BatchNorm normalises a branch by statistics over the whole of it, so
//   the images are read once for the statistics and once more for the output (all branches in
//   the same two passes, their convolutions recomputed);
// - decoder and loss, forward and backward, 2P + the PSF spectra (or kernels): the two loss planes
//   and each exposure's spectrum, once (FFT passes not counted);
// - encoder backward, 2P: BatchNorm's backward needs two sums over each branch's gradient before
//   the kernels' gradients can be formed, again two passes over the images;
// - optimizer: each parameter, gradient and Adam moment read, and the three written.
// Divided by the bandwidth the device reaches on a plain copy, it is a time no iteration can beat.
struct MemoryFloor {
  double encoder_forward = 0, decoder_and_loss = 0, backward = 0, optimizer = 0;
  double total() const { return encoder_forward + decoder_and_loss + backward + optimizer; }
};

MemoryFloor memory_floor(const LocalStack& stack, Trainer& trainer) {
  const double plane = static_cast<double>(stack.images.nbytes());
  double parameters = 0;
  for (const auto& p : trainer.encoder()->parameters()) parameters += static_cast<double>(p.nbytes());
  MemoryFloor floor;
  floor.encoder_forward = 2 * plane;
  floor.decoder_and_loss = 2 * plane + static_cast<double>(trainer.decoder().resident_bytes());
  floor.backward = 2 * plane;
  floor.optimizer = 7 * parameters;
  return floor;
}

/// Bytes per second moved by a copy of 256 MiB on `device` (each byte read and written), best of 5.
/// On CUDA through the runtime (device_copy_bandwidth), so that nothing stays in LibTorch's cache.
double copy_bandwidth(const torch::Device& device) {
  constexpr std::int64_t kFloats = 64 << 20;
  if (device.is_cuda()) {
    if (const auto measured = device_copy_bandwidth(device.has_index() ? device.index() : 0, kFloats * sizeof(float))) {
      return *measured;
    }
  }
  const torch::Tensor from = torch::ones({kFloats}, torch::TensorOptions().device(device));
  torch::Tensor to = torch::empty_like(from);
  const auto wait = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  double best = 0;
  for (int i = 0; i < 6; ++i) {
    wait();
    const auto start = std::chrono::steady_clock::now();
    to.copy_(from);
    wait();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i > 0) best = std::max(best, 2.0 * static_cast<double>(from.nbytes()) / seconds);  // the first warms up
  }
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int run_bench(const BenchOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  // The JSON rows are kept here and written whole when the benchmark ends (io::write_text_file).
  std::ostringstream json;
  comm.collectively([&] {
    if (!options.json.empty()) io::check_output_path(options.json, options.overwrite);
  }, comm.rank() == 0);
  set_fast_cpu_kernels(options.cpu_kernels == "astroclear");
  const double bandwidth = copy_bandwidth(runtime.device);  // Note [memory floor]
  if (comm.rank() == 0) {
    std::printf("%s: %.1f GB/s on a copy (the memory floor's bandwidth); CPU kernels: %s; encoder precision: %s\n",
                runtime.device.str().c_str(), bandwidth / 1e9, options.cpu_kernels.c_str(), options.precision.c_str());
  }
  if (comm.rank() == 0) {
    std::printf("%-6s %-6s %-7s %-6s %-7s %10s %10s %12s %10s %9s %11s %11s\n", "n_exp", "size", "decoder", "ranks",
                "threads", "ms/iter", "p10-p90", "MB reduced", "comm ms", "comm %", "peak RSS MB", "peak GPU MB");
  }
  for (int size : options.sizes) {
    // Rank 0 writes the stack into a folder of its own; every rank then reads its exposures.
    std::string dir = (std::filesystem::path(options.work_dir) /
                       ("astroclear-bench-" + std::to_string(::getpid()) + "-" + std::to_string(size))).string();
    comm.collectively([&] {
      SimulateOptions sim;
      sim.output_dir = dir;
      sim.overwrite = true;
      sim.config.exposures = options.exposures;
      sim.config.height = sim.config.width = size;
      write_simulated_stack(sim);
    }, comm.rank() == 0);
    dir = comm.broadcast_string(dir, 0);  // rank 0's pid names it
    LoadedStack loaded = load_stack(dir + "/stack.toml", comm);
    loaded.stack.normalise(comm);
    loaded.stack.to_for_training(runtime.device);
    for (const std::string& decoder : options.decoders) {
      TrainConfig config;
      config.decoder = decoder;
      config.precision = options.precision;
      config.iterations = options.warmup + options.iterations;
      Trainer trainer(config, loaded.stack, comm, runtime.device);
      for (int i = 0; i < options.warmup; ++i) trainer.step();
      comm.reset_stats();
      TimedSteps timed = time_steps(trainer, options.iterations, runtime.device);
      std::vector<double> ms = std::move(timed.ms);
      const double gpu_mib = timed.peak_gpu_mib;
      // The split by stage, on a few more iterations with a device synchronisation per stage.
      trainer.profile_stages(true);
      for (int i = 0; i < std::min(options.iterations, 5); ++i) trainer.step();
      trainer.loss_history();
      const StageSeconds stages = trainer.stage_seconds();
      const double per = 1e3 / std::max(stages.iterations, 1);  // seconds per profiled iteration -> ms
      trainer.profile_stages(false);
      double ms_iter = median(ms);
      comm.all_reduce_sum(&ms_iter, 1);
      ms_iter /= comm.size();  // mean over ranks of each rank's median
      std::sort(ms.begin(), ms.end());
      const double p10 = ms[ms.size() / 10], p90 = ms[(ms.size() * 9) / 10];
      const double mb = comm.stats().bytes_all_reduced / 1e6 / options.iterations;
      const double comm_ms = 1e3 * comm.stats().seconds / options.iterations;
      const MemoryFloor floor = memory_floor(loaded.stack, trainer);
      const double floor_ms = 1e3 * floor.total() / bandwidth;
      const double rss = peak_rss_mib();
      double mean_rss = rss;
      comm.all_reduce_sum(&mean_rss, 1);
      mean_rss /= comm.size();
      if (comm.rank() == 0) {
        char range[32];
        std::snprintf(range, sizeof(range), "%.0f-%.0f", p10, p90);
        char gpu[32] = "-";
        if (gpu_mib >= 0) std::snprintf(gpu, sizeof(gpu), "%.0f", gpu_mib);
        std::printf("%-6d %-6d %-7s %-6d %-7d %10.1f %10s %12.2f %10.2f %8.1f%% %11.0f %11s\n", options.exposures, size,
                    decoder.c_str(), comm.size(), runtime.threads, ms_iter, range, mb, comm_ms,
                    100.0 * comm_ms / ms_iter, rss, gpu);
        std::printf("       stages ms/iter: encoder fwd %.1f, decoder+loss %.1f, backward %.1f, "
                    "reduce %.1f, optimizer %.1f (all-reduces inside: %.1f)\n",
                    stages.encoder_forward * per, stages.decoder_and_loss * per, stages.backward * per,
                    stages.reduce * per, stages.optimizer * per, comm_ms);
        std::printf("       memory floor: %.0f MB a rank must move (encoder fwd %.0f, decoder+loss %.0f, backward %.0f, "
                    "optimizer %.1f) at %.1f GB/s: %.2f ms, %.1fx below this iteration\n",
                    floor.total() / 1e6, floor.encoder_forward / 1e6, floor.decoder_and_loss / 1e6, floor.backward / 1e6,
                    floor.optimizer / 1e6, bandwidth / 1e9, floor_ms, ms_iter / floor_ms);
        std::fflush(stdout);
      }

      // Strong scaling: rank 0 alone on the whole stack, same threads, beside the P-rank time.
      double single_ms = -1;
      if (options.scaling && comm.size() > 1) {
        comm.collectively([&] {
          mpi::LocalCommunicator local;
          LoadedStack whole = load_stack(dir + "/stack.toml", local);
          whole.stack.normalise(local);
          whole.stack.to_for_training(runtime.device);
          Trainer alone(config, whole.stack, local, runtime.device);
          for (int i = 0; i < options.warmup; ++i) alone.step();
          single_ms = median(time_steps(alone, options.iterations, runtime.device).ms);
          std::printf("       scaling: 1 rank %.1f ms/iter, %d ranks %.1f ms/iter: speed-up %.2fx, efficiency %.0f%%\n",
                      single_ms, comm.size(), ms_iter, single_ms / ms_iter, 100 * single_ms / (comm.size() * ms_iter));
          std::fflush(stdout);
        }, comm.rank() == 0);
      }

      // Time to solution: a fresh run of --solution-iterations; when the loss stays within 0.5% of its end.
      int solution_its = -1;
      double solution_s = -1, solution_ms = -1;
      std::vector<double> solution_losses;
      if (options.solution_iterations > 0) {
        TrainConfig long_run = config;
        long_run.iterations = options.solution_iterations;
        Trainer fresh(long_run, loaded.stack, comm, runtime.device);
        const auto start = std::chrono::steady_clock::now();
        fresh.train();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        solution_losses = fresh.loss_history();
        solution_its = iterations_to_solution(solution_losses);
        solution_ms = 1e3 * seconds / long_run.iterations;
        solution_s = solution_its * solution_ms / 1e3;
        if (comm.rank() == 0) {
          std::printf("       time to solution (loss within 0.5%% of iteration %d's): %d iterations, %.1f s\n",
                      long_run.iterations, solution_its, solution_s);
          std::fflush(stdout);
        }
      }

      ReferenceRun reference;
      int reference_solution_its = -1, to_reference_its = -1;
      double reference_solution_s = -1, to_reference_s = -1;
      if (comm.rank() == 0 && !options.reference.empty() && decoder == "fft" && comm.size() == 1) {
        const int reference_iterations =
            options.solution_iterations > 0 ? options.solution_iterations : options.warmup + options.iterations;
        reference = run_reference(options, dir, reference_iterations, runtime.threads, options.warmup);
        if (reference.ms_per_iteration > 0) {
          std::printf("       reference_acn.py (plain PyTorch, same stack, %d threads): %.1f ms/iter (mean of %d after "
                      "%d warm-up); astroclear is %.2fx faster per iteration\n",
                      runtime.threads, reference.ms_per_iteration, reference_iterations - options.warmup,
                      options.warmup, reference.ms_per_iteration / ms_iter);
          if (options.solution_iterations > 0 && static_cast<int>(reference.losses.size()) == reference_iterations) {
            reference_solution_its = iterations_to_solution(reference.losses);
            reference_solution_s = reference_solution_its * reference.ms_per_iteration / 1e3;
            std::printf("       reference time to solution: %d iterations, %.1f s; astroclear reaches its solution "
                        "%.2fx sooner\n",
                        reference_solution_its, reference_solution_s, reference_solution_s / solution_s);
            // The same target for both: the reference's final loss per good pixel (its loss is a
            // sum; the Huber terms of y/sigma do not depend on the flux unit, so they compare).
            const double target = reference.losses.back() / loaded.stack.good_pixels;
            for (std::size_t k = 0; k < solution_losses.size() && to_reference_its < 0; ++k) {
              if (solution_losses[k] <= target * 1.005) to_reference_its = static_cast<int>(k) + 1;
            }
            if (to_reference_its > 0) {
              to_reference_s = to_reference_its * solution_ms / 1e3;
              std::printf("       the reference's final loss (%.5f per good pixel, within 0.5%%): astroclear after %d "
                          "iterations, %.1f s: %.2fx sooner than the reference\n",
                          target, to_reference_its, to_reference_s, reference_solution_s / to_reference_s);
            } else {
              std::printf("       astroclear did not reach the reference's final loss (%.5f per good pixel)\n", target);
            }
          }
        }
        std::fflush(stdout);
      }
      if (comm.rank() == 0 && !options.json.empty()) {
        json << "{\"exposures\": " << options.exposures << ", \"size\": " << size << ", \"decoder\": \"" << decoder
             << "\", \"ranks\": " << comm.size() << ", \"threads_per_rank\": " << runtime.threads
             << ", \"device\": \"" << runtime.device.str() << "\", \"ms_per_iteration\": " << ms_iter
             << ", \"mb_all_reduced_per_iteration\": " << mb << ", \"comm_ms_per_iteration\": " << comm_ms
             << ", \"peak_rss_mib_rank0\": " << rss << ", \"peak_rss_mib_mean\": " << mean_rss
             << ", \"peak_gpu_mib_rank0\": " << (gpu_mib >= 0 ? std::to_string(gpu_mib) : std::string("null"))
             << ", \"stage_ms\": {\"encoder_forward\": " << stages.encoder_forward * per
             << ", \"decoder_and_loss\": " << stages.decoder_and_loss * per
             << ", \"backward\": " << stages.backward * per << ", \"reduce\": " << stages.reduce * per
             << ", \"optimizer\": " << stages.optimizer * per << "}"
             << ", \"cpu_kernels\": \"" << options.cpu_kernels << "\", \"precision\": \"" << options.precision
             << "\", \"copy_bandwidth_gb_s\": " << bandwidth / 1e9
             << ", \"floor_mb_per_iteration\": " << floor.total() / 1e6 << ", \"floor_ms_per_iteration\": " << floor_ms
             << ", \"single_rank_ms_per_iteration\": " << single_ms
             << ", \"solution_iterations\": " << solution_its << ", \"solution_seconds\": " << solution_s
             << ", \"reference_ms_per_iteration\": " << reference.ms_per_iteration
             << ", \"reference_solution_iterations\": " << reference_solution_its
             << ", \"reference_solution_seconds\": " << reference_solution_s
             << ", \"iterations_to_reference_loss\": " << to_reference_its
             << ", \"seconds_to_reference_loss\": " << to_reference_s << "}\n";
      }
    }
    comm.barrier();
    if (comm.rank() == 0) io::remove_tree(dir);
  }
  comm.collectively([&] {
    if (!options.json.empty()) io::write_text_file(options.json, json.str());
  }, comm.rank() == 0);
  return 0;
}

}  // namespace astroclear::jobs
