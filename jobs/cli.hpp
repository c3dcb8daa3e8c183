// CLI11 helpers for the subcommands' option declarations: enumerations parsed once, by name.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common/choices.hpp"

namespace astroclear::jobs {
namespace detail {

/// Turns a name of choices<E>() into the integer text CLI11 converts enumerations from, or
/// refuses it naming the allowed values.
template <typename E>
CLI::Validator choice_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto value = parse_choice<E>(text);
        if (!value) return "'" + text + "' is not one of " + choice_names<E>();
        text = std::to_string(static_cast<long long>(*value));
        return "";
      },
      "", "");
}

}  // namespace detail

/// Adds an option whose value is one of choices<E>(), given by name on the command line or in a
/// --config file. Anything else is refused by CLI11 before any work ("--decoder: 'ff' is not one
/// of auto, fft, direct", exit 2). The help shows the names ("auto|fft|direct").
template <typename E>
CLI::Option* add_choice(CLI::App* command, const std::string& flags, E& value, const std::string& help) {
  return command->add_option(flags, value, help)
      ->transform(detail::choice_validator<E>())
      ->type_name(choice_names<E>("|"))
      ->default_str(name_of(value));
}

/// The same for a comma-separated list of choices ("--decoders fft,direct"). `values` must
/// outlive the parse.
template <typename E>
CLI::Option* add_choice(CLI::App* command, const std::string& flags, std::vector<E>& values, const std::string& help) {
  const auto assign = [&values](const std::vector<std::string>& names) {
    values.clear();
    for (const auto& name : names) values.push_back(*parse_choice<E>(name));  // checked below first
  };
  std::string defaults;
  for (const E value : values) defaults += (defaults.empty() ? "" : ",") + name_of(value);
  return command->add_option_function<std::vector<std::string>>(flags, assign, help)
      ->delimiter(',')
      ->check(detail::choice_validator<E>())
      ->type_name(choice_names<E>("|"))
      ->default_str(defaults);
}

}  // namespace astroclear::jobs
