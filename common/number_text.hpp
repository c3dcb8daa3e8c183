// Numbers read from text (command lines, catalogues) strictly: the whole text or nothing; and
// numbers written into messages.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

namespace astroclear {

/// The value of `text` when all of it is one decimal number (as std::stod reads it: "1e30", "inf"
/// and "nan" included), else nullopt ("", "3x", "1,5").
inline std::optional<double> parse_number(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used == 0 || used != text.size()) return std::nullopt;
  return value;
}

/// `value` as messages print it: six significant digits ("%.6g").
inline std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

}  // namespace astroclear
