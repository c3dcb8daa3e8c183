// astroclear simulate: write a simulated stack as HSC-like FITS files, its truth and a manifest.
#include "jobs/simulate_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>

#include "common/error.hpp"
#include "io/file_tree.hpp"
#include "io/fits_file.hpp"
#include "io/manifest.hpp"
#include "jobs/cli.hpp"
#include "jobs/tensor_image.hpp"

namespace astroclear::jobs {
namespace fs = std::filesystem;
namespace {

void write_wcs(io::FitsFile& f, const SimulateOptions& o) {
  const double scale = o.config.pixel_scale_arcsec / 3600.0;
  f.write_key("WCSAXES", 2LL, "");
  f.write_key("CTYPE1", std::string("RA---TAN"), "gnomonic projection");
  f.write_key("CTYPE2", std::string("DEC--TAN"), "gnomonic projection");
  f.write_key("CRVAL1", o.ra_deg, "RA at the reference pixel (deg)");
  f.write_key("CRVAL2", o.dec_deg, "Dec at the reference pixel (deg)");
  f.write_key("CRPIX1", (o.config.width + 1) / 2.0, "reference pixel (1-indexed)");
  f.write_key("CRPIX2", (o.config.height + 1) / 2.0, "reference pixel (1-indexed)");
  f.write_key("CD1_1", -scale, "");
  f.write_key("CD1_2", 0.0, "");
  f.write_key("CD2_1", 0.0, "");
  f.write_key("CD2_2", scale, "");
  f.write_key("CUNIT1", std::string("deg"), "");
  f.write_key("CUNIT2", std::string("deg"), "");
  f.write_key("RADESYS", std::string("ICRS"), "");
  f.write_key("EQUINOX", 2000.0, "");
}

std::string numbered(const char* stem, int t) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s_%03d.fits", stem, t);
  return name;
}

/// The files of a stack that `simulate` writes, by name.
bool is_stack_file(const std::string& name) {
  return name.rfind("exp_", 0) == 0 || name.rfind("psf_", 0) == 0 || name == "truth.fits" ||
         name == "truth_catalog.csv" || name == "stack.toml";
}

/// Writes the files of one stack into a folder, each whole or not at all (io::write_atomically).
/// Until commit(), a failure removes every file it created; commit() then removes the files of an
/// earlier stack that this one did not replace.
class StackFiles {
 public:
  explicit StackFiles(fs::path dir) : dir_(std::move(dir)) {}
  StackFiles(const StackFiles&) = delete;
  StackFiles& operator=(const StackFiles&) = delete;
  ~StackFiles() {
    if (committed_) return;
    std::error_code ignored;
    for (const auto& name : created_) fs::remove(dir_ / name, ignored);
  }

  void fits(const std::string& name, const std::function<void(io::FitsFile&)>& fill) {
    io::write_atomically(track(name), [&](const std::string& temp) {
      io::FitsFile f = io::FitsFile::create(temp);
      fill(f);
      f.close();
    });
  }
  void text(const std::string& name, const std::string& content) { io::write_text_file(track(name), content); }
  void manifest(const io::StackSpec& spec) { io::write_manifest(track("stack.toml"), spec); }

  void commit() {
    committed_ = true;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (is_stack_file(name) && std::find(written_.begin(), written_.end(), name) == written_.end()) {
        fs::remove(entry.path());
      }
    }
  }

 private:
  /// Records that `name` is written by this stack (and created, when it is new); its path.
  std::string track(const std::string& name) {
    const fs::path path = dir_ / name;
    if (!fs::exists(path)) created_.push_back(name);
    written_.push_back(name);
    return path.string();
  }

  fs::path dir_;
  std::vector<std::string> created_, written_;
  bool committed_ = false;
};

std::string truth_catalog_text(const std::vector<TruthSource>& sources) {
  std::ostringstream catalog;
  catalog << "type,x,y,flux,half_light_radius,sersic_index,axis_ratio,position_angle\n";
  for (const TruthSource& s : sources) {
    catalog << s.type << ',' << s.x << ',' << s.y << ',' << s.flux << ',' << s.half_light_radius << ','
            << s.sersic_index << ',' << s.axis_ratio << ',' << s.position_angle << '\n';
  }
  return catalog.str();
}

}  // namespace

Command add_simulate_command(CLI::App& app) {
  auto options = std::make_shared<SimulateOptions>();
  SimulationConfig& c = options->config;
  CLI::App* command = app.add_subcommand("simulate", "write a simulated HSC-like stack (FITS) with its truth");
  command->add_option("--output-dir,-o", options->output_dir, "folder for the stack (created)")->required();
  add_number(command, "--exposures", c.exposures, "number of exposures", Range{1, 1e5});
  command
      ->add_option_function<int>(
          "--size", [options](int size) { options->config.height = options->config.width = size; },
          "image side in pixels (square)")
      ->check(range_validator(Range{8, 1e5}));
  add_number(command, "--seed", c.seed, "random seed", Range{0, 18446744073709551615.0});
  add_number(command, "--seeing-min", c.seeing_min_arcsec, "smallest PSF FWHM (arcsec)", Range{0, 20, true});
  add_number(command, "--seeing-max", c.seeing_max_arcsec, "largest PSF FWHM (arcsec)", Range{0, 20, true});
  add_number(command, "--psf-error", c.psf_error,
             "errors of the written PSF models: rms fraction of FWHM and beta (also ellipticity, angle)",
             Range{0, 0.5});
  add_number(command, "--unmasked-cr", c.unmasked_cr, "fraction of cosmic-ray tracks left out of the mask",
             Range{0, 1});
  add_number(command, "--sky-residual", c.sky_residual,
             "rms of a constant left in each sky-subtracted exposure, in units of its sky noise", Range{0, 1000});
  command->add_flag("--overwrite", options->overwrite, "replace a stack already in the folder");
  return {command, [options](const mpi::MpiEnvironment& env) { return run_simulate(*options, env); }};
}

void write_simulated_stack(const SimulateOptions& o) {
  o.config.validate();  // before anything is created
  const fs::path dir(o.output_dir);
  fs::create_directories(dir);
  const fs::path manifest = dir / "stack.toml";
  if (fs::exists(manifest) && !o.overwrite) {
    throw Error(manifest.string() + ": a stack is already there; pass --overwrite to replace it");
  }
  spdlog::info("simulating {} exposures of {} x {} px (seed {})", o.config.exposures, o.config.width, o.config.height,
               o.config.seed);
  SimulatedStack sim = simulate_stack(o.config);
  StackFiles files(dir);
  io::StackSpec spec;
  spec.flux_scale_key = "FSCALE";  // image = FSCALE x calibrated flux
  spec.flux_scale_convention = "divide";
  for (int t = 0; t < static_cast<int>(sim.exposures.size()); ++t) {
    const SimulatedExposure& e = sim.exposures[t];
    files.fits(numbered("exp", t), [&](io::FitsFile& f) {
      f.write_empty_primary();
      f.write_key("FSCALE", e.flux_scale, "image = FSCALE * calibrated flux");
      f.write_key("EXPID", static_cast<long long>(t), "exposure number");
      f.write_key("SEEING", e.fwhm_arcsec, "PSF FWHM (arcsec)");
      f.write_key("SKYLEVEL", e.sky, "subtracted sky (electrons/pixel)");
      if (o.config.sky_residual > 0) f.write_key("SKYRESID", e.sky_residual, "sky left in the image (electrons/pixel)");
      if (o.config.unmasked_cr > 0) {
        f.write_key("CRUNMASK", static_cast<long long>(e.unmasked_cosmic_rays), "cosmic-ray tracks not flagged CR");
      }
      f.write_image(to_image(e.image), "IMAGE");
      write_wcs(f, o);
      f.write_key("BUNIT", std::string("electron"), "");
      f.write_mask(to_mask(e.mask), "MASK");
      const auto& names = mask_bit_names();
      for (std::size_t b = 0; b < names.size(); ++b) {
        f.write_key("MP_" + names[b], static_cast<long long>(b), "mask plane bit");
      }
      write_wcs(f, o);
      f.write_image(to_image(e.variance), "VARIANCE");
      write_wcs(f, o);
    });
    files.fits(numbered("psf", t), [&](io::FitsFile& p) {
      p.write_image(to_image(e.psf));
      p.write_key("FWHM", e.model_fwhm_arcsec / o.config.pixel_scale_arcsec, "PSF FWHM (pixels)");
      if (o.config.psf_error > 0) {
        p.write_key("TRUEFWHM", e.fwhm_arcsec / o.config.pixel_scale_arcsec, "FWHM of the PSF that made the image (px)");
        p.write_key("PSFERR", o.config.psf_error, "simulate --psf-error: this PSF is a model with errors");
      }
    });
    io::ExposureSpec exposure;
    exposure.file = numbered("exp", t);
    exposure.psf = numbered("psf", t);
    spec.exposures.push_back(exposure);
  }
  files.fits("truth.fits", [&](io::FitsFile& truth) {
    truth.write_image(to_image(sim.truth_target));
    write_wcs(truth, o);
    truth.write_key("TFWHM", o.config.target_fwhm_pixels, "FWHM of the target PSF (pixels)");
    truth.write_key("ACPROD", std::string("truth convolved with TARGET_PSF"), "");
    // The sky noise of the inverse-variance coadd, per pixel: evaluate's detection threshold unit.
    double inverse_variance = 0;
    for (const SimulatedExposure& e : sim.exposures) {
      inverse_variance += e.flux_scale * e.flux_scale / (e.sky + o.config.read_noise * o.config.read_noise);
    }
    truth.write_key("NOISECOA", 1 / std::sqrt(inverse_variance), "sky noise of the inverse-variance coadd (flux/px)");
    truth.write_image(to_image(sim.target_psf), "TARGET_PSF");
    truth.write_image(to_image(sim.truth), "TRUTH");
    write_wcs(truth, o);
  });
  files.text("truth_catalog.csv", truth_catalog_text(sim.sources));
  files.manifest(spec);  // last: a folder holds a stack once its manifest is there
  files.commit();
  spdlog::info("wrote {} ({} exposures, truth.fits, truth_catalog.csv)", manifest.string(), sim.exposures.size());
}

int run_simulate(const SimulateOptions& options, const mpi::MpiEnvironment& env) {
  auto comm = env.make_communicator(mpi::Backend::kMpi, -1);
  comm->collectively([&] { write_simulated_stack(options); }, comm->rank() == 0);
  return kExitDone;
}

}  // namespace astroclear::jobs
