// astroclear bench: ms/iteration, bytes and time in all-reduces, peak memory, on simulated stacks.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/file_tree.hpp"
#include "jobs/commands.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "src/trainer.hpp"

namespace astroclear::jobs {
namespace {

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // kilobytes on Linux
}

/// Runs the plain PyTorch reference on `stack_dir` and returns its mean ms/iteration (-1 on failure).
double run_reference(const BenchOptions& options, const std::string& stack_dir, int iterations, int threads) {
  const std::string out = stack_dir + "/reference_out.fits";
  const std::string command = options.python + " " + options.reference + " " + stack_dir + " " + out + " --iters " +
                              std::to_string(iterations) + " --threads " + std::to_string(threads) +
                              " --decoder fft --log-every 1000000 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) text.append(buffer, n);
  const int status = ::pclose(pipe);
  const std::size_t at = text.rfind("\"ms_per_iter\": ");
  if (status != 0 || at == std::string::npos) {
    spdlog::warn("reference run failed ({}):\n{}", command, text);
    return -1;
  }
  return std::stod(text.substr(at + 15));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int run_bench(const BenchOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  std::ofstream json;
  if (comm.rank() == 0) {
    std::printf("%-6s %-6s %-7s %-6s %-7s %10s %10s %12s %10s %9s %11s\n", "n_exp", "size", "decoder", "ranks",
                "threads", "ms/iter", "p10-p90", "MB reduced", "comm ms", "comm %", "peak RSS MB");
    if (!options.json.empty()) json.open(options.json);
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
    loaded.stack.to(runtime.device);
    for (const std::string& decoder : options.decoders) {
      TrainConfig config;
      config.decoder = decoder;
      config.iterations = options.warmup + options.iterations;
      Trainer trainer(config, loaded.stack, comm, runtime.device);
      for (int i = 0; i < options.warmup; ++i) trainer.step();
      trainer.loss_history();  // synchronise before timing
      comm.reset_stats();
      std::vector<double> ms;
      for (int i = 0; i < options.iterations; ++i) {
        const auto start = std::chrono::steady_clock::now();
        trainer.step();
        trainer.loss_history();  // waits for the device
        ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      // The split by stage, on a few more iterations with a device synchronisation per stage.
      trainer.profile_stages(true);
      for (int i = 0; i < std::min(options.iterations, 5); ++i) trainer.step();
      trainer.loss_history();
      const StageSeconds stages = trainer.stage_seconds();
      trainer.profile_stages(false);
      double ms_iter = median(ms);
      comm.all_reduce_sum(&ms_iter, 1);
      ms_iter /= comm.size();  // mean over ranks of each rank's median
      std::sort(ms.begin(), ms.end());
      const double p10 = ms[ms.size() / 10], p90 = ms[(ms.size() * 9) / 10];
      const double mb = comm.stats().bytes_all_reduced / 1e6 / options.iterations;
      const double comm_ms = 1e3 * comm.stats().seconds / options.iterations;
      const double rss = peak_rss_mib();
      double mean_rss = rss;
      comm.all_reduce_sum(&mean_rss, 1);
      mean_rss /= comm.size();
      if (comm.rank() == 0) {
        char range[32];
        std::snprintf(range, sizeof(range), "%.0f-%.0f", p10, p90);
        std::printf("%-6d %-6d %-7s %-6d %-7d %10.1f %10s %12.2f %10.2f %8.1f%% %11.0f\n", options.exposures, size,
                    decoder.c_str(), comm.size(), runtime.threads, ms_iter, range, mb, comm_ms,
                    100.0 * comm_ms / ms_iter, rss);
        const double per = 1e3 / std::max(stages.iterations, 1);
        std::printf("       stages ms/iter: encoder fwd %.1f, decoder fwd %.1f, loss %.1f, backward %.1f, "
                    "reduce %.1f, optimizer %.1f (all-reduces inside: %.1f)\n",
                    stages.encoder_forward * per, stages.decoder_forward * per, stages.loss * per, stages.backward * per,
                    stages.reduce * per, stages.optimizer * per, comm_ms);
        double reference_ms = -1;
        if (!options.reference.empty() && decoder == "fft" && comm.size() == 1) {
          reference_ms = run_reference(options, dir, options.warmup + options.iterations, runtime.threads);
          if (reference_ms > 0) {
            std::printf("       reference_acn.py (plain PyTorch, same stack, %d threads): %.1f ms/iter (mean of %d); "
                        "astroclear is %.2fx faster\n",
                        runtime.threads, reference_ms, options.warmup + options.iterations, reference_ms / ms_iter);
          }
        }
        std::fflush(stdout);
        if (json) {
          json << "{\"exposures\": " << options.exposures << ", \"size\": " << size << ", \"decoder\": \"" << decoder
               << "\", \"ranks\": " << comm.size() << ", \"threads_per_rank\": " << runtime.threads
               << ", \"device\": \"" << runtime.device.str() << "\", \"ms_per_iteration\": " << ms_iter
               << ", \"mb_all_reduced_per_iteration\": " << mb << ", \"comm_ms_per_iteration\": " << comm_ms
               << ", \"peak_rss_mib_rank0\": " << rss << ", \"peak_rss_mib_mean\": " << mean_rss
               << ", \"stage_ms\": {\"encoder_forward\": " << stages.encoder_forward * per
               << ", \"decoder_forward\": " << stages.decoder_forward * per << ", \"loss\": " << stages.loss * per
               << ", \"backward\": " << stages.backward * per << ", \"reduce\": " << stages.reduce * per
               << ", \"optimizer\": " << stages.optimizer * per << "}"
               << ", \"reference_ms_per_iteration\": " << reference_ms << "}\n";
        }
      }
    }
    comm.barrier();
    if (comm.rank() == 0) io::remove_tree(dir);
  }
  return 0;
}

}  // namespace astroclear::jobs
