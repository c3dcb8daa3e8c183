// astroclear train: load this rank's exposures, train (resuming and checkpointing), write on rank 0.
#include "jobs/train_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>

#include "common/error.hpp"
#include "eval/coadd.hpp"
#include "io/checkpoint_store.hpp"
#include "io/checksum.hpp"
#include "io/fits_file.hpp"
#include "io/fits_output.hpp"
#include "io/manifest.hpp"
#include "io/png_preview.hpp"
#include "io/run_lock.hpp"
#include "jobs/checkpointing.hpp"
#include "jobs/coverage.hpp"
#include "jobs/cli.hpp"
#include "jobs/clock_text.hpp"
#include "jobs/provenance.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/stop_signal.hpp"
#include "jobs/tensor_image.hpp"
#include "src/trainer.hpp"

#ifndef ASTROCLEAR_VERSION
#define ASTROCLEAR_VERSION "unknown"
#endif

namespace astroclear::jobs {
namespace {

using Clock = std::chrono::steady_clock;

std::string default_checkpoint_directory(const std::string& output) {
  const std::string suffix = ".fits";
  const bool fits = output.size() > suffix.size() && output.compare(output.size() - suffix.size(), suffix.size(), suffix) == 0;
  return (fits ? output.substr(0, output.size() - suffix.size()) : output) + ".checkpoints";
}

/// Collective. Everything about the options that can be refused is refused here, before any work.
void check_train_options(const TrainOptions& options, const io::CheckpointStore& store, mpi::Communicator& comm) {
  const CheckpointOptions& checkpointing = options.checkpoint;
  comm.collectively([&] {
    options.config.validate();
    const mpi::TileGrid grid = mpi::TileGrid::parse(options.tiles);
    if (grid.whole_field() && options.psf_per_tile) {
      throw Error("--psf-per-tile: needs --tiles with more than one tile");
    }
    if (!grid.whole_field() && options.with_residuals) {
      throw Error("--with-residuals: chi residual maps are not made on tiles (--tiles " + grid.text() +
                  "); run them without --tiles");
    }
    if (checkpointing.resume != "none" && checkpointing.resume != "auto" && !std::filesystem::exists(checkpointing.resume)) {
      throw Error("--resume: " + checkpointing.resume + " does not exist (use auto, none or a checkpoint file)");
    }
    // Note [output safety]: no output may be a file the run reads.
    std::vector<std::string> inputs = io::input_files(io::load_manifest(options.manifest));
    inputs.push_back(options.config.warm_start);
    inputs.push_back(checkpointing.resume);
    io::check_output_path(options.output, options.overwrite, inputs);
    if (!options.preview.empty()) io::check_output_path(options.preview, options.overwrite, inputs);
    if (checkpointing.resume != "none" && checkpointing.resume != "auto" &&
        std::filesystem::is_directory(checkpointing.resume)) {
      throw Error("--resume: " + checkpointing.resume + " is a folder; give a checkpoint file in it, or auto");
    }
    if (std::filesystem::exists(store.directory()) && !std::filesystem::is_directory(store.directory())) {
      throw Error("--checkpoint-dir: " + store.directory() + " is a file, not a folder (nothing was changed)");
    }
    const auto earlier = store.candidates();
    if (checkpointing.resume == "none" && !earlier.empty() && !options.overwrite) {
      throw Error(store.directory() + " holds checkpoints of an earlier run (" + earlier.front() +
                  "); pass --resume auto to continue it, or --overwrite to start over (nothing was changed)");
    }
  }, comm.rank() == 0);
}

/// Collective. The image of --warm-start (Note [warm start]) as every rank reads it, checked against
/// the stack's shape, negative values set to 0; its checksum goes into `config` (a resumed run
/// must start from the same image). Undefined without --warm-start.
torch::Tensor read_warm_start(const LoadedStack& loaded, TrainConfig& config, mpi::Communicator& comm) {
  torch::Tensor image;
  if (!config.warm_start.empty()) {
    comm.collectively([&] {
      io::FitsFile f = io::FitsFile::open_image(config.warm_start, "");
      const io::Image pixels = f.read_image();
      if (pixels.height != loaded.plan.height || pixels.width != loaded.plan.width) {
        throw Error("--warm-start: " + f.where() + " is " + io::shape_text(pixels.height, pixels.width) +
                    " pixels, but the stack is " + io::shape_text(loaded.plan.height, loaded.plan.width));
      }
      io::Checksum sum;
      sum.add(pixels.pixels);
      config.warm_start_checksum = sum.value();
      image = torch::nan_to_num(to_tensor(pixels), 0.0, 0.0, 0.0).clamp_min(0);
    });
  }
  return image;
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

/// Collective. Clears or tidies the checkpoint folder as the options say, then, when there is a
/// checkpoint to resume from, gives every rank its exposures' part of it: rank 0 picks, reads and
/// checks it against the stack and configuration; the others then read the same file. Returns its
/// path, or "" for a fresh start.
std::string resume_from_checkpoint(const TrainOptions& options, const io::CheckpointStore& store,
                                   const LoadedStack& loaded, Trainer& trainer, mpi::Communicator& comm) {
  std::string path;
  io::Checkpoint checkpoint;
  comm.collectively([&] {
    for (const auto& stale : store.remove_stale_temporaries()) spdlog::warn("removed {}, left by an interrupted write", stale);
    if (options.checkpoint.resume == "none" && options.overwrite) {
      const int removed = store.clear();
      if (removed > 0) spdlog::info("--overwrite: removed {} earlier checkpoint file(s) from {}", removed, store.directory());
    }
    if (auto chosen = choose_checkpoint(options.checkpoint, store)) {
      for (const auto& note : check_compatible(chosen->checkpoint, chosen->path, loaded, options.config)) {
        spdlog::info("resume: {}", note);
      }
      path = chosen->path;
      checkpoint = std::move(chosen->checkpoint);
    }
  }, comm.rank() == 0);
  path = comm.broadcast_string(path, 0);
  if (path.empty()) return path;
  comm.collectively([&] { checkpoint = io::read_checkpoint_file(path); }, comm.rank() != 0);
  restore_checkpoint(checkpoint, trainer, loaded);
  if (comm.rank() == 0) {
    spdlog::info("resumed from {} at iteration {} (loss {:.6f}, written by {} rank(s))", path, checkpoint.iteration,
                 checkpoint.loss_history.empty() ? 0.0 : checkpoint.loss_history.back(), checkpoint.ranks);
  }
  return path;
}

/// When a run writes checkpoints, and writing them: every --checkpoint-every iterations, every
/// --checkpoint-minutes of wall time, when a stop signal arrives (then the run stops), and at the
/// end. The decision is agreed by all ranks at iteration boundaries (Note [stop signal]).
class CheckpointPolicy {
 public:
  CheckpointPolicy(const TrainOptions& options, const io::CheckpointStore& store, const LoadedStack& loaded,
                   Trainer& trainer, mpi::Communicator& comm, bool resumed)
      : options_(options),
        store_(store),
        loaded_(loaded),
        trainer_(trainer),
        comm_(comm),
        saved_iteration_(resumed ? trainer.iteration() : -1) {}

  /// Collective; for Trainer::train. Saves when due; false when a stop signal ends the run.
  bool keep_going(int iteration) {
    const CheckpointOptions& c = options_.checkpoint;
    int flags[2] = {0, stop_signal()};  // {due, signal}
    if (comm_.rank() == 0 && iteration < options_.config.iterations) {
      const double minutes = std::chrono::duration<double>(Clock::now() - last_save_).count() / 60;
      flags[0] = (c.every > 0 && iteration % c.every == 0) || (c.minutes > 0 && minutes >= c.minutes);
    }
    comm_.all_reduce_max(flags, 2);
    if (flags[1] != 0) {
      stopped_by_ = flags[1];
      if (comm_.rank() == 0) {
        spdlog::warn("{} received: checkpointing at iteration {} and stopping", signal_name(stopped_by_), iteration);
      }
      return false;
    }
    if (flags[0] != 0) save(trainer_.latent());
    return true;
  }

  /// Collective. The checkpoint of the iteration the run ended at, unless it is written already.
  void finish(const torch::Tensor& latent) {
    if (trainer_.iteration() != saved_iteration_) save(latent);
  }

  /// The stop signal that ended the run, or 0.
  int stopped_by() const { return stopped_by_; }

 private:
  void save(const torch::Tensor& latent) {
    const auto start = Clock::now();
    io::Checkpoint checkpoint = gather_checkpoint(trainer_, latent, loaded_, options_.config, ASTROCLEAR_VERSION, comm_);
    const auto gathered = Clock::now();
    comm_.collectively([&] {
      const auto midway = [&] {
        if (checkpoint.iteration == options_.checkpoint.kill_midway_at) std::raise(SIGKILL);
      };
      const std::string path = store_.save(checkpoint, midway);
      spdlog::info("checkpoint {} (iteration {}, {:.1f} MB; gathered in {:.2f} s, written and verified in {:.2f} s)", path,
                   checkpoint.iteration, static_cast<double>(std::filesystem::file_size(path)) / 1e6,
                   std::chrono::duration<double>(gathered - start).count(),
                   std::chrono::duration<double>(Clock::now() - gathered).count());
    }, comm_.rank() == 0);
    last_save_ = Clock::now();
    saved_iteration_ = trainer_.iteration();
  }

  const TrainOptions& options_;
  const io::CheckpointStore& store_;
  const LoadedStack& loaded_;
  Trainer& trainer_;
  mpi::Communicator& comm_;
  Clock::time_point last_save_ = Clock::now();
  int saved_iteration_;
  int stopped_by_ = 0;
};

/// Chi maps of every exposure, fitted and held out, for the latent image `latent`, gathered on
/// rank 0 (empty elsewhere) with their manifest indices, in manifest order.
/// Appends `local` (this rank's planes of the exposures `owners[rank]`) to `all` on rank 0, with
/// the planes every other rank sends; collective.
void gather_planes(const torch::Tensor& local, const std::vector<std::vector<int>>& owners, const LoadedStack& loaded,
                   mpi::Communicator& comm, std::vector<std::pair<int, torch::Tensor>>& all) {
  for (int r = 0; r < comm.size(); ++r) {
    for (std::size_t k = 0; k < owners[r].size(); ++k) {
      const int t = owners[r][k];
      if (r == comm.rank() && r == 0) {
        all.emplace_back(t, local[static_cast<std::int64_t>(k)]);
      } else if (r == comm.rank()) {
        torch::Tensor plane = local[static_cast<std::int64_t>(k)].contiguous();
        comm.send(plane.data_ptr<float>(), plane.numel(), 0, t);
      } else if (comm.rank() == 0) {
        torch::Tensor plane = torch::empty({loaded.plan.height, loaded.plan.width});
        comm.receive(plane.data_ptr<float>(), plane.numel(), r, t);
        all.emplace_back(t, plane);
      }
    }
  }
}

std::vector<std::pair<int, torch::Tensor>> gather_residuals(Trainer& trainer, const torch::Tensor& latent,
                                                            const LoadedStack& loaded, mpi::Communicator& comm) {
  std::vector<std::pair<int, torch::Tensor>> all;
  gather_planes(trainer.chi_residuals(latent).contiguous(), loaded.plan.owners, loaded, comm, all);
  gather_planes(trainer.held_out_chi_residuals(latent).contiguous(), loaded.plan.held_out_owners, loaded, comm, all);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return all;
}

/// What the run did, for the output header and the log.
struct RunSummary {
  int iterations = 0;       ///< iterations done in all
  int first_iteration = 0;  ///< iterations restored from a checkpoint
  double loss = 0;          ///< the last iteration's loss per good pixel
  double seconds = 0;       ///< wall time of this process's training
  std::string resumed_from;
};

/// The primary HDU: the latent image with the run's provenance.
io::OutputHdu latent_hdu(const torch::Tensor& latent, const LoadedStack& loaded, const Trainer& trainer,
                         const TrainConfig& config, const RunSummary& run, int ranks) {
  io::OutputHdu primary;
  primary.image = to_image(latent);
  primary.cards = provenance_cards(loaded, kProductLatent);
  primary.cards.push_back({"ACITER", std::to_string(run.iterations), "training iterations"});
  primary.cards.push_back({"ACLOSS", std::to_string(run.loss), "final masked Huber loss per good pixel"});
  primary.cards.push_back({"ACRANKS", std::to_string(ranks), "MPI ranks used"});
  primary.cards.push_back({"ACDECOD", quoted(trainer.decoder().mode_name()), "PSF decoder"});
  primary.cards.push_back({"ACTFWHM", std::to_string(config.target_fwhm), "resolution, Gaussian FWHM px (0: none)"});
  primary.cards.push_back({"ACFUNIT", std::to_string(loaded.stack.flux_unit), "flux unit of the normalised inputs"});
  primary.cards.push_back({"ACTIME", std::to_string(run.seconds), "training wall time of the last run (s)"});
  primary.cards.push_back({"ACSTART", std::to_string(run.first_iteration), "iterations restored from a checkpoint"});
  primary.history = input_history(loaded);
  primary.history.push_back("astroclear config: " + config.to_text());
  if (!run.resumed_from.empty()) primary.history.push_back("astroclear resumed from " + run.resumed_from);
  if (const ValidationTrack* track = trainer.validation()) {
    add_validation_provenance(primary, loaded, *track, config.validation.stop, run.iterations, config.iterations);
  }
  return primary;
}

/// Collective. The coadd and residual maps the options ask for, then the FITS output and the
/// preview, written on rank 0 (Communicator::collectively: every rank learns whether it worked).
void write_train_outputs(const TrainOptions& options, const LoadedStack& loaded, Trainer& trainer,
                         const torch::Tensor& latent, const RunSummary& run, mpi::Communicator& comm) {
  torch::Tensor coadd;
  if (options.with_coadd || !options.preview.empty()) {
    const FieldView field(comm, loaded.tiles.get());
    coadd = field.whole(inverse_variance_coadd(loaded.stack, field));  // with tiles on rank 0 only
  }
  std::vector<std::pair<int, torch::Tensor>> residuals;
  if (options.with_residuals) residuals = gather_residuals(trainer, latent, loaded, comm);
  const Coverage coverage = stack_coverage(loaded, comm);

  comm.collectively([&] {
    std::vector<io::OutputHdu> hdus;
    hdus.push_back(latent_hdu(latent, loaded, trainer, options.config, run, comm.size()));
    add_coverage(hdus, coverage);
    if (options.with_coadd) hdus.push_back({"COADD", to_image(coadd), provenance_cards(loaded, kProductCoadd), {}});
    for (const auto& [t, plane] : residuals) {
      char name[32];
      std::snprintf(name, sizeof(name), "CHI_%03d", t);
      io::OutputHdu chi{name, to_image(plane), io::wcs_cards(loaded.first_header), {}};
      chi.cards.push_back({"EXPOSURE", quoted(loaded.plan.spec.exposures[t].label()), "input exposure"});
      chi.cards.push_back({"ACPROD", quoted("chi residual good*(y - psf*x)/sigma"), "what this image is"});
      const bool held_out = std::binary_search(loaded.plan.held_out.begin(), loaded.plan.held_out.end(), t);
      chi.cards.push_back({"HELDOUT", held_out ? "T" : "F", "exposure held out of the fit: a prediction"});
      hdus.push_back(std::move(chi));
    }
    io::write_fits_atomically(options.output, hdus, options.overwrite);
    spdlog::info("wrote {} ({} iterations in {}, final loss {:.6f})", options.output, run.iterations,
                 format_duration(run.seconds), run.loss);
    if (!options.preview.empty()) {
      io::write_preview_png(options.preview, {to_image(coadd), hdus.front().image}, options.overwrite);
      spdlog::info("wrote {} (left: inverse-variance coadd, right: astroclear)", options.preview);
    }
  }, comm.rank() == 0);
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainOptions>();
  CLI::App* command = app.add_subcommand("train", "train AstroClearNet on a stack and write the latent image");
  command->add_option("--manifest,-m", options->manifest, "stack manifest (TOML)")->required();
  command->add_option("--output,-o", options->output, "latent image (FITS)")->required();
  command->add_option("--preview", options->preview, "also write a PNG: coadd | restored");
  command->add_flag("--overwrite", options->overwrite, "replace existing outputs");
  command->add_flag("--with-coadd", options->with_coadd, "add the inverse-variance coadd as HDU COADD");
  command->add_flag("--with-residuals", options->with_residuals, "add per-exposure chi residual maps CHI_nnn");
  command->add_option("--tiles", options->tiles,
                      "cut the field into RxC tiles; ranks = tiles x exposure shards (default 1x1: the whole field)");
  command->add_flag("--psf-per-tile", options->psf_per_tile,
                    "with --tiles: each tile takes its exposures' PSFEx models at its own centre");

  TrainConfig& c = options->config;
  add_number(command, "--iterations,-n", c.iterations, "training iterations", Range{1, 1e9});
  add_number(command, "--learning-rate", c.learning_rate, "Adam learning rate", Range{0, 1, true});
  add_number(command, "--huber-delta", c.huber_delta, "Huber delta, in units of sigma", Range{0, 1000, true});
  add_number(command, "--kernel-sizes", c.kernel_sizes, "odd kernel size of each depthwise branch", Range{1, 4095})
      ->delimiter(',');
  add_number(command, "--seed", c.seed, "initialisation seed", Range{0, 18446744073709551615.0});
  add_choice(command, "--init", c.init, "identity (start at the weighted mean) or random");
  add_choice(command, "--decoder", c.decoder, "PSF convolution: auto, fft or direct");
  add_choice(command, "--precision", c.precision, "float32, or bf16 for the encoder's convolutions and activations");
  command->add_option("--warm-start", c.warm_start,
                      "start from this latent image (FITS, e.g. from astroclear mm or rl) and refine it");
  add_validation_options(command, c.validation);
  add_number(command, "--fft-min-psf-size", c.fft_min_psf_size, "auto uses the FFT for PSFs this size or larger",
             Range{1, 1e5});
  add_number(command, "--target-fwhm", c.target_fwhm,
             "restore to a Gaussian resolution of this FWHM (pixels) instead of deconvolving fully", Range{0, 50});
  add_number(command, "--log-every", c.log_every, "progress line every N iterations", Range{1, 1e9});

  CheckpointOptions& k = options->checkpoint;
  command->add_option("--resume", k.resume, "none, auto (latest valid checkpoint, else start fresh) or a checkpoint file");
  command->add_option("--checkpoint-dir", k.directory, "checkpoint folder (default: OUTPUT without .fits, plus .checkpoints)");
  add_number(command, "--checkpoint-every", k.every, "checkpoint every N iterations (0: by time and at the end only)",
             Range{0, 1e9});
  add_number(command, "--checkpoint-minutes", k.minutes, "checkpoint every M minutes of wall time (0: not by time)",
             Range{0, 1e6});
  add_number(command, "--keep-checkpoints", k.keep, "checkpoints kept in the folder", Range{1, 1e6});
  command->add_option("--test-kill-midway-at", k.kill_midway_at, "tests: die halfway through this iteration's checkpoint")
      ->group("");
  add_runtime_options(command, options->runtime);
  return {command, [options](const mpi::MpiEnvironment& env) { return run_train(*options, env); }};
}

int run_train(const TrainOptions& requested, const mpi::MpiEnvironment& env) {
  TrainOptions options = requested;  // its config gets the warm start's checksum once it is read
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  const TrainConfig& config = options.config;
  const std::string checkpoint_dir =
      options.checkpoint.directory.empty() ? default_checkpoint_directory(options.output) : options.checkpoint.directory;
  const io::CheckpointStore store(checkpoint_dir, options.checkpoint.keep);
  check_train_options(options, store, comm);
  const mpi::TileGrid grid = mpi::TileGrid::parse(options.tiles);  // checked on rank 0 above; parsed here on every rank
  if (options.psf_per_tile) options.config.psf_tiles = grid.text();
  // Note [run lock]: held by rank 0 until the run ends, however it ends.
  std::optional<io::RunLock> output_lock, checkpoint_lock;
  comm.collectively([&] {
    std::string warning;
    output_lock.emplace(options.output + ".lock", options.output, warning);
    if (!warning.empty()) spdlog::warn("{}", warning);
    std::string folder = store.directory();
    while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
    checkpoint_lock.emplace(folder + ".lock", "checkpoint folder " + folder, warning);
    if (!warning.empty()) spdlog::warn("{}", warning);
  }, comm.rank() == 0);

  const TileRequest tiles{grid, kernel_halo(config.kernel_sizes), options.psf_per_tile};
  LoadedStack loaded = load_for_fit(options.manifest, config.validation, comm, config.target_fwhm, tiles);
  comm.collectively([&] { config.check_fits(loaded.plan.height, loaded.plan.width); }, comm.rank() == 0);
  const torch::Tensor warm_start = read_warm_start(loaded, options.config, comm);
  if (comm.rank() == 0) spdlog::info("config: {}", config.to_text());  // the warm start's checksum resolved
  LocalStack& stack = loaded.stack;
  stack.to_for_training(runtime.device);
  loaded.held_out.to_for_training(runtime.device);
  if (comm.rank() == 0) {
    spdlog::info("stack: {} exposures of {} px fitted, {:.0f} good pixels, flux unit {:.4g}; {} held out", stack.total_exposures,
                 io::shape_text(loaded.plan.height, loaded.plan.width), stack.good_pixels, stack.flux_unit,
                 loaded.held_out.total_exposures);
  }
  Trainer trainer(config, stack, comm, runtime.device, loaded.tiles.get());
  if (loaded.held_out.total_exposures > 0) trainer.validate_on(loaded.held_out);
  if (warm_start.defined()) trainer.warm_start(warm_start);
  if (comm.rank() == 0) {
    spdlog::info("decoder: {} (PSFs up to {} px)", trainer.decoder().mode_name(),
                 std::max(trainer.decoder().kernel_height(), trainer.decoder().kernel_width()));
  }

  RunSummary run;
  run.resumed_from = resume_from_checkpoint(options, store, loaded, trainer, comm);
  run.first_iteration = trainer.iteration();
  CheckpointPolicy checkpoints(options, store, loaded, trainer, comm, !run.resumed_from.empty());
  const auto start = Clock::now();
  trainer.train([&](const TrainProgress& p) {
    if (comm.rank() == 0 && p.validating) {
      spdlog::info("iter {:>6}/{} loss {:.6f} held-out {:.6f} (lowest at {}) {:8.1f} ms/it ETA {}", p.iteration,
                   p.iterations, p.loss, p.held_out_loss, p.best_iteration, p.ms_per_iteration,
                   format_duration(p.eta_seconds));
    } else if (comm.rank() == 0) {
      spdlog::info("iter {:>6}/{} loss {:.6f} {:8.1f} ms/it ETA {}", p.iteration, p.iterations, p.loss,
                   p.ms_per_iteration, format_duration(p.eta_seconds));
    }
  }, [&](int iteration) { return checkpoints.keep_going(iteration); });
  const torch::Tensor latent = trainer.latent();  // the final checkpoint's
  checkpoints.finish(latent);
  if (checkpoints.stopped_by() != 0) {
    if (comm.rank() == 0) {
      spdlog::warn("stopped at iteration {}/{}: not finished; run again with --resume auto to continue (exit {})",
                   trainer.iteration(), config.iterations, kExitCheckpointed);
    }
    return kExitCheckpointed;
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  run.iterations = trainer.iteration();
  run.loss = trainer.loss_history().empty() ? 0.0 : trainer.loss_history().back();
  if (comm.rank() == 0 && run.first_iteration > 0) {
    spdlog::info("iterations {}-{} run in this process, 1-{} restored from the checkpoint", run.first_iteration + 1,
                 run.iterations, run.first_iteration);
  }
  if (comm.rank() == 0 && trainer.validation()) {
    spdlog::info("stopped: {}", trainer.validation()->stop_reason(run.iterations, config.iterations));
  }
  write_train_outputs(options, loaded, trainer, trainer.result(), run, comm);
  return kExitDone;
}

}  // namespace astroclear::jobs
