// write_json_lines: nlohmann::json's compact form, one object a line, through write_text_file.
#include "io/json_lines.hpp"

#include "io/file_tree.hpp"

namespace astroclear::io {

void write_json_lines(const std::string& path, const std::vector<JsonObject>& rows) {
  std::string text;
  for (const JsonObject& row : rows) text += row.dump() + "\n";
  write_text_file(path, text, "cannot write the JSON results");
}

}  // namespace astroclear::io
