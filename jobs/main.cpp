// astroclear: the command line (simulate, train, coadd, rl, evaluate, inspect, compare, bench); MPI-aware errors.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <limits>

#include <CLI/CLI.hpp>

#include "jobs/commands.hpp"
#include "mpi/error.hpp"

namespace {

using astroclear::jobs::RuntimeOptions;

using astroclear::jobs::kExitError;
using astroclear::jobs::kExitUsage;

void add_runtime_options(CLI::App* app, RuntimeOptions& r) {
  app->add_option("--device", r.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app->add_option("--threads", r.threads, "CPU threads per rank (default: cores / ranks on the node)");
  app->add_option("--comm", r.comm, "all-reduce backend: auto (NCCL on GPUs), mpi or nccl")
      ->check(CLI::IsMember({"auto", "mpi", "nccl"}));
  app->add_option("--tf32", r.tf32,
                  "on a GPU, TF32 math in convolutions and matrix products: default (LibTorch's), on or off")
      ->check(CLI::IsMember({"default", "on", "off"}));
}

void configure_logging(int rank) {
  auto logger = spdlog::stdout_logger_mt("astroclear");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [rank " + std::to_string(rank) + "] [%l] %v");
  logger->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Note [large allocations]: every intermediate tensor of an iteration is exposure-sized: 33 x 512^2
// floats are 35 MB, above glibc's largest mmap threshold (32 MB). Each such malloc then maps
// fresh pages and each free unmaps them, so every iteration page-faults its whole working set
// anew: measured at 512 px on 2 threads, a branch's depthwise convolution took 65-82 ms instead
// of 18-24, a ReLU 12-18 ms instead of 2.3, a BatchNorm twice its time. Serving all allocations
// from the heap and never trimming it keeps freed blocks for the next iteration; the process holds
// its peak memory until it exits, as HPC jobs do.
void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();
  astroclear::mpi::MpiEnvironment env(argc, argv);
  configure_logging(env.rank());

  CLI::App app{"astroclear: restore a sharp, denoised, non-negative image from a stack of exposures"};
  app.set_config("--config", "", "TOML file with one [train], [coadd] or [simulate] table; flags override it");
  app.require_subcommand(1);

  astroclear::jobs::SimulateOptions sim;
  CLI::App* simulate = app.add_subcommand("simulate", "write a simulated HSC-like stack (FITS) with its truth");
  simulate->add_option("--output-dir,-o", sim.output_dir, "folder for the stack (created)")->required();
  simulate->add_option("--exposures", sim.config.exposures, "number of exposures");
  int simulate_size = 0;
  simulate->add_option("--size", simulate_size, "image side in pixels (square)");
  simulate->add_option("--seed", sim.config.seed, "random seed");
  simulate->add_option("--seeing-min", sim.config.seeing_min_arcsec, "smallest PSF FWHM (arcsec)");
  simulate->add_option("--seeing-max", sim.config.seeing_max_arcsec, "largest PSF FWHM (arcsec)");
  simulate->add_flag("--overwrite", sim.overwrite, "replace a stack already in the folder");

  astroclear::jobs::TrainOptions train;
  CLI::App* train_cmd = app.add_subcommand("train", "train AstroClearNet on a stack and write the latent image");
  train_cmd->add_option("--manifest,-m", train.manifest, "stack manifest (TOML)")->required();
  train_cmd->add_option("--output,-o", train.output, "latent image (FITS)")->required();
  train_cmd->add_option("--preview", train.preview, "also write a PNG: coadd | restored");
  train_cmd->add_flag("--overwrite", train.overwrite, "replace existing outputs");
  train_cmd->add_flag("--with-coadd", train.with_coadd, "add the inverse-variance coadd as HDU COADD");
  train_cmd->add_flag("--with-residuals", train.with_residuals, "add per-exposure chi residual maps CHI_nnn");
  {
    auto& c = train.config;
    train_cmd->add_option("--iterations,-n", c.iterations, "training iterations");
    train_cmd->add_option("--learning-rate", c.learning_rate, "Adam learning rate");
    train_cmd->add_option("--huber-delta", c.huber_delta, "Huber delta, in units of sigma");
    train_cmd->add_option("--kernel-sizes", c.kernel_sizes, "odd kernel size of each depthwise branch")->delimiter(',');
    train_cmd->add_option("--seed", c.seed, "initialisation seed");
    train_cmd->add_option("--init", c.init, "identity (start at the weighted mean) or random");
    train_cmd->add_option("--decoder", c.decoder, "PSF convolution: auto, fft or direct");
    train_cmd->add_option("--precision", c.precision, "float32, or bf16 for the encoder's convolutions and activations");
    train_cmd->add_option("--fft-min-psf-size", c.fft_min_psf_size, "auto uses the FFT for PSFs this size or larger");
    train_cmd->add_option("--log-every", c.log_every, "progress line every N iterations");
  }
  {
    auto& c = train.checkpoint;
    train_cmd->add_option("--resume", c.resume, "none, auto (latest valid checkpoint, else start fresh) or a checkpoint file");
    train_cmd->add_option("--checkpoint-dir", c.directory, "checkpoint folder (default: OUTPUT without .fits, plus .checkpoints)");
    train_cmd->add_option("--checkpoint-every", c.every, "checkpoint every N iterations (0: by time and at the end only)");
    train_cmd->add_option("--checkpoint-minutes", c.minutes, "checkpoint every M minutes of wall time (0: not by time)");
    train_cmd->add_option("--keep-checkpoints", c.keep, "checkpoints kept in the folder");
    train_cmd->add_option("--test-kill-midway-at", c.kill_midway_at, "tests: die halfway through this iteration's checkpoint")
        ->group("");
  }
  add_runtime_options(train_cmd, train.runtime);

  astroclear::jobs::CoaddOptions coadd;
  CLI::App* coadd_cmd = app.add_subcommand("coadd", "write the masked inverse-variance weighted coadd");
  coadd_cmd->add_option("--manifest,-m", coadd.manifest, "stack manifest (TOML)")->required();
  coadd_cmd->add_option("--output,-o", coadd.output, "coadd (FITS)")->required();
  coadd_cmd->add_flag("--overwrite", coadd.overwrite, "replace an existing output");
  add_runtime_options(coadd_cmd, coadd.runtime);

  astroclear::jobs::RichardsonLucyOptions rl;
  CLI::App* rl_cmd = app.add_subcommand("rl", "multi-frame Richardson-Lucy deconvolution of the stack (the classical peer)");
  rl_cmd->add_option("--manifest,-m", rl.manifest, "stack manifest (TOML)")->required();
  rl_cmd->add_option("--output,-o", rl.output, "latent image (FITS)")->required();
  rl_cmd->add_flag("--overwrite", rl.overwrite, "replace an existing output");
  rl_cmd->add_option("--iterations,-n", rl.config.iterations, "Richardson-Lucy iterations");
  rl_cmd->add_option("--pedestal", rl.config.pedestal, "positive pedestal added to data and model, in median sigmas");
  rl_cmd->add_option("--decoder", rl.decoder, "PSF convolution: auto, fft or direct")
      ->check(CLI::IsMember({"auto", "fft", "direct"}));
  add_runtime_options(rl_cmd, rl.runtime);

  astroclear::jobs::EvaluateOptions evaluate;
  CLI::App* evaluate_cmd = app.add_subcommand(
      "evaluate", "score images against a simulated stack's truth: detections (SExtractor), photometry, image metrics");
  evaluate_cmd->add_option("images", evaluate.results, "FITS images to score, side by side")->required();
  evaluate_cmd->add_option("--compare", evaluate.compare, "more images for the same table (e.g. coadd.fits rl.fits)");
  evaluate_cmd->add_option("--truth", evaluate.truth_dir, "folder with truth.fits and truth_catalog.csv")->required();
  evaluate_cmd->add_option("--hdu", evaluate.hdu, "EXTNAME of the HDU to score (default: first image)");
  evaluate_cmd->add_option("--reconvolve", evaluate.reconvolve, "auto (latent images), yes or no: convolve with the target PSF first")
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  evaluate_cmd->add_option("--threshold", evaluate.threshold, "absolute detection threshold (default: --threshold-sigma x coadd noise)");
  evaluate_cmd->add_option("--threshold-sigma", evaluate.threshold_sigma, "threshold in units of the coadd's noise (truth.fits NOISECOA)");
  evaluate_cmd->add_option("--min-area", evaluate.min_area, "SExtractor DETECT_MINAREA (pixels)");
  evaluate_cmd->add_option("--border", evaluate.border, "pixels at the edges left out of every score");
  evaluate_cmd->add_option("--match-radius", evaluate.match_radius, "pixels (default: target FWHM)");
  evaluate_cmd->add_option("--aperture", evaluate.aperture, "photometry aperture diameter, pixels (default: 4 x target FWHM)");
  evaluate_cmd->add_option("--photometry-flux", evaluate.photometry_flux, "photometry of matched sources brighter than this");
  evaluate_cmd->add_option("--json", evaluate.json, "also write one JSON object per image to this file");
  evaluate_cmd->add_flag("--overwrite", evaluate.overwrite, "replace an existing --json file");
  evaluate_cmd->add_option("--sextractor", evaluate.sextractor, "SExtractor executable (default: source-extractor or sex on PATH)");
  evaluate_cmd->add_option("--keep", evaluate.keep_dir, "keep SExtractor's images, configuration and catalogues in this folder");

  astroclear::jobs::InspectOptions inspect;
  CLI::App* inspect_cmd = app.add_subcommand("inspect", "print a checkpoint's iteration, loss, configuration, inputs and ranks");
  inspect_cmd->add_option("checkpoint", inspect.path, "checkpoint file, or checkpoint folder (its latest valid one)")->required();

  astroclear::jobs::CompareOptions compare;
  CLI::App* compare_cmd = app.add_subcommand("compare", "relative L2 difference of two FITS images");
  compare_cmd->add_option("first", compare.first, "reference image")->required();
  compare_cmd->add_option("second", compare.second, "image to compare")->required();
  compare_cmd->add_option("--hdu", compare.hdu, "EXTNAME of the HDU to compare (default: first image)");
  compare_cmd->add_option("--tolerance", compare.tolerance, "exit with code 3 when the difference is larger");

  astroclear::jobs::BenchOptions bench;
  CLI::App* bench_cmd = app.add_subcommand("bench", "time training iterations on simulated stacks (table and JSON)");
  bench_cmd->add_option("--sizes", bench.sizes, "image sides in pixels")->delimiter(',');
  bench_cmd->add_option("--exposures", bench.exposures, "exposures per stack");
  bench_cmd->add_option("--decoders", bench.decoders, "fft and/or direct")->delimiter(',');
  bench_cmd->add_option("--warmup", bench.warmup, "untimed iterations first");
  bench_cmd->add_option("--iterations", bench.iterations, "timed iterations (median reported)");
  bench_cmd->add_option("--json", bench.json, "also write JSON lines to this file");
  bench_cmd->add_flag("--overwrite", bench.overwrite, "replace an existing --json file");
  bench_cmd->add_option("--work-dir", bench.work_dir, "folder for the temporary simulated stacks");
  bench_cmd->add_option("--reference", bench.reference,
                        "also run this reference_acn.py (plain PyTorch) on the same stacks and print the ratio");
  bench_cmd->add_option("--python", bench.python, "the Python with torch, astropy and numpy for --reference");
  bench_cmd->add_flag("--scaling", bench.scaling, "on P > 1 ranks, also time rank 0 alone: speed-up and efficiency");
  bench_cmd->add_option("--solution-iterations", bench.solution_iterations,
                        "also measure time to solution (loss within 0.5% of its value after this many iterations)");
  bench_cmd->add_option("--cpu-kernels", bench.cpu_kernels,
                        "astroclear (its own CPU kernels) or libtorch (LibTorch's operations, as on GPUs)")
      ->check(CLI::IsMember({"astroclear", "libtorch"}));
  bench_cmd->add_option("--precision", bench.precision, "float32, or bf16 for the encoder's convolutions")
      ->check(CLI::IsMember({"float32", "bf16"}));
  add_runtime_options(bench_cmd, bench.runtime);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = env.rank() == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 2);
    return code == 0 ? 0 : kExitUsage;
  }

  if (simulate_size > 0) sim.config.height = sim.config.width = simulate_size;
  try {
    if (*simulate) return astroclear::jobs::run_simulate(sim, env);
    if (*train_cmd) return astroclear::jobs::run_train(train, env);
    if (*coadd_cmd) return astroclear::jobs::run_coadd(coadd, env);
    if (*rl_cmd) return astroclear::jobs::run_rl(rl, env);
    if (*evaluate_cmd) return env.rank() == 0 ? astroclear::jobs::run_evaluate(evaluate) : 0;
    if (*bench_cmd) return astroclear::jobs::run_bench(bench, env);
    if (*inspect_cmd) return env.rank() == 0 ? astroclear::jobs::run_inspect(inspect) : 0;
    if (*compare_cmd) return env.rank() == 0 ? astroclear::jobs::run_compare(compare) : 0;
  } catch (const astroclear::CollectiveError& e) {
    // Every rank holds this error: rank 0 reports it once, all stop in order.
    if (env.rank() == 0) spdlog::error("{}{}", e.what(), e.rank() > 0 ? " (on rank " + std::to_string(e.rank()) + ")" : "");
    return kExitError;
  } catch (const std::exception& e) {
    // Only this rank failed: the others may be waiting in a collective, so stop the world.
    spdlog::error("{}", e.what());
    if (env.size() > 1) env.abort(kExitError);
    return kExitError;
  }
  return 0;
}
