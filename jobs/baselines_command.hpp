// astroclear coadd, rl and mm: the classical images users compare AstroClearNet with.
#pragma once

#include <string>

#include "eval/image_mm.hpp"
#include "eval/richardson_lucy.hpp"
#include "jobs/command.hpp"
#include "src/config.hpp"

namespace astroclear::jobs {

struct CoaddOptions {
  std::string manifest;
  std::string output;
  bool overwrite = false;
  RuntimeOptions runtime;
};

/// What the iterative restorations (rl, mm) take besides their method's own settings.
struct IterativeOptions {
  std::string manifest;
  std::string output;
  bool overwrite = false;
  DecoderChoice decoder = DecoderChoice::kAuto;  ///< PSF convolution, as train's --decoder
  int log_every = 100;                           ///< progress line every N iterations
  double target_fwhm = 0;  ///< pixels; > 0: restore to that Gaussian resolution (Note [target resolution])
  std::string tiles = "1x1";  ///< the grid of tiles, RxC (Note [tiles])
  bool psf_per_tile = false;  ///< each tile's PSFEx models at its centre (Note [tile PSFs])
  RuntimeOptions runtime;
};

struct RichardsonLucyOptions : IterativeOptions {
  RichardsonLucyConfig config;
};

struct ImageMmOptions : IterativeOptions {
  ImageMmConfig config;
};

/// Adds `coadd` and its options to `app`.
Command add_coadd_command(CLI::App& app);
/// Adds `rl` and its options to `app`.
Command add_rl_command(CLI::App& app);
/// Adds `mm` and its options to `app`.
Command add_mm_command(CLI::App& app);

/// The masked inverse-variance weighted coadd of the stack; writes FITS on rank 0.
int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env);
/// Multi-frame Richardson-Lucy (Note [multi-frame Richardson-Lucy]) on the stack; writes FITS.
int run_rl(const RichardsonLucyOptions& options, const mpi::MpiEnvironment& env);
/// ImageMM (Note [ImageMM]) on the stack; writes FITS.
int run_mm(const ImageMmOptions& options, const mpi::MpiEnvironment& env);

}  // namespace astroclear::jobs
