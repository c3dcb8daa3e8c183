// astroclear coadd / rl: the two classical images users compare AstroClearNet with.
#include "jobs/baselines_command.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "common/error.hpp"
#include "io/fits_output.hpp"
#include "io/manifest.hpp"
#include "jobs/cli.hpp"
#include "jobs/clock_text.hpp"
#include "jobs/coverage.hpp"
#include "jobs/provenance.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/tensor_image.hpp"
#include "eval/coadd.hpp"
#include "eval/richardson_lucy.hpp"
#include "src/trainer.hpp"

namespace astroclear::jobs {

Command add_coadd_command(CLI::App& app) {
  auto options = std::make_shared<CoaddOptions>();
  CLI::App* command = app.add_subcommand("coadd", "write the masked inverse-variance weighted coadd");
  command->add_option("--manifest,-m", options->manifest, "stack manifest (TOML)")->required();
  command->add_option("--output,-o", options->output, "coadd (FITS)")->required();
  command->add_flag("--overwrite", options->overwrite, "replace an existing output");
  add_runtime_options(command, options->runtime);
  return {command, [options](const mpi::MpiEnvironment& env) { return run_coadd(*options, env); }};
}

namespace {

/// The options every iterative restoration takes.
void add_iterative_options(CLI::App* command, IterativeOptions& options, int& iterations, ValidationConfig& validation,
                           double& pedestal) {
  command->add_option("--manifest,-m", options.manifest, "stack manifest (TOML)")->required();
  command->add_option("--output,-o", options.output, "latent image (FITS)")->required();
  command->add_flag("--overwrite", options.overwrite, "replace an existing output");
  add_number(command, "--iterations,-n", iterations, "iterations (the most, with --stop best)", Range{1, 1e9});
  add_number(command, "--pedestal", pedestal, "positive pedestal added to data and model, in median sigmas",
             Range{0, 1e6, true});
  add_choice(command, "--decoder", options.decoder, "PSF convolution: auto, fft or direct");
  add_number(command, "--log-every", options.log_every, "progress line every N iterations", Range{1, 1e9});
  add_number(command, "--target-fwhm", options.target_fwhm,
             "restore to a Gaussian resolution of this FWHM (pixels) instead of deconvolving fully", Range{0, 50});
  command->add_option("--tiles", options.tiles,
                      "cut the field into RxC tiles; ranks = tiles x exposure shards (default 1x1: the whole field)");
  command->add_flag("--psf-per-tile", options.psf_per_tile,
                    "with --tiles: each tile takes its exposures' PSFEx models at its own centre");
  add_validation_options(command, validation);
  add_runtime_options(command, options.runtime);
}

/// What an iterative restoration writes besides the common provenance.
struct IterativeMethod {
  const char* name;     ///< for the log: "Richardson-Lucy"
  const char* product;  ///< ACPROD
  int iterations = 0;
  ValidationConfig validation;
  std::vector<io::HeaderCard> cards;  ///< the method's settings
  /// Runs the method on the normalised stack; returns the result in calibrated flux.
  std::function<torch::Tensor(const LocalStack&, const PsfDecoder&, const IterationHooks&, mpi::Communicator&)> run;
};

/// Collective. Loads the stack (holding out exposures as `method.validation` says), runs the
/// method with progress lines and held-out scoring, and writes its result on rank 0.
int run_iterative(const IterativeOptions& options, const IterativeMethod& method, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  mpi::TileGrid grid;
  comm.collectively([&] { grid = mpi::TileGrid::parse(options.tiles); });
  comm.collectively([&] {
    io::check_output_path(options.output, options.overwrite, io::input_files(io::load_manifest(options.manifest)));
  }, comm.rank() == 0);
  LoadedStack loaded =
      load_for_fit(options.manifest, method.validation, comm, options.target_fwhm, TileRequest{grid, 0, options.psf_per_tile});
  const FieldView field(comm, loaded.tiles.get());
  LocalStack& stack = loaded.stack;
  stack.to(runtime.device);
  loaded.held_out.to_for_training(runtime.device);
  // train's rule for --decoder auto, at its default FFT threshold
  const PsfDecoder::Mode mode =
      choose_decoder(options.decoder, TrainConfig{}.fft_min_psf_size, largest_psf_side(stack.psfs));
  const PsfDecoder decoder(stack.psfs, stack.height(), stack.width(), mode, runtime.device);
  if (comm.rank() == 0) {
    spdlog::info("{}: {} exposures of {} px fitted, {} held out, at most {} iterations, {} decoder", method.name,
                 stack.total_exposures, io::shape_text(loaded.plan.height, loaded.plan.width), loaded.held_out.total_exposures,
                 method.iterations, decoder.mode_name());
  }
  std::optional<HeldOutLoss> held_out;
  std::optional<ValidationTrack> track;
  IterationHooks hooks;
  if (field.tiled()) hooks.field = &field;
  if (loaded.held_out.total_exposures > 0) {
    held_out.emplace(loaded.held_out, 1.0, mode, runtime.device);  // the Huber delta of train's default loss
    track.emplace(method.validation);
    hooks.held_out = &*held_out;
    hooks.track = &*track;
  }
  int done = 0;
  double last_change = 0;
  hooks.progress = [&](int it, double change) {
    done = it;
    last_change = change;
    if (comm.rank() != 0 || (it % options.log_every != 0 && it != method.iterations)) return;
    if (track && !track->empty()) {
      spdlog::info("iter {:>5}/{} relative change {:.3e} held-out {:.6f} (lowest at {})", it, method.iterations,
                   change, track->last_loss(), track->best_iteration());
    } else {
      spdlog::info("iter {:>5}/{} relative change {:.3e}", it, method.iterations, change);
    }
  };
  const auto start = std::chrono::steady_clock::now();
  const torch::Tensor latent = method.run(stack, decoder, hooks, comm);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (comm.rank() == 0 && track) spdlog::info("stopped: {}", track->stop_reason(done, method.iterations));
  const Coverage coverage = stack_coverage(loaded, comm);
  comm.collectively([&] {
    io::OutputHdu primary{"", to_image(latent), provenance_cards(loaded, method.product), input_history(loaded)};
    primary.cards.push_back({"ACITER", std::to_string(done), std::string(method.name) + " iterations run"});
    for (const auto& card : method.cards) primary.cards.push_back(card);
    primary.cards.push_back({"ACCHANGE", std::to_string(last_change), "relative change of the last iteration"});
    primary.cards.push_back({"ACDECOD", quoted(decoder.mode_name()), "PSF convolution"});
    primary.cards.push_back({"ACTFWHM", std::to_string(options.target_fwhm), "resolution, Gaussian FWHM px (0: none)"});
    primary.cards.push_back({"ACTIME", std::to_string(seconds), "wall time (s)"});
    if (track) add_validation_provenance(primary, loaded, *track, method.validation.stop, done, method.iterations);
    std::vector<io::OutputHdu> hdus{primary};
    add_coverage(hdus, coverage);
    io::write_fits_atomically(options.output, hdus, options.overwrite);
    spdlog::info("wrote {} ({} iterations in {})", options.output, done, format_duration(seconds));
  }, comm.rank() == 0);
  return kExitDone;
}

}  // namespace

Command add_rl_command(CLI::App& app) {
  auto options = std::make_shared<RichardsonLucyOptions>();
  CLI::App* command =
      app.add_subcommand("rl", "multi-frame Richardson-Lucy deconvolution of the stack (the classical peer)");
  add_iterative_options(command, *options, options->config.iterations, options->config.validation,
                        options->config.pedestal);
  return {command, [options](const mpi::MpiEnvironment& env) { return run_rl(*options, env); }};
}

Command add_mm_command(CLI::App& app) {
  auto options = std::make_shared<ImageMmOptions>();
  ImageMmConfig& c = options->config;
  CLI::App* command = app.add_subcommand(
      "mm", "ImageMM: weighted multiplicative majorise-minimise restoration of the stack (the strongest classical peer)");
  add_iterative_options(command, *options, c.iterations, c.validation, c.pedestal);
  add_number(command, "--kappa", c.kappa, "the largest factor by which one iteration moves a pixel",
             Range{1, 1e6, true});
  add_number(command, "--huber-delta", c.huber_delta, "of the robust weights, in sigmas", Range{0, 1000, true});
  command->add_flag("!--no-robust", c.robust, "plain inverse-variance weights instead of robust Huber weights");
  return {command, [options](const mpi::MpiEnvironment& env) { return run_mm(*options, env); }};
}

int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  comm.collectively([&] {
    io::check_output_path(options.output, options.overwrite, io::input_files(io::load_manifest(options.manifest)));
  }, comm.rank() == 0);
  LoadedStack loaded = load_stack(options.manifest, comm);
  torch::Tensor coadd = inverse_variance_coadd(loaded.stack, comm);
  const Coverage coverage = stack_coverage(loaded, comm);
  comm.collectively([&] {
    std::vector<io::OutputHdu> hdus{{"", to_image(coadd), provenance_cards(loaded, kProductCoadd), input_history(loaded)}};
    add_coverage(hdus, coverage);
    io::write_fits_atomically(options.output, hdus, options.overwrite);
    spdlog::info("wrote {}", options.output);
  }, comm.rank() == 0);
  return kExitDone;
}

int run_rl(const RichardsonLucyOptions& options, const mpi::MpiEnvironment& env) {
  const RichardsonLucyConfig& config = options.config;
  config.validate();
  IterativeMethod method{"Richardson-Lucy", kProductRichardsonLucy, config.iterations, config.validation, {}, {}};
  method.cards.push_back({"ACPEDEST", std::to_string(config.pedestal), "pedestal (median sigmas)"});
  method.run = [&](const LocalStack& stack, const PsfDecoder& decoder, const IterationHooks& hooks,
                   mpi::Communicator& comm) { return richardson_lucy(stack, decoder, config, comm, hooks); };
  return run_iterative(options, method, env);
}

int run_mm(const ImageMmOptions& options, const mpi::MpiEnvironment& env) {
  const ImageMmConfig& config = options.config;
  config.validate();
  IterativeMethod method{"ImageMM", kProductImageMm, config.iterations, config.validation, {}, {}};
  method.cards.push_back({"ACPEDEST", std::to_string(config.pedestal), "pedestal (median sigmas)"});
  method.cards.push_back({"ACKAPPA", std::to_string(config.kappa), "largest factor of one step"});
  method.cards.push_back({"ACROBUST", config.robust ? "T" : "F", "robust Huber weights"});
  method.cards.push_back({"ACHUBER", std::to_string(config.huber_delta), "Huber delta of the weights (sigmas)"});
  method.run = [&](const LocalStack& stack, const PsfDecoder& decoder, const IterationHooks& hooks,
                   mpi::Communicator& comm) { return image_mm(stack, decoder, config, comm, hooks); };
  return run_iterative(options, method, env);
}

}  // namespace astroclear::jobs
