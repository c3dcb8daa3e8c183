// Manifest reading and writing with toml11.
#include "io/manifest.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include <toml.hpp>

#include "common/error.hpp"
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

}  // namespace

std::vector<std::string> input_files(const StackSpec& spec) {
  std::vector<std::string> files{spec.source};
  for (const ExposureSpec& e : spec.exposures) {
    for (const std::string* f : {&e.file, &e.image, &e.variance, &e.inverse_variance, &e.mask, &e.psf}) {
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
  const fs::path base = fs::path(path).parent_path();
  StackSpec spec;
  spec.source = path;
  if (root.contains("stack")) {
    const toml::value& stack = root.at("stack");
    const std::string where = path + " [stack]";
    spec.bad_mask_bits = string_list(stack, "bad_mask_bits", where, spec.bad_mask_bits);
    spec.flux_scale_keys = string_list(stack, "flux_scale_keys", where, spec.flux_scale_keys);
    for (auto [key, field] : {std::pair{"registration_tolerance_px", &spec.registration_tolerance_px},
                              std::pair{"sky_tolerance_sigma", &spec.sky_tolerance_sigma}}) {
      if (!stack.contains(key)) continue;
      const std::optional<double> value = number_of(stack.at(key));
      if (!value || !(*value > 0 && *value <= 1000)) throw Error(where + ": '" + key + "' must be a number in (0, 1000]");
      *field = *value;
    }
    if (stack.contains("subtract_sky")) {
      spec.subtract_sky = optional_string(stack, "subtract_sky", where);
      if (spec.subtract_sky != "none" && spec.subtract_sky != "median") {
        throw Error(where + ": 'subtract_sky' must be \"none\" or \"median\", got \"" + spec.subtract_sky + "\"");
      }
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
    if (x.file.empty() == x.image.empty()) throw Error(where + ": give either 'file' (multi-extension FITS) or 'image'");
    if (!x.image.empty() && x.variance.empty() == x.inverse_variance.empty()) {
      throw Error(where + ": with 'image', give exactly one of 'variance' or 'inverse_variance'");
    }
    if (x.psf.empty()) throw Error(where + ": 'psf' is missing; every exposure needs its PSF");
    spec.exposures.push_back(std::move(x));
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
  auto list = [](const std::vector<std::string>& items) {
    std::string s = "[";
    for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", \"" : "\"") + items[i] + "\"";
    return s + "]";
  };
  out << "# astroclear stack manifest: one [[exposure]] per exposure, paths relative to this file\n"
      << "[stack]\n"
      << "bad_mask_bits = " << list(spec.bad_mask_bits) << "\n"
      << "flux_scale_keys = " << list(spec.flux_scale_keys) << "\n\n";
  for (const ExposureSpec& x : spec.exposures) {
    out << "[[exposure]]\n";
    if (!x.file.empty()) out << "file = \"" << x.file << "\"\n";
    if (!x.image.empty()) out << "image = \"" << x.image << "\"\n";
    if (!x.variance.empty()) out << "variance = \"" << x.variance << "\"\n";
    if (!x.inverse_variance.empty()) out << "inverse_variance = \"" << x.inverse_variance << "\"\n";
    if (!x.mask.empty()) out << "mask = \"" << x.mask << "\"\n";
    out << "psf = \"" << x.psf << "\"\n";
    if (x.flux_scale) out << "flux_scale = " << *x.flux_scale << "\n";
    out << "\n";
  }
  write_text_file(path, out.str(), "writing the manifest failed");
}

}  // namespace astroclear::io
