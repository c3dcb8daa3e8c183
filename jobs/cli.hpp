// CLI11 helpers for the subcommands' option declarations: enumerations parsed once, by name, and
// every numeric option checked for finiteness and range in one place.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "common/choices.hpp"
#include "common/number_text.hpp"

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

/// "1e+08" -> "1e8": the bounds as a user would type them.
inline std::string bound_text(double value) {
  std::string out = number_text(value);
  const auto e = out.find("e+");
  if (e != std::string::npos) out.erase(e + 1, 1 + (out[e + 2] == '0'));
  return out;
}

}  // namespace detail

/// The values a numeric option accepts: finite, from `min` (or above it, where `min_open`) to `max`.
struct Range {
  double min;
  double max;
  bool min_open = false;

  std::string text() const {
    return (min_open ? "(" : "[") + detail::bound_text(min) + ", " + detail::bound_text(max) + "]";
  }
};

/// Checks the text of one value against `range` before CLI11 converts it, so that "-1" never
/// becomes 2^64-1 and "nan" or "inf" never reach a computation: "--learning-rate: must be a finite
/// number in (0, 1], got inf" (exit 2, before any work, on every rank alike).
inline CLI::Validator range_validator(const Range& range) {
  return CLI::Validator(
      [range](std::string& text) -> std::string {
        const std::optional<double> value = parse_number(text);
        if (!value || !std::isfinite(*value) || *value < range.min || (range.min_open && *value == range.min) ||
            *value > range.max) {
          return "must be a finite number in " + range.text() + ", got " + text;
        }
        return "";
      },
      "in " + range.text(), "");
}

/// Adds a numeric option (or a list of them) whose every value is checked against `range`.
template <typename T>
CLI::Option* add_number(CLI::App* command, const std::string& flags, T& value, const std::string& help,
                        const Range& range) {
  return command->add_option(flags, value, help)->check(range_validator(range));
}

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
