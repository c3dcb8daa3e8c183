// astroclear coadd / rl: the two classical images users compare AstroClearNet with.
#include <spdlog/spdlog.h>

#include "io/fits_output.hpp"
#include "jobs/clock_text.hpp"
#include "jobs/commands.hpp"
#include "jobs/provenance.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/tensor_image.hpp"
#include "src/coadd.hpp"
#include "src/richardson_lucy.hpp"
#include "src/trainer.hpp"

namespace astroclear::jobs {

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
  TrainConfig decoder_choice;  // train's rule for --decoder auto, at its default FFT threshold
  decoder_choice.decoder = options.decoder;
  const PsfDecoder decoder(stack.psfs, stack.height(), stack.width(),
                           choose_decoder(decoder_choice, largest_psf_side(stack.psfs)), runtime.device);
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
