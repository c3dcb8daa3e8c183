// astroclear bench: ms/iteration, bytes and time in all-reduces, peak memory, on simulated stacks.
#include "jobs/bench_command.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "common/error.hpp"
#include "io/file_tree.hpp"
#include "io/fits_output.hpp"
#include "io/json_lines.hpp"
#include "io/process.hpp"
#include "jobs/cli.hpp"
#include "jobs/device_memory.hpp"
#include "jobs/runtime.hpp"
#include "jobs/simulate_command.hpp"
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

/// Runs the plain PyTorch reference on `stack_dir` for `iterations`, with its loss every iteration
/// (io::run_process; its output goes to reference.log in the stack's folder).
ReferenceRun run_reference(const BenchOptions& options, const std::string& stack_dir, int iterations, int threads,
                           int warmup) {
  const std::string out = stack_dir + "/reference_out.fits", log = stack_dir + "/reference.log";
  const std::vector<std::string> command{options.python, options.reference, stack_dir, out,
                                         "--iters", std::to_string(iterations), "--threads", std::to_string(threads),
                                         "--decoder", "fft", "--log-every", "1"};
  ReferenceRun run;
  int status = -1;
  try {
    status = io::run_process(command, log);
  } catch (const Error& e) {
    spdlog::warn("reference run failed: {}", e.what());
    return run;
  }
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t at = text.rfind("\"ms_per_iter\": ");
  if (status != 0 || at == std::string::npos) {
    spdlog::warn("reference run failed (exit {}: {} {}):{}", status, options.python, options.reference,
                 io::file_tail(log, 20));
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
/// time-to-solution count (first k after which every loss is within 0.5% of the end).
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

/// Everything one row of the benchmark measures: one stack size, one decoder.
struct BenchRow {
  int size = 0;
  DecoderChoice decoder = DecoderChoice::kFft;
  double ms_per_iteration = 0;  ///< mean over ranks of each rank's median
  double p10 = 0, p90 = 0;      ///< rank 0's spread
  double mb_all_reduced = 0, comm_ms = 0;  ///< per iteration
  double peak_rss_mib = 0, mean_peak_rss_mib = 0, peak_gpu_mib = -1;
  std::string tiles = "1x1";
  double plane_mb = 0;                  ///< rank 0's image-sized planes (images, sigmas, mask)
  double whole_plane_mb = 0;            ///< the same for its exposures on the whole field
  double mb_exchanged = 0, halo_model_mb = 0;  ///< rank 0's halo bytes sent per iteration: measured, modelled
  StageSeconds stages;
  double ms_per_profiled_second = 0;  ///< turns stage seconds into ms per iteration
  MemoryFloor floor;
  double floor_ms = 0;
  double single_rank_ms = -1;
  int solution_iterations = -1;
  double solution_seconds = -1, solution_ms = -1;  ///< to solution; ms per iteration of that run
  ReferenceRun reference;
  int reference_solution_iterations = -1, iterations_to_reference_loss = -1;
  double reference_solution_seconds = -1, seconds_to_reference_loss = -1;
};

/// Collective. Rank 0 writes a simulated stack into a folder of its own (named by its pid);
/// returns the folder on every rank.
std::string write_bench_stack(const BenchOptions& options, int size, mpi::Communicator& comm) {
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
  return comm.broadcast_string(dir, 0);
}

/// Collective. The timed iterations after the warm-up, then a few more split by stage (each stage
/// waits for the device), the all-reduce counts, peak memory and the memory floor.
void time_iterations(Trainer& trainer, const BenchOptions& options, const LocalStack& stack, const Runtime& runtime,
                     double bandwidth, mpi::Communicator& comm, const mpi::TileRanks* tiles, BenchRow& row) {
  for (int i = 0; i < options.warmup; ++i) trainer.step();
  std::vector<mpi::Communicator*> comms{&comm};  // every communicator an iteration uses
  if (tiles != nullptr && tiles->tiled()) comms = {&comm, tiles->tile_group.get(), tiles->exposure_group.get()};
  for (auto* c : comms) c->reset_stats();
  TimedSteps timed = time_steps(trainer, options.iterations, runtime.device);
  row.peak_gpu_mib = timed.peak_gpu_mib;
  // Communication of the timed iterations (the profiled ones below would count twice).
  row.mb_all_reduced = row.comm_ms = row.mb_exchanged = 0;
  for (auto* c : comms) {
    row.mb_all_reduced += c->stats().bytes_all_reduced / 1e6 / options.iterations;
    row.mb_exchanged += c->stats().bytes_exchanged / 1e6 / options.iterations;
    row.comm_ms += 1e3 * c->stats().seconds / options.iterations;
  }
  trainer.profile_stages(true);
  for (int i = 0; i < std::min(options.iterations, 5); ++i) trainer.step();
  trainer.loss_history();
  row.stages = trainer.stage_seconds();
  row.ms_per_profiled_second = 1e3 / std::max(row.stages.iterations, 1);
  trainer.profile_stages(false);

  row.ms_per_iteration = median(timed.ms);
  comm.all_reduce_sum(&row.ms_per_iteration, 1);
  row.ms_per_iteration /= comm.size();
  std::sort(timed.ms.begin(), timed.ms.end());
  row.p10 = timed.ms[timed.ms.size() / 10];
  row.p90 = timed.ms[(timed.ms.size() * 9) / 10];
  row.plane_mb = static_cast<double>(stack.images.nbytes() + stack.sigmas.nbytes() + stack.good.nbytes()) / 1e6;
  row.whole_plane_mb = row.plane_mb;
  if (tiles != nullptr && tiles->tiled()) {
    // Note [halo exchange]: per iteration the ring goes out and its gradient comes back.
    const mpi::TileGeometry& t = tiles->tile;
    const mpi::Neighbours& n = tiles->neighbours;
    const double rows = (n.up >= 0) + (n.down >= 0), cols = (n.left >= 0) + (n.right >= 0);
    row.halo_model_mb = 2.0 * 4 * t.halo * (rows * t.width() + cols * t.frame_height()) / 1e6;
    row.whole_plane_mb = 3.0 * 4 * static_cast<double>(stack.local_count() * t.field_height * t.field_width) / 1e6;
  }
  row.floor = memory_floor(stack, trainer);
  row.floor_ms = 1e3 * row.floor.total() / bandwidth;
  row.peak_rss_mib = peak_rss_mib();
  row.mean_peak_rss_mib = row.peak_rss_mib;
  comm.all_reduce_sum(&row.mean_peak_rss_mib, 1);
  row.mean_peak_rss_mib /= comm.size();
}

void print_row(const BenchOptions& options, const Runtime& runtime, int ranks, double bandwidth, const BenchRow& row) {
  char range[32];
  std::snprintf(range, sizeof(range), "%.0f-%.0f", row.p10, row.p90);
  char gpu[32] = "-";
  if (row.peak_gpu_mib >= 0) std::snprintf(gpu, sizeof(gpu), "%.0f", row.peak_gpu_mib);
  std::printf("%-6d %-6d %-7s %-6d %-7d %10.1f %10s %12.2f %10.2f %8.1f%% %11.0f %11s\n", options.exposures, row.size,
              name_of(row.decoder).c_str(), ranks, runtime.threads, row.ms_per_iteration, range, row.mb_all_reduced,
              row.comm_ms, 100.0 * row.comm_ms / row.ms_per_iteration, row.peak_rss_mib, gpu);
  const StageSeconds& s = row.stages;
  const double per = row.ms_per_profiled_second;
  std::printf("       stages ms/iter: encoder fwd %.1f, decoder+loss %.1f, backward %.1f, "
              "reduce %.1f, optimizer %.1f (all-reduces inside: %.1f)\n",
              s.encoder_forward * per, s.decoder_and_loss * per, s.backward * per, s.reduce * per, s.optimizer * per,
              row.comm_ms);
  std::printf("       tiles %s: rank 0 holds %.1f MB of image planes (%.1f MB for its exposures on the whole field: "
              "%.2fx)",
              row.tiles.c_str(), row.plane_mb, row.whole_plane_mb, row.plane_mb / row.whole_plane_mb);
  if (row.tiles != "1x1") {
    std::printf("; halo %.3f MB sent per iteration (model %.3f MB)", row.mb_exchanged, row.halo_model_mb);
  }
  std::printf("\n");
  const MemoryFloor& f = row.floor;
  std::printf("       memory floor: %.0f MB a rank must move (encoder fwd %.0f, decoder+loss %.0f, backward %.0f, "
              "optimizer %.1f) at %.1f GB/s: %.2f ms, %.1fx below this iteration\n",
              f.total() / 1e6, f.encoder_forward / 1e6, f.decoder_and_loss / 1e6, f.backward / 1e6, f.optimizer / 1e6,
              bandwidth / 1e9, row.floor_ms, row.ms_per_iteration / row.floor_ms);
  std::fflush(stdout);
}

/// Collective. Strong scaling: rank 0 alone on the whole stack, same threads, beside the P-rank time.
void time_single_rank(const BenchOptions& options, const std::string& manifest, const TrainConfig& config,
                      const Runtime& runtime, mpi::Communicator& comm, BenchRow& row) {
  comm.collectively([&] {
    mpi::LocalCommunicator local;
    LoadedStack whole = load_stack(manifest, local);
    whole.stack.normalise(local);
    whole.stack.to_for_training(runtime.device);
    Trainer alone(config, whole.stack, local, runtime.device);
    for (int i = 0; i < options.warmup; ++i) alone.step();
    row.single_rank_ms = median(time_steps(alone, options.iterations, runtime.device).ms);
    std::printf("       scaling: 1 rank %.1f ms/iter, %d ranks %.1f ms/iter: speed-up %.2fx, efficiency %.0f%%\n",
                row.single_rank_ms, comm.size(), row.ms_per_iteration, row.single_rank_ms / row.ms_per_iteration,
                100 * row.single_rank_ms / (comm.size() * row.ms_per_iteration));
    std::fflush(stdout);
  }, comm.rank() == 0);
}

/// Collective. A fresh run of --solution-iterations; when the loss stays within 0.5% of its end.
/// Returns the run's loss history.
std::vector<double> time_to_solution(const BenchOptions& options, const TrainConfig& config, const LocalStack& stack,
                                     const Runtime& runtime, mpi::Communicator& comm, const mpi::TileRanks* tiles,
                                     BenchRow& row) {
  TrainConfig long_run = config;
  long_run.iterations = options.solution_iterations;
  Trainer fresh(long_run, stack, comm, runtime.device, tiles);
  const auto start = std::chrono::steady_clock::now();
  fresh.train();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> losses = fresh.loss_history();
  row.solution_iterations = iterations_to_solution(losses);
  row.solution_ms = 1e3 * seconds / long_run.iterations;
  row.solution_seconds = row.solution_iterations * row.solution_ms / 1e3;
  if (comm.rank() == 0) {
    std::printf("       time to solution (loss within 0.5%% of iteration %d's): %d iterations, %.1f s\n",
                long_run.iterations, row.solution_iterations, row.solution_seconds);
    std::fflush(stdout);
  }
  return losses;
}

/// Rank 0. The plain PyTorch reference on the same stack, per iteration and, with
/// --solution-iterations, to its own solution and to its final loss.
void compare_with_reference(const BenchOptions& options, const std::string& stack_dir, const LocalStack& stack,
                            const Runtime& runtime, const std::vector<double>& solution_losses, BenchRow& row) {
  const int iterations =
      options.solution_iterations > 0 ? options.solution_iterations : options.warmup + options.iterations;
  row.reference = run_reference(options, stack_dir, iterations, runtime.threads, options.warmup);
  const ReferenceRun& reference = row.reference;
  if (reference.ms_per_iteration <= 0) return;
  std::printf("       reference_acn.py (plain PyTorch, same stack, %d threads): %.1f ms/iter (mean of %d after "
              "%d warm-up); astroclear is %.2fx faster per iteration\n",
              runtime.threads, reference.ms_per_iteration, iterations - options.warmup, options.warmup,
              reference.ms_per_iteration / row.ms_per_iteration);
  std::fflush(stdout);
  if (options.solution_iterations <= 0 || static_cast<int>(reference.losses.size()) != iterations) return;
  row.reference_solution_iterations = iterations_to_solution(reference.losses);
  row.reference_solution_seconds = row.reference_solution_iterations * reference.ms_per_iteration / 1e3;
  std::printf("       reference time to solution: %d iterations, %.1f s; astroclear reaches its solution %.2fx sooner\n",
              row.reference_solution_iterations, row.reference_solution_seconds,
              row.reference_solution_seconds / row.solution_seconds);
  // The same target for both: the reference's final loss per good pixel (its loss is a sum; the
  // Huber terms of y/sigma do not depend on the flux unit, so they compare).
  const double target = reference.losses.back() / stack.good_pixels;
  for (std::size_t k = 0; k < solution_losses.size() && row.iterations_to_reference_loss < 0; ++k) {
    if (solution_losses[k] <= target * 1.005) row.iterations_to_reference_loss = static_cast<int>(k) + 1;
  }
  if (row.iterations_to_reference_loss > 0) {
    row.seconds_to_reference_loss = row.iterations_to_reference_loss * row.solution_ms / 1e3;
    std::printf("       the reference's final loss (%.5f per good pixel, within 0.5%%): astroclear after %d "
                "iterations, %.1f s: %.2fx sooner than the reference\n",
                target, row.iterations_to_reference_loss, row.seconds_to_reference_loss,
                row.reference_solution_seconds / row.seconds_to_reference_loss);
  } else {
    std::printf("       astroclear did not reach the reference's final loss (%.5f per good pixel)\n", target);
  }
  std::fflush(stdout);
}

io::JsonObject to_json(const BenchOptions& options, const Runtime& runtime, int ranks, double bandwidth,
                       const BenchRow& row) {
  const double per = row.ms_per_profiled_second;
  io::JsonObject j;
  j["exposures"] = options.exposures;
  j["size"] = row.size;
  j["decoder"] = name_of(row.decoder);
  j["ranks"] = ranks;
  j["threads_per_rank"] = runtime.threads;
  j["device"] = runtime.device.str();
  j["ms_per_iteration"] = row.ms_per_iteration;
  j["mb_all_reduced_per_iteration"] = row.mb_all_reduced;
  j["comm_ms_per_iteration"] = row.comm_ms;
  j["peak_rss_mib_rank0"] = row.peak_rss_mib;
  j["peak_rss_mib_mean"] = row.mean_peak_rss_mib;
  j["peak_gpu_mib_rank0"] = row.peak_gpu_mib >= 0 ? io::JsonObject(row.peak_gpu_mib) : io::JsonObject(nullptr);
  j["tiles"] = row.tiles;
  j["plane_mb_rank0"] = row.plane_mb;
  j["whole_field_plane_mb_rank0"] = row.whole_plane_mb;
  j["halo_mb_per_iteration_rank0"] = row.mb_exchanged;
  j["halo_model_mb_per_iteration_rank0"] = row.halo_model_mb;
  j["stage_ms"] = {{"encoder_forward", row.stages.encoder_forward * per},
                   {"decoder_and_loss", row.stages.decoder_and_loss * per},
                   {"backward", row.stages.backward * per},
                   {"reduce", row.stages.reduce * per},
                   {"optimizer", row.stages.optimizer * per}};
  j["cpu_kernels"] = name_of(options.cpu_kernels);
  j["precision"] = name_of(options.precision);
  j["copy_bandwidth_gb_s"] = bandwidth / 1e9;
  j["floor_mb_per_iteration"] = row.floor.total() / 1e6;
  j["floor_ms_per_iteration"] = row.floor_ms;
  j["single_rank_ms_per_iteration"] = row.single_rank_ms;
  j["solution_iterations"] = row.solution_iterations;
  j["solution_seconds"] = row.solution_seconds;
  j["reference_ms_per_iteration"] = row.reference.ms_per_iteration;
  j["reference_solution_iterations"] = row.reference_solution_iterations;
  j["reference_solution_seconds"] = row.reference_solution_seconds;
  j["iterations_to_reference_loss"] = row.iterations_to_reference_loss;
  j["seconds_to_reference_loss"] = row.seconds_to_reference_loss;
  return j;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  BenchOptions& o = *options;
  CLI::App* command = app.add_subcommand("bench", "time training iterations on simulated stacks (table and JSON)");
  CLI::Option* sizes = add_number(command, "--sizes", o.sizes, "image sides in pixels", Range{16, 1e5})->delimiter(',');
  CLI::Option* exposures = add_number(command, "--exposures", o.exposures, "exposures per stack", Range{2, 1e5});
  command->add_option("--stack", o.stack, "time on this stack (a manifest) instead of simulated ones")
      ->check(CLI::ExistingFile)
      ->excludes(sizes)
      ->excludes(exposures);
  add_choice(command, "--decoders", o.decoders, "fft and/or direct");
  add_number(command, "--warmup", o.warmup, "untimed iterations first", Range{0, 1e6});
  add_number(command, "--iterations", o.iterations, "timed iterations (median reported)", Range{1, 1e6});
  command->add_option("--json", o.json, "also write JSON lines to this file");
  command->add_flag("--overwrite", o.overwrite, "replace an existing --json file");
  command->add_option("--work-dir", o.work_dir, "folder for the temporary simulated stacks");
  command->add_option("--reference", o.reference,
                      "also run this reference_acn.py (plain PyTorch) on the same stacks and print the ratio");
  command->add_option("--python", o.python, "the Python with torch, astropy and numpy for --reference");
  command->add_flag("--scaling", o.scaling, "on P > 1 ranks, also time rank 0 alone: speed-up and efficiency");
  add_number(command, "--solution-iterations", o.solution_iterations,
             "also measure time to solution (loss within 0.5% of its value after this many iterations)", Range{0, 1e9});
  add_choice(command, "--cpu-kernels", o.cpu_kernels,
             "astroclear (its own CPU kernels) or libtorch (LibTorch's operations, as on GPUs)");
  add_choice(command, "--precision", o.precision, "float32, or bf16 for the encoder's convolutions");
  command->add_option("--tiles", o.tiles, "train on RxC tiles (ranks = tiles x exposure shards); default 1x1");
  add_runtime_options(command, o.runtime);
  return {command, [options](const mpi::MpiEnvironment& env) { return run_bench(*options, env); }};
}

int run_bench(const BenchOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  comm.collectively([&] {
    if (!options.json.empty()) io::check_output_path(options.json, options.overwrite);
  }, comm.rank() == 0);
  mpi::TileGrid grid;
  comm.collectively([&] {
    grid = mpi::TileGrid::parse(options.tiles);
    if (!grid.whole_field() && !options.reference.empty()) throw Error("--reference: not with --tiles");
  });
  const ScopedFastCpuKernels kernels(options.cpu_kernels == CpuKernels::kAstroclear);
  const double bandwidth = copy_bandwidth(runtime.device);  // Note [memory floor]
  if (comm.rank() == 0) {
    std::printf("%s: %.1f GB/s on a copy (the memory floor's bandwidth); CPU kernels: %s; encoder precision: %s\n",
                runtime.device.str().c_str(), bandwidth / 1e9, name_of(options.cpu_kernels).c_str(),
                name_of(options.precision).c_str());
    std::printf("%-6s %-6s %-7s %-6s %-7s %10s %10s %12s %10s %9s %11s %11s\n", "n_exp", "size", "decoder", "ranks",
                "threads", "ms/iter", "p10-p90", "MB reduced", "comm ms", "comm %", "peak RSS MB", "peak GPU MB");
  }
  std::vector<io::JsonObject> rows;  // written whole when the benchmark ends
  const bool simulated = options.stack.empty();
  for (const int side : simulated ? options.sizes : std::vector<int>{0}) {
    const std::string dir = simulated ? write_bench_stack(options, side, comm)
                                      : std::filesystem::path(options.stack).parent_path().string();
    const std::string manifest = simulated ? dir + "/stack.toml" : options.stack;
    ValidationConfig no_held_out;
    no_held_out.exposures = 0;
    const TrainConfig defaults;
    const TileRequest request{grid, kernel_halo(defaults.kernel_sizes)};
    LoadedStack loaded = load_for_fit(manifest, no_held_out, comm, 0, request);  // normalised
    BenchOptions stack_options = options;  // the rows name the exposures of the stack timed
    stack_options.exposures = loaded.stack.total_exposures;
    loaded.stack.to_for_training(runtime.device);
    for (const DecoderChoice decoder : options.decoders) {
      BenchRow row;
      row.size = static_cast<int>(loaded.plan.width);
      row.decoder = decoder;
      row.tiles = grid.text();
      TrainConfig config;
      config.decoder = decoder;
      config.precision = options.precision;
      config.iterations = options.warmup + options.iterations;
      Trainer trainer(config, loaded.stack, comm, runtime.device, loaded.tiles.get());
      time_iterations(trainer, stack_options, loaded.stack, runtime, bandwidth, comm, loaded.tiles.get(), row);
      if (comm.rank() == 0) print_row(stack_options, runtime, comm.size(), bandwidth, row);
      if (options.scaling && comm.size() > 1) time_single_rank(options, manifest, config, runtime, comm, row);
      std::vector<double> solution_losses;
      if (options.solution_iterations > 0) {
        solution_losses = time_to_solution(options, config, loaded.stack, runtime, comm, loaded.tiles.get(), row);
      }
      if (comm.rank() == 0 && !options.reference.empty() && decoder == DecoderChoice::kFft && comm.size() == 1) {
        compare_with_reference(options, dir, loaded.stack, runtime, solution_losses, row);
      }
      if (comm.rank() == 0) rows.push_back(to_json(stack_options, runtime, comm.size(), bandwidth, row));
    }
    comm.barrier();
    if (simulated && comm.rank() == 0) io::remove_tree(dir);
  }
  comm.collectively([&] {
    if (!options.json.empty()) io::write_json_lines(options.json, rows);
  }, comm.rank() == 0);
  return kExitDone;
}

}  // namespace astroclear::jobs
