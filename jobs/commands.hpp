// The astroclear subcommands: options filled by CLI11 (flags and TOML), and their entry points.
#pragma once

#include <string>
#include <vector>

#include "mpi/mpi_environment.hpp"
#include "src/config.hpp"
#include "src/richardson_lucy.hpp"
#include "src/simulator.hpp"

namespace astroclear::jobs {

/// Exit codes (README "Exit codes"; the Slurm scripts act on them).
inline constexpr int kExitDone = 0;            ///< finished: outputs written
inline constexpr int kExitError = 1;           ///< a real error: do not retry unchanged
inline constexpr int kExitUsage = 2;           ///< bad command line
inline constexpr int kExitAboveTolerance = 3;  ///< compare: the images differ by more than --tolerance
inline constexpr int kExitCheckpointed = 75;   ///< stopped by SIGUSR1/SIGTERM after a checkpoint: resume to finish

/// Where and how a command runs: device, threads, communicator backend.
struct RuntimeOptions {
  std::string device = "auto";  ///< auto, cpu or cuda
  int threads = 0;               ///< per rank; 0 = the node's cores shared among its ranks
  std::string comm = "auto";     ///< auto, mpi or nccl
  std::string tf32 = "default";  ///< on a GPU: TF32 in cuDNN convolutions and cuBLAS, on, off or LibTorch's default
};

/// When and where train writes checkpoints, and what it resumes from (DESIGN.md section 3).
struct CheckpointOptions {
  std::string directory;        ///< default: the output's name with .checkpoints for .fits
  int every = 0;                ///< iterations between checkpoints; 0 = by time and at the end only
  double minutes = 30.0;        ///< wall-clock minutes between checkpoints; 0 = not by time
  int keep = 3;                 ///< checkpoints kept
  std::string resume = "none";  ///< none, auto (latest valid, or start fresh) or a checkpoint file
  int kill_midway_at = -1;      ///< tests: SIGKILL itself halfway through writing this iteration's checkpoint
};

struct TrainOptions {
  std::string manifest;
  std::string output;
  std::string preview;       ///< PNG (coadd | restored); empty = none
  bool overwrite = false;
  bool with_coadd = false;   ///< COADD extension
  bool with_residuals = false;  ///< CHI_nnn extensions
  TrainConfig config;
  CheckpointOptions checkpoint;
  RuntimeOptions runtime;
};

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
  std::string decoder = "auto";  ///< PSF convolution, as train's --decoder
  RuntimeOptions runtime;
};

struct EvaluateOptions {
  std::vector<std::string> results;  ///< images to score (positional)
  std::vector<std::string> compare;  ///< more images, scored side by side
  std::string truth_dir;             ///< holds truth.fits and truth_catalog.csv
  std::string hdu;                   ///< EXTNAME; empty = the first image HDU
  std::string reconvolve = "auto";   ///< auto (latent images only), yes or no
  double threshold = 0;              ///< absolute; 0 = threshold_sigma x NOISECOA of truth.fits
  double threshold_sigma = 1.5;
  int min_area = 5;
  int border = 8;
  double match_radius = 0;     ///< pixels; 0 = the target PSF's FWHM
  double aperture = 0;         ///< diameter, pixels; 0 = 4 x the target FWHM
  double photometry_flux = 0;  ///< 0 = 20 x threshold / target PSF peak
  std::string json;            ///< also write one JSON object per image here
  bool overwrite = false;      ///< replace an existing --json file
  std::string sextractor;      ///< executable; empty = source-extractor or sex on PATH
  std::string keep_dir;        ///< keep SExtractor's inputs and catalogues here
};

struct SimulateOptions {
  std::string output_dir;
  bool overwrite = false;
  SimulationConfig config;
  double ra_deg = 150.1163, dec_deg = 2.2056;  ///< field centre (COSMOS)
};

struct CompareOptions {
  std::string first, second;
  std::string hdu;          ///< EXTNAME; empty = the first image HDU
  double tolerance = -1.0;  ///< exit 3 when the relative L2 difference exceeds it (>= 0)
};

struct BenchOptions {
  std::vector<int> sizes{256};
  int exposures = 33;
  std::vector<std::string> decoders{"fft"};
  int warmup = 3;
  int iterations = 10;
  std::string json;            ///< also write one JSON object per line here
  bool overwrite = false;      ///< replace an existing `json` file
  std::string work_dir = "/tmp";  ///< where the simulated stacks are written (removed after)
  std::string reference;          ///< reference_acn.py to run on the same stacks (rank 0, FFT decoder); "" = none
  std::string python = "/usr/bin/python3";
  bool scaling = false;          ///< on P > 1 ranks, also time rank 0 alone: speed-up and efficiency
  int solution_iterations = 0;   ///< > 0: time to solution over a fresh run this long (and the reference's)
  std::string cpu_kernels = "astroclear";  ///< or "libtorch": LibTorch's operations, as on GPUs (set_fast_cpu_kernels)
  std::string precision = "float32";       ///< or "bf16": TrainConfig::precision
  RuntimeOptions runtime;
};

struct InspectOptions {
  std::string path;  ///< a checkpoint file, or a checkpoint folder (its latest valid checkpoint)
};

/// Each returns the process exit code; errors throw (main turns them into messages and codes).
int run_train(const TrainOptions& options, const mpi::MpiEnvironment& env);
int run_coadd(const CoaddOptions& options, const mpi::MpiEnvironment& env);
/// Multi-frame Richardson-Lucy (Note [multi-frame Richardson-Lucy]) on the stack; writes FITS.
int run_rl(const RichardsonLucyOptions& options, const mpi::MpiEnvironment& env);
/// Scores images against a simulated stack's truth with SExtractor; prints a table (one process).
int run_evaluate(const EvaluateOptions& options);
int run_simulate(const SimulateOptions& options, const mpi::MpiEnvironment& env);
/// Times training iterations on simulated stacks and prints a table (and JSON lines).
int run_bench(const BenchOptions& options, const mpi::MpiEnvironment& env);
/// Prints a checkpoint's header: iteration, loss, configuration, inputs, ranks.
int run_inspect(const InspectOptions& options);
/// Prints the relative L2 difference of two FITS images; exit 3 when above the tolerance.
int run_compare(const CompareOptions& options);

/// Simulates a stack and writes exp_NNN.fits, psf_NNN.fits, truth.fits, truth_catalog.csv and
/// stack.toml into options.output_dir (one process; run_simulate calls it on rank 0).
void write_simulated_stack(const SimulateOptions& options);

}  // namespace astroclear::jobs
