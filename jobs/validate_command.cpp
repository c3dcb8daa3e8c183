// astroclear validate: the held-out loss and chi statistics of a latent image on named exposures.
#include "jobs/validate_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "common/error.hpp"
#include "io/fits_file.hpp"
#include "io/fits_output.hpp"
#include "io/manifest.hpp"
#include "io/json_lines.hpp"
#include "jobs/cli.hpp"
#include "jobs/provenance.hpp"
#include "jobs/runtime.hpp"
#include "jobs/stack_loader.hpp"
#include "jobs/tensor_image.hpp"
#include "src/trainer.hpp"
#include "src/validation.hpp"

namespace astroclear::jobs {
namespace {

/// One exposure's fit, on rank 0.
struct ExposureRow {
  int exposure = 0;
  HeldOutLoss::ExposureFit fit;
};

/// Collective. Every rank's per-exposure fits, on every rank, in manifest order.
std::vector<ExposureRow> gather_rows(const std::vector<int>& mine, const std::vector<HeldOutLoss::ExposureFit>& fits,
                                     mpi::Communicator& comm) {
  std::ostringstream local;
  local.precision(17);
  for (std::size_t k = 0; k < mine.size(); ++k) {
    const auto& f = fits[k];
    local << mine[k] << ' ' << f.huber_sum << ' ' << f.good_pixels << ' ' << f.chi_sum << ' ' << f.chi2_sum << ' '
          << f.outliers << ' ';
  }
  std::vector<ExposureRow> rows;
  for (int r = 0; r < comm.size(); ++r) {
    std::istringstream in(comm.broadcast_string(local.str(), r));
    ExposureRow row;
    while (in >> row.exposure >> row.fit.huber_sum >> row.fit.good_pixels >> row.fit.chi_sum >> row.fit.chi2_sum >>
           row.fit.outliers) {
      rows.push_back(row);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const ExposureRow& a, const ExposureRow& b) { return a.exposure < b.exposure; });
  return rows;
}

void print_rows(const std::vector<ExposureRow>& rows, const StackPlan& plan, double total) {
  std::printf("%-5s %-32s %12s %12s %10s %10s %10s\n", "exp", "file", "good px", "loss/px", "mean chi", "rms chi",
              "|chi|>3");
  for (const ExposureRow& row : rows) {
    const auto& f = row.fit;
    const double n = std::max(f.good_pixels, 1.0), mean = f.chi_sum / n;
    std::printf("%-5d %-32s %12.0f %12.6f %10.4f %10.4f %9.3f%%\n", row.exposure,
                plan.spec.exposures[row.exposure].label().c_str(), f.good_pixels, f.huber_sum / n, mean,
                std::sqrt(std::max(f.chi2_sum / n - mean * mean, 0.0)), 100 * f.outliers / n);
  }
  std::printf("held-out loss per good pixel over the %zu exposure(s): %.9g (unit Gaussian noise alone: 0.4247)\n",
              rows.size(), total);
}

/// One image's scores: per exposure, and over all of them.
struct Scored {
  std::string result;
  std::vector<ExposureRow> rows;
  double total = 0;
};

/// One JSON object per exposure, then one for all of them, for each image.
void write_json(const std::string& path, const ValidateOptions& options, const std::vector<Scored>& scored,
                const StackPlan& plan) {
  std::vector<io::JsonObject> lines;
  for (const Scored& one : scored) {
    for (const ExposureRow& row : one.rows) {
      const auto& f = row.fit;
      const double n = std::max(f.good_pixels, 1.0), mean = f.chi_sum / n;
      io::JsonObject j;
      j["result"] = one.result;
      j["exposure"] = row.exposure;
      j["file"] = plan.spec.exposures[row.exposure].label();
      j["good_pixels"] = f.good_pixels;
      j["loss_per_pixel"] = f.huber_sum / n;
      j["mean_chi"] = mean;
      j["rms_chi"] = std::sqrt(std::max(f.chi2_sum / n - mean * mean, 0.0));
      j["outlier_fraction"] = f.outliers / n;
      lines.push_back(std::move(j));
    }
    io::JsonObject all;
    all["result"] = one.result;
    all["exposures"] = options.exposures;
    all["huber_delta"] = options.huber_delta;
    all["loss_per_pixel"] = one.total;
    lines.push_back(std::move(all));
  }
  io::write_json_lines(path, lines);
}

/// With several images: the one with the lowest held-out loss, and how far each other is above it.
void print_ranking(const std::vector<Scored>& scored) {
  if (scored.size() < 2) return;
  const auto best = std::min_element(scored.begin(), scored.end(),
                                     [](const Scored& a, const Scored& b) { return a.total < b.total; });
  std::printf("lowest held-out loss: %s (%.9g)", best->result.c_str(), best->total);
  for (const Scored& one : scored) {
    if (&one != &*best) std::printf("; %s %+.3g", one.result.c_str(), one.total - best->total);
  }
  std::printf("\n");
}

/// Collective. The latent image of `path`, checked against the stack's shape, NaN (no data) as 0.
torch::Tensor read_latent(const std::string& path, const ValidateOptions& options, const StackPlan& plan,
                          mpi::Communicator& comm) {
  torch::Tensor latent;
  comm.collectively([&] {
    io::FitsFile f = io::FitsFile::open_image(path, options.hdu);
    const std::string product = f.read_string("ACPROD").value_or("");
    if (!product.empty() && !is_latent_product(product) && comm.rank() == 0) {
      spdlog::warn("{}: ACPROD = '{}' is not a latent image: its prediction f * x is blurred twice", f.where(), product);
    }
    latent = to_tensor(f.read_image());
    if (latent.size(0) != plan.height || latent.size(1) != plan.width) {
      throw Error(path + ": " + io::shape_text(latent.size(0), latent.size(1)) + " pixels, but the stack " +
                  options.manifest + " is " + io::shape_text(plan.height, plan.width));
    }
    if (torch::isinf(latent).any().item<bool>()) {
      throw Error(path + ": " + std::to_string(torch::isinf(latent).sum().item<std::int64_t>()) +
                  " Inf pixels; a latent image to validate must be finite (NaN marks pixels with no data)");
    }
    const std::int64_t no_data = torch::isnan(latent).sum().item<std::int64_t>();
    if (no_data > 0) {  // Note [coverage]: pixels no exposure measured; their prediction is 0
      if (comm.rank() == 0) spdlog::info("{}: {} NaN pixels (no data) taken as 0", path, no_data);
      latent = torch::nan_to_num(latent, 0.0, 0.0, 0.0);
    }
  });
  return latent;
}

}  // namespace

Command add_validate_command(CLI::App& app) {
  auto options = std::make_shared<ValidateOptions>();
  ValidateOptions& o = *options;
  CLI::App* command = app.add_subcommand(
      "validate", "how well a latent image predicts exposures the user names: held-out loss and chi statistics");
  command->add_option("results", o.results,
                      "latent images (FITS): astroclear's, rl's, mm's or another tool's; several are ranked")
      ->required();
  command->add_option("--manifest,-m", o.manifest, "stack manifest (TOML)")->required();
  add_number(command, "--exposures", o.exposures, "manifest indices of the exposures to predict (e.g. 3,17,29)",
             Range{0, 1e6})
      ->delimiter(',')
      ->required();
  command->add_option("--hdu", o.hdu, "EXTNAME of the HDU holding the image (default: first image)");
  add_number(command, "--huber-delta", o.huber_delta, "Huber delta of the loss, in sigmas", Range{0, 1000, true});
  command->add_option("--json", o.json, "also write one JSON object per exposure and one for all of them");
  command->add_flag("--overwrite", o.overwrite, "replace an existing --json file");
  add_runtime_options(command, o.runtime);
  return {command, [options](const mpi::MpiEnvironment& env) { return run_validate(*options, env); }};
}

int run_validate(const ValidateOptions& options, const mpi::MpiEnvironment& env) {
  Runtime runtime = make_runtime(options.runtime, env);
  mpi::Communicator& comm = *runtime.comm;
  comm.collectively([&] {
    for (const std::string& path : options.results) {
      if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
    }
    if (!options.json.empty()) {
      std::vector<std::string> inputs = io::input_files(io::load_manifest(options.manifest));
      inputs.insert(inputs.end(), options.results.begin(), options.results.end());
      io::check_output_path(options.json, options.overwrite, inputs);
    }
  });
  StackPlan plan = plan_stack(options.manifest, comm);
  std::vector<torch::Tensor> latents;
  for (const std::string& path : options.results) latents.push_back(read_latent(path, options, plan, comm));
  LoadedStack loaded = load_stack(std::move(plan), Selection{options.exposures, /*fit=*/false}, comm);
  LocalStack& stack = loaded.held_out;
  stack.normalise(comm);
  stack.to_for_training(runtime.device);
  const PsfDecoder::Mode mode = choose_decoder(DecoderChoice::kAuto, TrainConfig{}.fft_min_psf_size,
                                               stack.psfs.empty() ? 1 : largest_psf_side(stack.psfs));
  const HeldOutLoss loss(stack, options.huber_delta, mode, runtime.device);
  std::vector<Scored> scored;
  for (std::size_t k = 0; k < latents.size(); ++k) {
    const torch::Tensor x = (latents[k] / stack.flux_unit).to(runtime.device);
    Scored one{options.results[k], {}, loss(x, comm)};
    one.rows = gather_rows(stack.exposure_ids, loss.per_exposure(x), comm);
    scored.push_back(std::move(one));
  }
  comm.collectively([&] {
    for (const Scored& one : scored) {
      if (scored.size() > 1) std::printf("%s\n", one.result.c_str());
      print_rows(one.rows, loaded.plan, one.total);
    }
    print_ranking(scored);
    if (!options.json.empty()) write_json(options.json, options, scored, loaded.plan);
  }, comm.rank() == 0);
  return kExitDone;
}

}  // namespace astroclear::jobs
