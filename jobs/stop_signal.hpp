// Stop requests by signal: SIGUSR1 (Slurm's --signal warning) or SIGTERM ask a run to checkpoint and stop.
#pragma once

namespace astroclear::jobs {

// Note [stop signal]: the handler only stores the signal number (async-signal-safe). `train` reads
// it at iteration boundaries (its checkpoint policy, in Trainer::train's keep_going), and the ranks
// all-reduce it (max), so that every rank stops after the same iteration even when the signal
// reached only some of them, or at different times.

/// Installs the handlers for SIGUSR1 and SIGTERM. Called once, first thing in main, for `train`.
void install_stop_handlers();
/// The last stop signal received since install_stop_handlers(), 0 if none.
int stop_signal();
/// "SIGUSR1", "SIGTERM", or "a signal" for any other.
const char* signal_name(int signal);

}  // namespace astroclear::jobs
