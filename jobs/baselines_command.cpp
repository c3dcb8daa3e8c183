// astroclear coadd / rl: the two classical images users compare AstroClearNet with.
#include "jobs/baselines_command.hpp"

#include <spdlog/spdlog.h>

#include <memory>

#include "io/fits_output.hpp"
#include "jobs/cli.hpp"
#include "jobs/clock_text.hpp"
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

Command add_rl_command(CLI::App& app) {
  auto options = std::make_shared<RichardsonLucyOptions>();
  CLI::App* command =
      app.add_subcommand("rl", "multi-frame Richardson-Lucy deconvolution of the stack (the classical peer)");
  command->add_option("--manifest,-m", options->manifest, "stack manifest (TOML)")->required();
  command->add_option("--output,-o", options->output, "latent image (FITS)")->required();
  command->add_flag("--overwrite", options->overwrite, "replace an existing output");
  command->add_option("--iterations,-n", options->config.iterations, "Richardson-Lucy iterations");
  command->add_option("--pedestal", options->config.pedestal,
                      "positive pedestal added to data and model, in median sigmas");
  add_choice(command, "--decoder", options->decoder, "PSF convolution: auto, fft or direct");
  add_runtime_options(command, options->runtime);
  return {command, [options](const mpi::MpiEnvironment& env) { return run_rl(*options, env); }};
}

int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  comm.collectively([&] { io::check_output_path(options.output, options.overwrite); });
  LoadedStack loaded = load_stack(options.manifest, comm);
  torch::Tensor coadd = inverse_variance_coadd(loaded.stack, comm);
  comm.collectively([&] {
    io::OutputHdu primary{"", to_image(coadd), provenance_cards(loaded, kProductCoadd), input_history(loaded)};
    io::write_fits_atomically(options.output, {primary}, options.overwrite);
    spdlog::info("wrote {}", options.output);
  }, comm.rank() == 0);
  return kExitDone;
}

int run_rl(const RichardsonLucyOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  comm.collectively([&] {
    options.config.validate();
    io::check_output_path(options.output, options.overwrite);
  }, comm.rank() == 0);
  LoadedStack loaded = load_stack(options.manifest, comm);
  LocalStack& stack = loaded.stack;
  stack.normalise(comm);
  stack.to(runtime.device);
  // train's rule for --decoder auto, at its default FFT threshold
  const PsfDecoder decoder(stack.psfs, stack.height(), stack.width(),
                           choose_decoder(options.decoder, TrainConfig{}.fft_min_psf_size, largest_psf_side(stack.psfs)),
                           runtime.device);
  if (comm.rank() == 0) {
    spdlog::info("Richardson-Lucy: {} exposures of {} px, {} iterations, pedestal {} sigma, {} decoder",
                 stack.total_exposures, io::shape_text(stack.height(), stack.width()), options.config.iterations,
                 options.config.pedestal, decoder.mode_name());
  }
  const auto start = std::chrono::steady_clock::now();
  double last_change = 0;
  torch::Tensor latent = richardson_lucy(stack, decoder, options.config, comm, [&](int it, double change) {
    last_change = change;
    if (comm.rank() == 0 && (it % 10 == 0 || it == options.config.iterations)) {
      spdlog::info("iter {:>5}/{} relative change {:.3e}", it, options.config.iterations, change);
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  comm.collectively([&] {
    io::OutputHdu primary{"", to_image(latent), provenance_cards(loaded, kProductRichardsonLucy), input_history(loaded)};
    primary.cards.push_back({"ACITER", std::to_string(options.config.iterations), "Richardson-Lucy iterations"});
    primary.cards.push_back({"ACPEDEST", std::to_string(options.config.pedestal), "pedestal (median sigmas)"});
    primary.cards.push_back({"ACCHANGE", std::to_string(last_change), "relative change of the last iteration"});
    primary.cards.push_back({"ACDECOD", quoted(decoder.mode_name()), "PSF convolution"});
    primary.cards.push_back({"ACTIME", std::to_string(seconds), "wall time (s)"});
    io::write_fits_atomically(options.output, {primary}, options.overwrite);
    spdlog::info("wrote {} ({} iterations in {})", options.output, options.config.iterations, format_duration(seconds));
  }, comm.rank() == 0);
  return kExitDone;
}

}  // namespace astroclear::jobs
