// Named values of an enumeration: how flags, configuration files, logs and headers spell them.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace astroclear {

/// The names of an enumeration's values, in the order help texts list them. Each enumeration that
/// an option takes specialises it beside its declaration.
template <typename E>
const std::vector<std::pair<std::string, E>>& choices();

/// The name of `value` in choices<E>().
template <typename E>
std::string name_of(E value) {
  for (const auto& [name, v] : choices<E>()) {
    if (v == value) return name;
  }
  return "?";
}

/// The value named `name` in choices<E>(), or nullopt.
template <typename E>
std::optional<E> parse_choice(const std::string& name) {
  for (const auto& [n, v] : choices<E>()) {
    if (n == name) return v;
  }
  return std::nullopt;
}

/// "auto, fft, direct" (with `separator` ", ") or "auto|fft|direct".
template <typename E>
std::string choice_names(const std::string& separator = ", ") {
  std::string text;
  for (const auto& [name, v] : choices<E>()) text += (text.empty() ? "" : separator) + name;
  return text;
}

}  // namespace astroclear
