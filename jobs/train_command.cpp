// astroclear train / coadd: load this rank's exposures, train or coadd, write on rank 0.
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "io/fits_output.hpp"
#include "io/png_preview.hpp"
#include "jobs/commands.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/tensor_image.hpp"
#include "mpi/error.hpp"
#include "src/coadd.hpp"
#include "src/trainer.hpp"

#ifndef ASTROCLEAR_VERSION
#define ASTROCLEAR_VERSION "unknown"
#endif

namespace astroclear::jobs {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
  return text;
}

std::string format_duration(double seconds) {
  char text[32];
  if (seconds < 120) std::snprintf(text, sizeof(text), "%.1f s", seconds);
  else if (seconds < 7200) std::snprintf(text, sizeof(text), "%.1f min", seconds / 60);
  else std::snprintf(text, sizeof(text), "%.1f h", seconds / 3600);
  return text;
}

/// Cards every astroclear output carries: WCS of the first exposure, origin, inputs.
std::vector<io::HeaderCard> provenance_cards(const LoadedStack& loaded, const std::string& product) {
  std::vector<io::HeaderCard> cards = io::wcs_cards(loaded.first_header);
  cards.push_back({"ORIGIN", quoted("astroclear"), "software that made this file"});
  cards.push_back({"ACVERS", quoted(ASTROCLEAR_VERSION), "astroclear version"});
  cards.push_back({"ACPROD", quoted(product), "what this image is"});
  cards.push_back({"DATE", quoted(utc_now()), "UTC time the file was written"});
  cards.push_back({"ACNEXP", std::to_string(loaded.plan.spec.exposures.size()), "exposures in the stack"});
  cards.push_back({"BUNIT", quoted("calibrated flux / pixel"), "input units divided by each FSCALE"});
  return cards;
}

std::vector<std::string> input_history(const LoadedStack& loaded) {
  std::vector<std::string> lines{"astroclear manifest: " + loaded.plan.spec.source};
  const auto& exposures = loaded.plan.spec.exposures;
  for (std::size_t t = 0; t < exposures.size(); ++t) {
    char prefix[32];
    std::snprintf(prefix, sizeof(prefix), "input %03zu: ", t);
    lines.push_back(prefix + exposures[t].label() + " psf " + exposures[t].psf);
  }
  return lines;
}

/// Chi maps of all exposures, gathered on rank 0 (empty elsewhere) in exposure order.
std::vector<torch::Tensor> gather_residuals(Trainer& trainer, const LoadedStack& loaded, mpi::Communicator& comm) {
  torch::Tensor local = trainer.chi_residuals().contiguous();
  std::vector<torch::Tensor> all;
  const auto& owners = loaded.plan.owners;
  for (int r = 0; r < comm.size(); ++r) {
    for (std::size_t k = 0; k < owners[r].size(); ++k) {
      const int t = owners[r][k];
      if (r == comm.rank() && r == 0) {
        all.push_back(local[static_cast<std::int64_t>(k)]);
      } else if (r == comm.rank()) {
        torch::Tensor plane = local[static_cast<std::int64_t>(k)].contiguous();
        comm.send(plane.data_ptr<float>(), plane.numel(), 0, t);
      } else if (comm.rank() == 0) {
        torch::Tensor plane = torch::empty({loaded.plan.height, loaded.plan.width});
        comm.receive(plane.data_ptr<float>(), plane.numel(), r, t);
        all.push_back(plane);
      }
    }
  }
  return all;
}

}  // namespace

int run_train(const TrainOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  const TrainConfig& config = options.config;
  // Everything that can be refused is refused before any work.
  comm.collectively([&] {
    config.validate();
    io::check_output_path(options.output, options.overwrite);
    if (!options.preview.empty()) io::check_output_path(options.preview, options.overwrite);
  });
  if (comm.rank() == 0) spdlog::info("config: {}", config.to_text());

  LoadedStack loaded = load_stack(options.manifest, comm);
  LocalStack& stack = loaded.stack;
  stack.normalise(comm);
  stack.to(runtime.device);
  if (comm.rank() == 0) {
    spdlog::info("stack: {} exposures of {} px, {:.0f} good pixels, flux unit {:.4g}", stack.total_exposures,
                 io::shape_text(stack.height(), stack.width()), stack.good_pixels, stack.flux_unit);
  }

  Trainer trainer(config, stack, comm, runtime.device);
  if (comm.rank() == 0) {
    const PsfDecoder& decoder = trainer.decoder();
    spdlog::info("decoder: {} (PSFs up to {} px)", decoder.mode_name(),
                 std::max(decoder.kernel_height(), decoder.kernel_width()));
  }
  const auto start = std::chrono::steady_clock::now();
  trainer.train([&](const TrainProgress& p) {
    if (comm.rank() == 0) {
      spdlog::info("iter {:>6}/{} loss {:.6f} {:8.1f} ms/it ETA {}", p.iteration, p.iterations, p.loss,
                   p.ms_per_iteration, format_duration(p.eta_seconds));
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double final_loss = trainer.loss_history().empty() ? 0.0 : trainer.loss_history().back();

  torch::Tensor latent = trainer.latent();
  torch::Tensor coadd;
  if (options.with_coadd || !options.preview.empty()) coadd = inverse_variance_coadd(stack, comm);
  std::vector<torch::Tensor> residuals;
  if (options.with_residuals) residuals = gather_residuals(trainer, loaded, comm);

  comm.collectively([&] {
    std::vector<io::OutputHdu> hdus;
    io::OutputHdu primary;
    primary.image = to_image(latent);
    primary.cards = provenance_cards(loaded, "AstroClearNet latent image");
    primary.cards.push_back({"ACITER", std::to_string(trainer.iteration()), "training iterations"});
    primary.cards.push_back({"ACLOSS", std::to_string(final_loss), "final masked Huber loss per good pixel"});
    primary.cards.push_back({"ACRANKS", std::to_string(comm.size()), "MPI ranks used"});
    primary.cards.push_back({"ACDECOD", quoted(trainer.decoder().mode_name()),
                             "PSF decoder"});
    primary.cards.push_back({"ACFUNIT", std::to_string(stack.flux_unit), "flux unit of the normalised inputs"});
    primary.cards.push_back({"ACTIME", std::to_string(seconds), "training wall time (s)"});
    primary.history = input_history(loaded);
    primary.history.push_back("astroclear config: " + config.to_text());
    hdus.push_back(std::move(primary));
    if (options.with_coadd) {
      hdus.push_back({"COADD", to_image(coadd), provenance_cards(loaded, "inverse-variance weighted coadd"), {}});
    }
    for (std::size_t t = 0; t < residuals.size(); ++t) {
      char name[16];
      std::snprintf(name, sizeof(name), "CHI_%03zu", t);
      io::OutputHdu chi{name, to_image(residuals[t]), io::wcs_cards(loaded.first_header), {}};
      chi.cards.push_back({"EXPOSURE", quoted(loaded.plan.spec.exposures[t].label()), "input exposure"});
      chi.cards.push_back({"ACPROD", quoted("chi residual good*(y - psf*x)/sigma"), "what this image is"});
      hdus.push_back(std::move(chi));
    }
    io::write_fits_atomically(options.output, hdus, options.overwrite);
    spdlog::info("wrote {} ({} iterations in {}, final loss {:.6f})", options.output, trainer.iteration(),
                 format_duration(seconds), final_loss);
    if (!options.preview.empty()) {
      io::write_preview_png(options.preview, {to_image(coadd), to_image(latent)}, options.overwrite);
      spdlog::info("wrote {} (left: inverse-variance coadd, right: astroclear)", options.preview);
    }
  }, comm.rank() == 0);
  return 0;
}

int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  comm.collectively([&] { io::check_output_path(options.output, options.overwrite); });
  LoadedStack loaded = load_stack(options.manifest, comm);
  torch::Tensor coadd = inverse_variance_coadd(loaded.stack, comm);
  comm.collectively([&] {
    io::OutputHdu primary{"", to_image(coadd), provenance_cards(loaded, "inverse-variance weighted coadd"),
                          input_history(loaded)};
    io::write_fits_atomically(options.output, {primary}, options.overwrite);
    spdlog::info("wrote {}", options.output);
  }, comm.rank() == 0);
  return 0;
}

}  // namespace astroclear::jobs
