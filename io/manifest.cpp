// Manifest reading and writing with toml11.
#include "io/manifest.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include <toml.hpp>

#include "common/error.hpp"
#include "common/nearest_name.hpp"
#include "io/file_tree.hpp"

namespace astroclear::io {
namespace fs = std::filesystem;

namespace {

std::string resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  return path.is_absolute() ? p : (base / path).lexically_normal().string();
}

std::string optional_string(const toml::value& table, const char* key, const std::string& where) {
  if (!table.contains(key)) return "";
  const toml::value& v = table.at(key);
  if (!v.is_string()) throw Error(where + ": '" + key + "' must be a string");
  return v.as_string().str;
}

std::vector<std::string> string_list(const toml::value& table, const char* key, const std::string& where,
                                     std::vector<std::string> fallback) {
  if (!table.contains(key)) return fallback;
  try {
    return toml::get<std::vector<std::string>>(table.at(key));
  } catch (const std::exception&) {
    throw Error(where + ": '" + key + "' must be a list of strings");
  }
}

/// A TOML integer or float as a double; nullopt for any other type.
std::optional<double> number_of(const toml::value& v) {
  if (v.is_floating()) return v.as_floating();
  if (v.is_integer()) return static_cast<double>(v.as_integer());
  return std::nullopt;
}

/// A list of TOML integers; Error naming the key otherwise.
std::vector<std::int64_t> integer_list(const toml::value& table, const char* key, const std::string& where) {
  if (!table.contains(key)) return {};
  try {
    return toml::get<std::vector<std::int64_t>>(table.at(key));
  } catch (const std::exception&) {
    throw Error(where + ": '" + key + "' must be a list of integers");
  }
}

/// One of `allowed`, or Error naming the key, the value and the choices.
std::string choice(const toml::value& table, const char* key, const std::string& where, const std::string& fallback,
                   const std::vector<std::string>& allowed) {
  if (!table.contains(key)) return fallback;
  const std::string value = optional_string(table, key, where);
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return value;
  std::string names;
  for (const std::string& a : allowed) names += (names.empty() ? "\"" : ", \"") + a + "\"";
  throw Error(where + ": '" + key + "' must be one of " + names + ", got \"" + value + "\"");
}

/// Refuses a key that `table` may not hold, naming the nearest it may (a misspelt key would
/// otherwise be ignored and its default used without a word).
void check_keys(const toml::value& table, const std::vector<std::string>& known, const std::string& where) {
  if (!table.is_table()) throw Error(where + ": must be a table");
  for (const auto& [key, value] : table.as_table()) {
    if (key == "flux_scale_keys") {
      throw Error(where + ": 'flux_scale_keys' is no longer read: give flux_scale_key (one keyword) and "
                  "flux_scale_convention (\"multiply\": calibrated = image x value, SWarp's FLXSCALE; \"divide\": "
                  "calibrated = image / value, astroclear simulate's FSCALE)");
    }
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw Error(where + ": '" + key + "' is not a manifest key" + nearest_name(key, known));
    }
  }
}

const std::vector<std::string> kStackKeys = {
    "bad_mask_bits", "mask_kind", "bad_mask_codes", "saturated_mask_codes", "flux_scale_key", "flux_scale_convention",
    "zero_point_key", "target_zero_point", "image_hdu", "mask_hdu", "variance_hdu", "registration_tolerance_px",
    "sky_tolerance_sigma", "subtract_sky", "sky_mesh_px"};
const std::vector<std::string> kExposureKeys = {"file", "image", "variance", "inverse_variance", "mask", "psf",
                                                "flux_scale", "zero_point", "psf_ccd", "psf_position", "psf_plane",
                                                "psf_frame"};

}  // namespace

std::vector<std::string> input_files(const StackSpec& spec) {
  std::vector<std::string> files{spec.source};
  for (const ExposureSpec& e : spec.exposures) {
    for (const std::string* f : {&e.file, &e.image, &e.variance, &e.inverse_variance, &e.mask, &e.psf, &e.psf_frame}) {
      if (!f->empty()) files.push_back(*f);
    }
  }
  return files;
}

StackSpec load_manifest(const std::string& path) {
  if (!fs::exists(path)) throw Error(path + ": manifest not found");
  if (fs::is_directory(path)) throw Error(path + ": is a folder, not a manifest file (give the stack.toml in it)");
  toml::value root;
  try {
    root = toml::parse(path);
  } catch (const std::exception& e) {
    throw Error(path + ": not a valid TOML manifest: " + e.what());
  }
  check_keys(root, {"stack", "exposure"}, path);
  const fs::path base = fs::path(path).parent_path();
  StackSpec spec;
  spec.source = path;
  if (root.contains("stack")) {
    const toml::value& stack = root.at("stack");
    const std::string where = path + " [stack]";
    check_keys(stack, kStackKeys, where);
    spec.bad_mask_bits = string_list(stack, "bad_mask_bits", where, spec.bad_mask_bits);
    spec.mask_kind = choice(stack, "mask_kind", where, spec.mask_kind, {"bits", "codes"});
    spec.bad_mask_codes = integer_list(stack, "bad_mask_codes", where);
    spec.saturated_mask_codes = integer_list(stack, "saturated_mask_codes", where);
    if (spec.mask_kind != "codes" && (stack.contains("bad_mask_codes") || stack.contains("saturated_mask_codes"))) {
      throw Error(where + ": 'bad_mask_codes' and 'saturated_mask_codes' need mask_kind = \"codes\"");
    }
    if (stack.contains("flux_scale_key")) spec.flux_scale_key = optional_string(stack, "flux_scale_key", where);
    spec.flux_scale_convention =
        choice(stack, "flux_scale_convention", where, spec.flux_scale_convention, {"multiply", "divide"});
    spec.zero_point_key = optional_string(stack, "zero_point_key", where);
    if (stack.contains("target_zero_point")) {
      spec.target_zero_point = number_of(stack.at("target_zero_point"));
      if (!spec.target_zero_point || !std::isfinite(*spec.target_zero_point)) {
        throw Error(where + ": 'target_zero_point' must be a finite number (a magnitude)");
      }
    }
    for (auto [key, field] : {std::pair{"registration_tolerance_px", &spec.registration_tolerance_px},
                              std::pair{"sky_tolerance_sigma", &spec.sky_tolerance_sigma}}) {
      if (!stack.contains(key)) continue;
      const std::optional<double> value = number_of(stack.at(key));
      if (!value || !(*value > 0 && *value <= 1000)) throw Error(where + ": '" + key + "' must be a number in (0, 1000]");
      *field = *value;
    }
    spec.subtract_sky = choice(stack, "subtract_sky", where, spec.subtract_sky, {"none", "median", "mesh"});
    if (stack.contains("sky_mesh_px")) {
      const toml::value& v = stack.at("sky_mesh_px");
      if (!v.is_integer() || v.as_integer() < 8 || v.as_integer() > 100000) {
        throw Error(where + ": 'sky_mesh_px' must be an integer from 8 to 100000 (pixels of a sky box)");
      }
      spec.sky_mesh_px = v.as_integer();
    }
    for (auto [key, field] : {std::pair{"image_hdu", &spec.image_hdu}, std::pair{"mask_hdu", &spec.mask_hdu},
                              std::pair{"variance_hdu", &spec.variance_hdu}}) {
      if (stack.contains(key)) *field = optional_string(stack, key, where);
    }
  }
  if (!root.contains("exposure") || !root.at("exposure").is_array()) {
    throw Error(path + ": no [[exposure]] entries; a manifest lists each exposure and its PSF");
  }
  const auto& entries = root.at("exposure").as_array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = path + " [[exposure]] #" + std::to_string(i);
    const toml::value& e = entries[i];
    check_keys(e, kExposureKeys, where);
    ExposureSpec x;
    x.file = resolve(base, optional_string(e, "file", where));
    x.image = resolve(base, optional_string(e, "image", where));
    x.variance = resolve(base, optional_string(e, "variance", where));
    x.inverse_variance = resolve(base, optional_string(e, "inverse_variance", where));
    x.mask = resolve(base, optional_string(e, "mask", where));
    x.psf = resolve(base, optional_string(e, "psf", where));
    if (e.contains("flux_scale")) {
      x.flux_scale = number_of(e.at("flux_scale"));
      if (!x.flux_scale) throw Error(where + ": 'flux_scale' must be a number");
    }
    if (e.contains("zero_point")) {
      x.zero_point = number_of(e.at("zero_point"));
      if (!x.zero_point || !std::isfinite(*x.zero_point)) throw Error(where + ": 'zero_point' must be a finite number");
    }
    x.psf_ccd = optional_string(e, "psf_ccd", where);
    x.psf_frame = resolve(base, optional_string(e, "psf_frame", where));
    if (e.contains("psf_position")) {
      std::vector<double> at;
      try {
        for (const toml::value& v : e.at("psf_position").as_array()) at.push_back(number_of(v).value());
      } catch (const std::exception&) {
        at.clear();
      }
      if (at.size() != 2 || !std::isfinite(at[0]) || !std::isfinite(at[1])) {
        throw Error(where + ": 'psf_position' must be [x, y], two finite pixel coordinates (1-based, as PSFEx's)");
      }
      x.psf_position = std::array<double, 2>{at[0], at[1]};
    }
    if (e.contains("psf_plane")) {
      const toml::value& v = e.at("psf_plane");
      if (!v.is_integer() || v.as_integer() < 0 || v.as_integer() > 1000000) {
        throw Error(where + ": 'psf_plane' must be a plane index, an integer from 0");
      }
      x.psf_plane = static_cast<int>(v.as_integer());
    }
    if (x.file.empty() == x.image.empty()) throw Error(where + ": give either 'file' (multi-extension FITS) or 'image'");
    if (!x.image.empty() && x.variance.empty() == x.inverse_variance.empty()) {
      throw Error(where + ": with 'image', give exactly one of 'variance' or 'inverse_variance'");
    }
    if (x.psf.empty()) throw Error(where + ": 'psf' is missing; every exposure needs its PSF");
    spec.exposures.push_back(std::move(x));
  }
  const bool by_zero_point = !spec.zero_point_key.empty() ||
                             std::any_of(spec.exposures.begin(), spec.exposures.end(),
                                         [](const ExposureSpec& x) { return x.zero_point.has_value(); });
  if (by_zero_point != spec.target_zero_point.has_value()) {
    throw Error(path + " [stack]: " +
                (by_zero_point ? std::string("zero points are given, but no target_zero_point to scale them to")
                               : std::string("target_zero_point needs zero_point_key or each exposure's zero_point")));
  }
  // An exposure listed twice would weigh double and count twice towards the minimum of two.
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < spec.exposures.size(); ++i) {
    std::error_code ec;
    const std::string key = fs::weakly_canonical(spec.exposures[i].label(), ec).string();
    const auto [at, fresh] = seen.emplace(ec ? spec.exposures[i].label() : key, i);
    if (!fresh) {
      throw Error(path + " [[exposure]] #" + std::to_string(i) + ": " + spec.exposures[i].label() +
                  " is already exposure #" + std::to_string(at->second) + "; each exposure may be listed once");
    }
  }
  return spec;
}

void write_manifest(const std::string& path, const StackSpec& spec) {
  std::ostringstream out;
  out.precision(12);
  auto list = [](const std::vector<std::string>& items) {
    std::string s = "[";
    for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", \"" : "\"") + items[i] + "\"";
    return s + "]";
  };
  out << "# astroclear stack manifest: one [[exposure]] per exposure, paths relative to this file\n"
      << "[stack]\n"
      << "bad_mask_bits = " << list(spec.bad_mask_bits) << "\n"
      << "mask_kind = \"" << spec.mask_kind << "\"\n"
      << "flux_scale_key = \"" << spec.flux_scale_key << "\"\n"
      << "flux_scale_convention = \"" << spec.flux_scale_convention << "\"\n";
  auto integers = [](const std::vector<std::int64_t>& items) {
    std::string s = "[";
    for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + std::to_string(items[i]);
    return s + "]";
  };
  if (spec.mask_kind == "codes") {
    out << "bad_mask_codes = " << integers(spec.bad_mask_codes) << "\n"
        << "saturated_mask_codes = " << integers(spec.saturated_mask_codes) << "\n";
  }
  if (!spec.zero_point_key.empty()) out << "zero_point_key = \"" << spec.zero_point_key << "\"\n";
  if (spec.target_zero_point) out << "target_zero_point = " << *spec.target_zero_point << "\n";
  if (spec.subtract_sky != "none") out << "subtract_sky = \"" << spec.subtract_sky << "\"\n";
  if (spec.subtract_sky == "mesh") out << "sky_mesh_px = " << spec.sky_mesh_px << "\n";
  out << "\n";
  for (const ExposureSpec& x : spec.exposures) {
    out << "[[exposure]]\n";
    if (!x.file.empty()) out << "file = \"" << x.file << "\"\n";
    if (!x.image.empty()) out << "image = \"" << x.image << "\"\n";
    if (!x.variance.empty()) out << "variance = \"" << x.variance << "\"\n";
    if (!x.inverse_variance.empty()) out << "inverse_variance = \"" << x.inverse_variance << "\"\n";
    if (!x.mask.empty()) out << "mask = \"" << x.mask << "\"\n";
    out << "psf = \"" << x.psf << "\"\n";
    if (x.flux_scale) out << "flux_scale = " << *x.flux_scale << "\n";
    if (x.zero_point) out << "zero_point = " << *x.zero_point << "\n";
    if (!x.psf_ccd.empty()) out << "psf_ccd = \"" << x.psf_ccd << "\"\n";
    if (x.psf_position) out << "psf_position = [" << (*x.psf_position)[0] << ", " << (*x.psf_position)[1] << "]\n";
    if (x.psf_plane) out << "psf_plane = " << *x.psf_plane << "\n";
    if (!x.psf_frame.empty()) out << "psf_frame = \"" << x.psf_frame << "\"\n";
    out << "\n";
  }
  write_text_file(path, out.str(), "writing the manifest failed");
}

}  // namespace astroclear::io
