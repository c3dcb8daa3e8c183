// astroclear coadd and rl: the two classical images users compare AstroClearNet with.
#pragma once

#include <string>

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

struct RichardsonLucyOptions {
  std::string manifest;
  std::string output;
  bool overwrite = false;
  RichardsonLucyConfig config;
  DecoderChoice decoder = DecoderChoice::kAuto;  ///< PSF convolution, as train's --decoder
  RuntimeOptions runtime;
};

/// Adds `coadd` and its options to `app`.
Command add_coadd_command(CLI::App& app);
/// Adds `rl` and its options to `app`.
Command add_rl_command(CLI::App& app);

/// The masked inverse-variance weighted coadd of the stack; writes FITS on rank 0.
int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env);
/// Multi-frame Richardson-Lucy (Note [multi-frame Richardson-Lucy]) on the stack; writes FITS.
int run_rl(const RichardsonLucyOptions& options, const mpi::MpiEnvironment& env);

}  // namespace astroclear::jobs
