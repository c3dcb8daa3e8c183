// --config files: checked whole before CLI11 reads them, so that a typo is an error, not a default.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace astroclear::jobs {

/// The value of --config on a command line (`--config FILE` or `--config=FILE`), if any.
std::optional<std::string> config_path(int argc, const char* const* argv);

/// Note [config files]: throws Error unless `path` is TOML whose every top-level item is a table
/// named after a subcommand of `app`, and whose every key is one of that subcommand's options (its
/// long name without the dashes, a one-letter short name, or a positional's name). Syntax errors
/// name the file and the line (toml11's report); unknown keys name the table, the key and the
/// nearest valid name.
void check_config_file(const std::string& path, const CLI::App& app);

}  // namespace astroclear::jobs
