// Running another program (SExtractor, the benchmark's reference): the one process-spawn helper.
#pragma once

#include <string>
#include <vector>

namespace astroclear::io {

/// Runs `argv[0]` with the arguments `argv` (no shell: nothing is interpreted), its standard
/// output and error written to `log` (created or truncated), and waits for it. `argv[0]` is a
/// path, or a name looked up on PATH. Returns its exit code, or 128 + the signal that killed it.
/// Throws Error naming the program when it cannot be started.
int run_process(const std::vector<std::string>& argv, const std::string& log);

/// The last `lines` non-empty lines of a text file, each on a new line indented by two spaces
/// (for error messages that quote a program's log); empty when the file cannot be read.
std::string file_tail(const std::string& path, std::size_t lines);

}  // namespace astroclear::io
