// astroclear train: load this rank's exposures, train (resuming and checkpointing), write on rank 0.
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>

#include "io/checkpoint_store.hpp"
#include "io/fits_output.hpp"
#include "io/png_preview.hpp"
#include "jobs/checkpointing.hpp"
#include "jobs/clock_text.hpp"
#include "jobs/commands.hpp"
#include "jobs/provenance.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/stop_signal.hpp"
#include "jobs/tensor_image.hpp"
#include "mpi/error.hpp"
#include "src/coadd.hpp"
#include "src/trainer.hpp"

#ifndef ASTROCLEAR_VERSION
#define ASTROCLEAR_VERSION "unknown"
#endif

namespace astroclear::jobs {
namespace {

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

std::string default_checkpoint_directory(const std::string& output) {
  const std::string suffix = ".fits";
  const bool fits = output.size() > suffix.size() && output.compare(output.size() - suffix.size(), suffix.size(), suffix) == 0;
  return (fits ? output.substr(0, output.size() - suffix.size()) : output) + ".checkpoints";
}

/// Picks and reads the checkpoint to resume from (rank 0); nullopt to start fresh. Refuses an
/// explicit file that does not read back whole.
std::optional<io::CheckpointStore::Loaded> choose_checkpoint(const CheckpointOptions& options,
                                                             const io::CheckpointStore& store) {
  if (options.resume == "none") return std::nullopt;
  if (options.resume != "auto") {
    return io::CheckpointStore::Loaded{options.resume, io::read_checkpoint_file(options.resume)};  // throws naming the file
  }
  std::vector<std::string> skipped;
  auto found = store.load_latest(skipped);
  for (const auto& why : skipped) spdlog::warn("skipping checkpoint {}", why);
  if (!found) spdlog::info("resume auto: no usable checkpoint in {}, starting fresh", store.directory());
  return found;
}

}  // namespace

int run_train(const TrainOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  const TrainConfig& config = options.config;
  const CheckpointOptions& checkpointing = options.checkpoint;
  const std::string checkpoint_dir =
      checkpointing.directory.empty() ? default_checkpoint_directory(options.output) : checkpointing.directory;
  // The clamp only keeps the constructor from throwing outside the collective check below.
  const io::CheckpointStore store(checkpoint_dir, std::max(checkpointing.keep, 1));
  // Everything that can be refused is refused before any work.
  comm.collectively([&] {
    config.validate();
    if (checkpointing.keep < 1) throw Error("--keep-checkpoints: must be >= 1, got " + std::to_string(checkpointing.keep));
    if (checkpointing.every < 0) throw Error("--checkpoint-every: must be >= 0, got " + std::to_string(checkpointing.every));
    if (checkpointing.minutes < 0) throw Error("--checkpoint-minutes: must be >= 0, got " + std::to_string(checkpointing.minutes));
    io::check_output_path(options.output, options.overwrite);
    if (!options.preview.empty()) io::check_output_path(options.preview, options.overwrite);
    if (checkpointing.resume != "none" && checkpointing.resume != "auto" && !std::filesystem::exists(checkpointing.resume)) {
      throw Error("--resume: " + checkpointing.resume + " does not exist (use auto, none or a checkpoint file)");
    }
    const auto earlier = store.candidates();
    if (checkpointing.resume == "none" && !earlier.empty() && !options.overwrite) {
      throw Error(checkpoint_dir + " holds checkpoints of an earlier run (" + earlier.front() +
                  "); pass --resume auto to continue it, or --overwrite to start over (nothing was changed)");
    }
  }, comm.rank() == 0);
  if (comm.rank() == 0) spdlog::info("config: {}", config.to_text());

  LoadedStack loaded = load_stack(options.manifest, comm);
  LocalStack& stack = loaded.stack;
  stack.normalise(comm);
  stack.to_for_training(runtime.device);
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

  // Resume: rank 0 picks, reads and checks the checkpoint; the other ranks then read the same
  // file, and every rank takes its own exposures' rows of it.
  std::string resume_from;
  io::Checkpoint checkpoint;
  comm.collectively([&] {
    for (const auto& path : store.remove_stale_temporaries()) spdlog::warn("removed {}, left by an interrupted write", path);
    if (checkpointing.resume == "none" && options.overwrite) {
      const int removed = store.clear();
      if (removed > 0) spdlog::info("--overwrite: removed {} earlier checkpoint file(s) from {}", removed, checkpoint_dir);
    }
    if (auto chosen = choose_checkpoint(checkpointing, store)) {
      for (const auto& note : check_compatible(chosen->checkpoint, chosen->path, loaded, config)) {
        spdlog::info("resume: {}", note);
      }
      resume_from = chosen->path;
      checkpoint = std::move(chosen->checkpoint);
    }
  }, comm.rank() == 0);
  resume_from = comm.broadcast_string(resume_from, 0);
  if (!resume_from.empty()) {
    comm.collectively([&] { checkpoint = io::read_checkpoint_file(resume_from); }, comm.rank() != 0);
    restore_checkpoint(checkpoint, trainer, loaded);
    if (comm.rank() == 0) {
      spdlog::info("resumed from {} at iteration {} (loss {:.6f}, written by {} rank(s))", resume_from,
                   checkpoint.iteration, checkpoint.loss_history.empty() ? 0.0 : checkpoint.loss_history.back(),
                   checkpoint.ranks);
    }
  }

  using Clock = std::chrono::steady_clock;
  auto last_checkpoint = Clock::now();
  int saved_iteration = resume_from.empty() ? -1 : trainer.iteration();
  const auto save_checkpoint = [&](const torch::Tensor& latent) {
    const auto start = Clock::now();
    io::Checkpoint checkpoint = gather_checkpoint(trainer, latent, loaded, config, ASTROCLEAR_VERSION, comm);
    const auto gathered = Clock::now();
    comm.collectively([&] {
      const auto midway = [&] {
        if (checkpoint.iteration == checkpointing.kill_midway_at) std::raise(SIGKILL);
      };
      const std::string path = store.save(checkpoint, midway);
      spdlog::info("checkpoint {} (iteration {}, {:.1f} MB; gathered in {:.2f} s, written and verified in {:.2f} s)", path,
                   checkpoint.iteration, static_cast<double>(std::filesystem::file_size(path)) / 1e6,
                   std::chrono::duration<double>(gathered - start).count(),
                   std::chrono::duration<double>(Clock::now() - gathered).count());
    }, comm.rank() == 0);
    last_checkpoint = Clock::now();
    saved_iteration = trainer.iteration();
  };

  install_stop_handlers();
  int stopped_by = 0;
  const auto keep_going = [&](int iteration) {
    // Note [stop signal]: the flags are agreed at the iteration boundary.
    int flags[2] = {0, stop_signal()};
    if (comm.rank() == 0 && iteration < config.iterations) {
      const double minutes = std::chrono::duration<double>(Clock::now() - last_checkpoint).count() / 60;
      flags[0] = (checkpointing.every > 0 && iteration % checkpointing.every == 0) ||
                 (checkpointing.minutes > 0 && minutes >= checkpointing.minutes);
    }
    comm.all_reduce_max(flags, 2);
    if (flags[1] != 0) {
      stopped_by = flags[1];
      if (comm.rank() == 0) spdlog::warn("{} received: checkpointing at iteration {} and stopping", signal_name(stopped_by), iteration);
      return false;
    }
    if (flags[0] != 0) save_checkpoint(trainer.latent());
    return true;
  };

  const auto start = Clock::now();
  const int first_iteration = trainer.iteration();
  trainer.train([&](const TrainProgress& p) {
    if (comm.rank() == 0) {
      spdlog::info("iter {:>6}/{} loss {:.6f} {:8.1f} ms/it ETA {}", p.iteration, p.iterations, p.loss,
                   p.ms_per_iteration, format_duration(p.eta_seconds));
    }
  }, keep_going);
  torch::Tensor latent = trainer.latent();  // the final checkpoint's and the output's
  if (trainer.iteration() != saved_iteration) save_checkpoint(latent);
  if (stopped_by != 0) {
    if (comm.rank() == 0) {
      spdlog::warn("stopped at iteration {}/{}: not finished; run again with --resume auto to continue (exit {})",
                   trainer.iteration(), config.iterations, kExitCheckpointed);
    }
    return kExitCheckpointed;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double final_loss = trainer.loss_history().empty() ? 0.0 : trainer.loss_history().back();
  if (comm.rank() == 0 && first_iteration > 0) {
    spdlog::info("iterations {}-{} run in this process, 1-{} restored from the checkpoint", first_iteration + 1,
                 trainer.iteration(), first_iteration);
  }

  torch::Tensor coadd;
  if (options.with_coadd || !options.preview.empty()) coadd = inverse_variance_coadd(stack, comm);
  std::vector<torch::Tensor> residuals;
  if (options.with_residuals) residuals = gather_residuals(trainer, loaded, comm);

  comm.collectively([&] {
    std::vector<io::OutputHdu> hdus;
    io::OutputHdu primary;
    primary.image = to_image(latent);
    primary.cards = provenance_cards(loaded, kProductLatent);
    primary.cards.push_back({"ACITER", std::to_string(trainer.iteration()), "training iterations"});
    primary.cards.push_back({"ACLOSS", std::to_string(final_loss), "final masked Huber loss per good pixel"});
    primary.cards.push_back({"ACRANKS", std::to_string(comm.size()), "MPI ranks used"});
    primary.cards.push_back({"ACDECOD", quoted(trainer.decoder().mode_name()),
                             "PSF decoder"});
    primary.cards.push_back({"ACFUNIT", std::to_string(stack.flux_unit), "flux unit of the normalised inputs"});
    primary.cards.push_back({"ACTIME", std::to_string(seconds), "training wall time of the last run (s)"});
    primary.cards.push_back({"ACSTART", std::to_string(first_iteration), "iterations restored from a checkpoint"});
    primary.history = input_history(loaded);
    primary.history.push_back("astroclear config: " + config.to_text());
    if (!resume_from.empty()) primary.history.push_back("astroclear resumed from " + resume_from);
    hdus.push_back(std::move(primary));
    if (options.with_coadd) {
      hdus.push_back({"COADD", to_image(coadd), provenance_cards(loaded, kProductCoadd), {}});
    }
    for (std::size_t t = 0; t < residuals.size(); ++t) {
      char name[32];
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
  return kExitDone;
}

}  // namespace astroclear::jobs
