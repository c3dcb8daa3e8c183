// JSON Lines results (evaluate --json, bench --json): one object per line, through nlohmann::json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace astroclear::io {

/// A JSON object that keeps its keys in the order they were added.
using JsonObject = nlohmann::ordered_json;

/// Writes one compact JSON object per line to `path`, whole or not at all (write_atomically).
/// Strings are escaped; non-finite numbers are written as null.
void write_json_lines(const std::string& path, const std::vector<JsonObject>& rows);

}  // namespace astroclear::io
