// astroclear: the command line (simulate, train, coadd, rl, mm, validate, evaluate, inspect, compare, bench); MPI-aware errors.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/error.hpp"
#include "jobs/baselines_command.hpp"
#include "jobs/bench_command.hpp"
#include "jobs/compare_command.hpp"
#include "jobs/config_file.hpp"
#include "jobs/evaluate_command.hpp"
#include "jobs/inspect_command.hpp"
#include "jobs/simulate_command.hpp"
#include "jobs/stop_signal.hpp"
#include "jobs/train_command.hpp"
#include "jobs/validate_command.hpp"

namespace {

using astroclear::jobs::Command;
using astroclear::jobs::kExitError;
using astroclear::jobs::kExitUsage;

void configure_logging(int rank) {
  auto logger = spdlog::stdout_logger_mt("astroclear");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [rank " + std::to_string(rank) + "] [%l] %v");
  logger->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Note [large allocations]: every intermediate tensor of an iteration is exposure-sized: 33 x 512^2
// floats are 35 MB, above glibc's largest mmap threshold (32 MB). Each such malloc then maps
// fresh pages and each free unmaps them, so every iteration page-faults its whole working set
// anew, which made the element-wise operations several times slower (docs/performance.md).
// Serving all allocations from the heap and never trimming it keeps freed blocks for the next
// iteration; the process holds its peak memory until it exits, as HPC jobs do.
void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

/// Runs the subcommand CLI11 selected; turns errors into a message and an exit code on every rank.
int run_selected(const std::vector<Command>& commands, const astroclear::mpi::MpiEnvironment& env) {
  try {
    for (const Command& command : commands) {
      if (command.app->parsed()) return command.run(env);
    }
  } catch (const astroclear::CollectiveError& e) {
    // Every rank holds this error: rank 0 reports it once, all stop in order.
    if (env.rank() == 0) spdlog::error("{}{}", e.what(), e.rank() > 0 ? " (on rank " + std::to_string(e.rank()) + ")" : "");
    return kExitError;
  } catch (const std::exception& e) {
    // Only this rank failed: the others may be waiting in a collective, so stop the world.
    spdlog::error("{}", e.what());
    if (env.size() > 1) env.abort(kExitError);
    return kExitError;
  }
  return kExitUsage;  // not reached: CLI11 requires one subcommand
}

/// The subcommand on the command line (the first word after the global --config), or "".
std::string subcommand_of(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config") {
      ++i;
    } else if (arg.rfind("-", 0) != 0) {
      return arg;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // Note [stop signal]: `train` keeps a SIGUSR1 or SIGTERM that arrives while MPI starts and the
  // inputs are read, for its first iteration boundary (a checkpoint there, exit 75).
  if (subcommand_of(argc, argv) == "train") astroclear::jobs::install_stop_handlers();
  keep_freed_memory_for_reuse();
  astroclear::mpi::MpiEnvironment env(argc, argv);
  configure_logging(env.rank());

  CLI::App app{"astroclear: restore a sharp, denoised, non-negative image from a stack of exposures"};
  app.set_config("--config", "", "TOML file with one [train], [coadd] or [simulate] table; flags override it");
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();  // --help shows each option's default
  namespace jobs = astroclear::jobs;
  const std::vector<Command> commands{jobs::add_simulate_command(app), jobs::add_train_command(app),
                                      jobs::add_coadd_command(app),    jobs::add_rl_command(app),
                                      jobs::add_mm_command(app),       jobs::add_validate_command(app),
                                      jobs::add_evaluate_command(app),
                                      jobs::add_inspect_command(app),  jobs::add_compare_command(app),
                                      jobs::add_bench_command(app)};
  try {
    // Note [config files]: the whole file is checked before CLI11 reads it.
    if (const auto config = jobs::config_path(argc, argv)) jobs::check_config_file(*config, app);
  } catch (const astroclear::Error& e) {
    if (env.rank() == 0) spdlog::error("{}", e.what());
    return kExitUsage;  // every rank read the same file and stops here
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = env.rank() == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 2);
    return code == 0 ? 0 : kExitUsage;
  }
  return run_selected(commands, env);
}
