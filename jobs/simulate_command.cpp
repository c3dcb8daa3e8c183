// astroclear simulate: write a simulated stack as HSC-like FITS files, its truth and a manifest.
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/fits_file.hpp"
#include "io/manifest.hpp"
#include "jobs/commands.hpp"
#include "jobs/tensor_image.hpp"
#include "mpi/error.hpp"

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

}  // namespace

void write_simulated_stack(const SimulateOptions& o) {
  const fs::path dir(o.output_dir);
  fs::create_directories(dir);
  const fs::path manifest = dir / "stack.toml";
  if (fs::exists(manifest) && !o.overwrite) {
    throw Error(manifest.string() + ": a stack is already there; pass --overwrite to replace it");
  }
  if (o.overwrite) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("exp_", 0) == 0 || name.rfind("psf_", 0) == 0 || name == "truth.fits" ||
          name == "truth_catalog.csv" || name == "stack.toml") {
        fs::remove(entry.path());
      }
    }
  }
  spdlog::info("simulating {} exposures of {} x {} px (seed {})", o.config.exposures, o.config.width, o.config.height,
               o.config.seed);
  SimulatedStack sim = simulate_stack(o.config);
  io::StackSpec spec;
  for (int t = 0; t < static_cast<int>(sim.exposures.size()); ++t) {
    const SimulatedExposure& e = sim.exposures[t];
    io::FitsFile f = io::FitsFile::create((dir / numbered("exp", t)).string());
    f.write_empty_primary();
    f.write_key("FSCALE", e.flux_scale, "image = FSCALE * calibrated flux");
    f.write_key("EXPID", static_cast<long long>(t), "exposure number");
    f.write_key("SEEING", e.fwhm_arcsec, "PSF FWHM (arcsec)");
    f.write_key("SKYLEVEL", e.sky, "subtracted sky (electrons/pixel)");
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
    f.close();
    io::FitsFile p = io::FitsFile::create((dir / numbered("psf", t)).string());
    p.write_image(to_image(e.psf));
    p.write_key("FWHM", e.fwhm_arcsec / o.config.pixel_scale_arcsec, "PSF FWHM (pixels)");
    p.close();
    spec.exposures.push_back({numbered("exp", t), "", "", "", "", numbered("psf", t), std::nullopt});
  }
  io::FitsFile truth = io::FitsFile::create((dir / "truth.fits").string());
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
  truth.close();
  std::ofstream catalog(dir / "truth_catalog.csv");
  catalog << "type,x,y,flux,half_light_radius,sersic_index,axis_ratio,position_angle\n";
  for (const TruthSource& s : sim.sources) {
    catalog << s.type << ',' << s.x << ',' << s.y << ',' << s.flux << ',' << s.half_light_radius << ','
            << s.sersic_index << ',' << s.axis_ratio << ',' << s.position_angle << '\n';
  }
  io::write_manifest(manifest.string(), spec);
  spdlog::info("wrote {} ({} exposures, truth.fits, truth_catalog.csv)", manifest.string(), sim.exposures.size());
}

int run_simulate(const SimulateOptions& options, const mpi::MpiEnvironment& env) {
  auto comm = env.make_communicator(mpi::Backend::kMpi, -1);
  comm->collectively([&] { write_simulated_stack(options); }, comm->rank() == 0);
  return 0;
}

}  // namespace astroclear::jobs
