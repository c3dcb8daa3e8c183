// read_truth_catalog and read_sextractor_catalog: plain text, checked field by field.
#include "io/catalogs.hpp"

#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/error.hpp"
#include "common/number_text.hpp"

namespace astroclear::io {
namespace {

double number(const std::string& text, const std::string& where) {
  const std::optional<double> value = parse_number(text);
  if (!value) throw Error(where + ": '" + text + "' is not a number");
  return *value;
}

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, separator)) fields.push_back(field);
  return fields;
}

}  // namespace

std::vector<TruthEntry> read_truth_catalog(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the truth catalogue");
  std::string line;
  if (!std::getline(in, line)) throw Error(path + ": empty file, expected a header type,x,y,flux,...");
  const std::vector<std::string> header = split(line, ',');
  std::map<std::string, std::size_t> column;
  for (std::size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  for (const char* needed : {"type", "x", "y", "flux", "half_light_radius"}) {
    if (!column.count(needed)) throw Error(path + ": the header has no column '" + needed + "'");
  }
  std::vector<TruthEntry> entries;
  for (int number_of_line = 2; std::getline(in, line); ++number_of_line) {
    if (line.empty()) continue;
    const std::vector<std::string> fields = split(line, ',');
    const std::string where = path + ":" + std::to_string(number_of_line);
    if (fields.size() != header.size()) {
      throw Error(where + ": " + std::to_string(fields.size()) + " fields, the header has " +
                  std::to_string(header.size()));
    }
    TruthEntry e;
    e.type = fields[column["type"]];
    e.x = number(fields[column["x"]], where + " field x");
    e.y = number(fields[column["y"]], where + " field y");
    e.flux = number(fields[column["flux"]], where + " field flux");
    e.half_light_radius = number(fields[column["half_light_radius"]], where + " field half_light_radius");
    entries.push_back(e);
  }
  return entries;
}

std::vector<Detection> read_sextractor_catalog(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the SExtractor catalogue");
  std::map<std::string, std::size_t> column;
  std::vector<Detection> detections;
  std::string line;
  for (int number_of_line = 1; std::getline(in, line); ++number_of_line) {
    const std::string where = path + ":" + std::to_string(number_of_line);
    if (line.empty()) continue;
    std::istringstream fields(line);
    if (line[0] == '#') {  // "#   3 FLUX_APER   Flux vector within fixed circular aperture(s)  [count]"
      std::string hash, name;
      std::size_t index = 0;
      if (fields >> hash >> index >> name) column[name] = index - 1;
      continue;
    }
    for (const char* needed : {"X_IMAGE", "Y_IMAGE", "FLUX_APER", "FLUX_AUTO", "FWHM_IMAGE", "FLAGS"}) {
      if (!column.count(needed)) throw Error(path + ": the catalogue header has no column " + needed);
    }
    std::vector<double> values;
    std::string text;
    while (fields >> text) values.push_back(number(text, where));
    auto at = [&](const char* name) {
      if (column[name] >= values.size()) throw Error(where + ": no value for " + name);
      return values[column[name]];
    };
    Detection d;
    d.x = at("X_IMAGE") - 1;
    d.y = at("Y_IMAGE") - 1;
    d.flux_aper = at("FLUX_APER");
    d.flux_auto = at("FLUX_AUTO");
    d.fwhm = at("FWHM_IMAGE");
    d.flags = static_cast<int>(at("FLAGS"));
    detections.push_back(d);
  }
  return detections;
}

}  // namespace astroclear::io
