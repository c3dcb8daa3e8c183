// check_config_file: TOML syntax through toml11, every table and key against the subcommands' options.
#include "jobs/config_file.hpp"

#include <toml.hpp>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "common/error.hpp"
#include "common/nearest_name.hpp"

namespace astroclear::jobs {
namespace {

/// The keys a subcommand's table may hold: every option's long and short names and positionals.
std::vector<std::string> option_keys(const CLI::App& command) {
  std::vector<std::string> keys;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames()) keys.push_back(name);
    for (const std::string& name : option->get_snames()) keys.push_back(name);
    if (option->get_positional()) keys.push_back(option->get_name(/*positional=*/true));
  }
  keys.erase(std::remove(keys.begin(), keys.end(), "help"), keys.end());
  return keys;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::optional<std::string> config_path(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) return std::string(argv[i + 1]);
    if (arg.rfind("--config=", 0) == 0) return arg.substr(9);
  }
  return std::nullopt;
}

// Note [config files]: CLI11 reads TOML leniently: it skips keys it does not know (a misspelt
// `iteration = 5` ran the default), and a syntax error surfaces as a missing required option. The
// file is therefore parsed by toml11 first, which reports the line, and every table and key is
// matched against the subcommands' options.
void check_config_file(const std::string& path, const CLI::App& app) {
  if (!std::filesystem::is_regular_file(path)) throw Error("--config: " + path + ": no such file");
  toml::value root;
  try {
    root = toml::parse(path);
  } catch (const std::exception& e) {
    throw Error("--config: " + path + " is not valid TOML: " + e.what());
  }
  std::vector<std::string> commands;
  for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(command->get_name());
  }
  for (const auto& [table, value] : root.as_table()) {
    const auto found = std::find(commands.begin(), commands.end(), table);
    if (found == commands.end() || !value.is_table()) {
      throw Error("--config: " + path + ": '" + table + "' is not a table of a subcommand (" + joined(commands) + ")" +
                  nearest_name(table, commands) +
                  " Every setting goes under the table of its subcommand, "
                  "e.g. [train]");
    }
    const std::vector<std::string> keys = option_keys(*app.get_subcommand(table));
    for (const auto& item : value.as_table()) {
      if (std::find(keys.begin(), keys.end(), item.first) == keys.end()) {
        throw Error("--config: " + path + ": [" + table + "] '" + item.first + "' is not an option of " + table +
                    nearest_name(item.first, keys));
      }
    }
  }
}

}  // namespace astroclear::jobs
