// Checkpoint files: write the layout of Note [checkpoint layout], read it back and verify it.
#include "io/checkpoint_file.hpp"

#include <algorithm>
#include <sstream>
#include <type_traits>

#include "io/checksum.hpp"
#include "io/hdf5_file.hpp"
#include "common/error.hpp"

namespace astroclear::io {
namespace {

template <class T>
std::uint64_t checksum_of(const std::vector<T>& values) {
  Checksum sum;
  sum.add(values);
  return sum.value();
}

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (std::int64_t d : shape) count *= d;
  return count;
}

/// Per-dataset checksums, in the order the header checksum takes them.
struct DatasetSums {
  std::uint64_t loss_history = 0, latent = 0;
  std::vector<std::uint64_t> tensors;  ///< value, exp_avg, exp_avg_sq per tensor
  std::uint64_t held_out = 0, validation_iterations = 0, validation_losses = 0, best_latent = 0;  ///< version 2
};

/// The root checksum of a file of format `version`: every attribute and every dataset's checksum.
std::uint64_t header_checksum(const Checkpoint& c, const DatasetSums& sums, std::int64_t version) {
  Checksum sum;
  sum.add(std::string(kCheckpointFormat));
  sum.add(static_cast<std::uint64_t>(version));
  sum.add(static_cast<std::uint64_t>(c.iteration));
  sum.add(static_cast<std::uint64_t>(c.ranks));
  sum.add(c.created_utc);
  sum.add(c.software_version);
  for (const auto& [key, value] : c.config) {
    sum.add(key);
    sum.add(value);
  }
  sum.add(c.manifest);
  sum.add(static_cast<std::uint64_t>(c.height));
  sum.add(static_cast<std::uint64_t>(c.width));
  sum.add_bytes(&c.flux_unit, sizeof(c.flux_unit));
  for (const auto& input : c.inputs) {
    sum.add(input.file);
    sum.add(input.psf);
    sum.add(input.checksum);
  }
  sum.add(sums.loss_history);
  sum.add(sums.latent);
  for (const auto& t : c.tensors) {
    sum.add(t.name);
    sum.add(static_cast<std::uint64_t>(t.sharded));
    sum.add(static_cast<std::uint64_t>(t.adam_step));
  }
  sum.add(sums.tensors);
  if (version >= 2) {
    sum.add(sums.held_out);
    sum.add(sums.validation_iterations);
    sum.add(sums.validation_losses);
    sum.add(sums.best_latent);
  }
  return sum.value();
}

/// Writes `values` with its checksum attribute; returns the checksum.
template <class T>
std::uint64_t write_checked(Hdf5File& f, const std::string& dataset, const std::vector<T>& values) {
  f.write(dataset, values);
  const std::uint64_t sum = checksum_of(values);
  f.write_attribute(dataset, "checksum", sum);
  return sum;
}

/// Reads a uint64 or float64 dataset and checks it against its checksum attribute.
template <class T>
std::vector<T> read_checked(Hdf5File& f, const std::string& dataset, std::uint64_t& checksum) {
  std::vector<T> values;
  if constexpr (std::is_same_v<T, double>) {
    values = f.read_doubles(dataset);
  } else {
    values = f.read_uint64s(dataset);
  }
  checksum = f.read_uint64_attribute(dataset, "checksum");
  if (checksum_of(values) != checksum) {
    throw Error(f.path() + ": dataset " + dataset + ": checksum does not match its values; the file is corrupt");
  }
  return values;
}

/// Names joined by spaces (attributes that list datasets or settings); split_names reverses it.
std::string join_names(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : " ") + name;
  return text;
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream in(text);
  for (std::string name; in >> name;) names.push_back(name);
  return names;
}

void write_array(Hdf5File& f, const std::string& dataset, const FloatArray& array) {
  f.write(dataset, array.shape, array.values);
  f.write_attribute(dataset, "checksum", checksum_of(array.values));
}

/// Reads a float dataset and checks its checksum attribute and its element count.
FloatArray read_array(Hdf5File& f, const std::string& dataset, std::uint64_t& checksum) {
  FloatArray array;
  array.shape = f.shape(dataset);
  array.values = f.read_floats(dataset);
  checksum = f.read_uint64_attribute(dataset, "checksum");
  if (checksum_of(array.values) != checksum) {
    throw Error(f.path() + ": dataset " + dataset + ": checksum " + checksum_text(checksum_of(array.values)) +
                " of the values read does not match the stored " + checksum_text(checksum) + "; the file is corrupt");
  }
  return array;
}

}  // namespace

std::string Checkpoint::setting(const std::string& key) const {
  for (const auto& [k, v] : config) {
    if (k == key) return v;
  }
  return "";
}

void write_checkpoint_file(const std::string& path, const Checkpoint& c, const std::function<void()>& midway) {
  Hdf5File f = Hdf5File::create(path);
  DatasetSums sums;
  f.write_attribute("/", "format", std::string(kCheckpointFormat));
  f.write_attribute("/", "format_version", kCheckpointVersion);
  f.write_attribute("/", "iteration", c.iteration);
  f.write_attribute("/", "ranks", c.ranks);
  f.write_attribute("/", "created_utc", c.created_utc);
  f.write_attribute("/", "astroclear_version", c.software_version);

  std::vector<std::string> files, psfs;
  std::vector<std::uint64_t> input_sums;
  for (const auto& input : c.inputs) {
    files.push_back(input.file);
    psfs.push_back(input.psf);
    input_sums.push_back(input.checksum);
  }
  f.write("/inputs/files", files);
  f.write("/inputs/psfs", psfs);
  f.write("/inputs/checksums", input_sums);
  f.write_attribute("/inputs", "manifest", c.manifest);
  f.write_attribute("/inputs", "height", c.height);
  f.write_attribute("/inputs", "width", c.width);
  f.write_attribute("/inputs", "flux_unit", c.flux_unit);

  f.write("/loss_history", c.loss_history);
  sums.loss_history = checksum_of(c.loss_history);
  f.write_attribute("/loss_history", "checksum", sums.loss_history);

  for (const auto& t : c.tensors) {
    const std::string name = "/parameters/" + t.name;
    write_array(f, name, t.value);
    f.write_attribute(name, "sharded", static_cast<std::int64_t>(t.sharded));
    f.write_attribute(name, "adam_step", t.adam_step);
    sums.tensors.push_back(checksum_of(t.value.values));
  }
  std::vector<std::string> names;
  for (const auto& t : c.tensors) names.push_back(t.name);
  f.write_attribute("/parameters", "names", join_names(names));
  for (const auto& t : c.tensors) {
    write_array(f, "/adam/exp_avg/" + t.name, t.exp_avg);
    write_array(f, "/adam/exp_avg_sq/" + t.name, t.exp_avg_sq);
    sums.tensors.push_back(checksum_of(t.exp_avg.values));
    sums.tensors.push_back(checksum_of(t.exp_avg_sq.values));
  }
  write_array(f, "/latent", c.latent);
  sums.latent = checksum_of(c.latent.values);
  sums.held_out = write_checked(f, "/inputs/held_out", c.held_out);
  sums.validation_iterations = write_checked(f, "/validation/iterations", c.validation.iterations);
  sums.validation_losses = write_checked(f, "/validation/losses", c.validation.losses);
  FloatArray best = c.validation.best_latent;
  if (best.shape.empty()) best.shape = {0};
  write_array(f, "/validation/best_latent", best);
  sums.best_latent = checksum_of(best.values);

  f.create_group("/config");
  std::vector<std::string> keys;
  for (const auto& [key, value] : c.config) {
    f.write_attribute("/config", key, value);
    keys.push_back(key);
  }
  f.write_attribute("/config", "keys", join_names(keys));
  f.write_attribute("/", "checksum", header_checksum(c, sums, kCheckpointVersion));
  f.close(midway);
}

namespace {

/// Refuses a file that is not an astroclear checkpoint of a format version this build reads;
/// returns the version.
std::int64_t check_format(Hdf5File& f, const std::string& path) {
  std::string format;
  try {
    format = f.read_string_attribute("/", "format");
  } catch (const Error&) {
    throw Error(path + ": not an astroclear checkpoint (no 'format' attribute)");
  }
  if (format != kCheckpointFormat) {
    throw Error(path + ": format '" + format + "' is not an astroclear checkpoint ('" + kCheckpointFormat + "')");
  }
  const std::int64_t version = f.read_int_attribute("/", "format_version");
  if (version < 1 || version > kCheckpointVersion) {
    throw Error(path + ": checkpoint format version " + std::to_string(version) + "; this astroclear reads versions 1-" +
                std::to_string(kCheckpointVersion));
  }
  return version;
}

/// Version 2: the held-out exposures and the held-out record.
void read_validation(Hdf5File& f, const std::string& path, Checkpoint& c, DatasetSums& sums) {
  c.held_out = read_checked<std::uint64_t>(f, "/inputs/held_out", sums.held_out);
  for (std::uint64_t t : c.held_out) {
    if (t >= c.inputs.size()) throw Error(path + ": /inputs/held_out names exposure " + std::to_string(t) + " of " +
                                          std::to_string(c.inputs.size()) + "; the file is corrupt");
  }
  auto& v = c.validation;
  v.iterations = read_checked<std::uint64_t>(f, "/validation/iterations", sums.validation_iterations);
  v.losses = read_checked<double>(f, "/validation/losses", sums.validation_losses);
  if (v.iterations.size() != v.losses.size()) {
    throw Error(path + ": /validation/iterations and /validation/losses differ in length; the file is corrupt");
  }
  v.best_latent = read_array(f, "/validation/best_latent", sums.best_latent);
  if (element_count(v.best_latent.shape) == 0) v.best_latent = FloatArray{};
}

/// /inputs: the exposures' files, PSFs and checksums, and the stack's shape and flux unit.
void read_inputs(Hdf5File& f, const std::string& path, Checkpoint& c) {
  const auto files = f.read_strings("/inputs/files");
  const auto psfs = f.read_strings("/inputs/psfs");
  const auto input_sums = f.read_uint64s("/inputs/checksums");
  if (files.size() != psfs.size() || files.size() != input_sums.size()) {
    throw Error(path + ": /inputs/files, /inputs/psfs and /inputs/checksums differ in length; the file is corrupt");
  }
  for (std::size_t t = 0; t < files.size(); ++t) c.inputs.push_back({files[t], psfs[t], input_sums[t]});
  c.manifest = f.read_string_attribute("/inputs", "manifest");
  c.height = f.read_int_attribute("/inputs", "height");
  c.width = f.read_int_attribute("/inputs", "width");
  c.flux_unit = f.read_double_attribute("/inputs", "flux_unit");
}

/// /parameters and /adam: every tensor with its moments, each checked against its checksum and
/// the parameter's shape; their checksums are added to `sums` in writing order.
void read_tensors(Hdf5File& f, const std::string& path, Checkpoint& c, DatasetSums& sums) {
  for (const std::string& name : split_names(f.read_string_attribute("/parameters", "names"))) {
    CheckpointTensor t;
    t.name = name;
    std::uint64_t sum = 0;
    t.value = read_array(f, "/parameters/" + name, sum);
    sums.tensors.push_back(sum);
    t.sharded = f.read_int_attribute("/parameters/" + name, "sharded") != 0;
    t.adam_step = f.read_int_attribute("/parameters/" + name, "adam_step");
    c.tensors.push_back(std::move(t));
  }
  for (auto& t : c.tensors) {
    std::uint64_t sum = 0;
    t.exp_avg = read_array(f, "/adam/exp_avg/" + t.name, sum);
    sums.tensors.push_back(sum);
    t.exp_avg_sq = read_array(f, "/adam/exp_avg_sq/" + t.name, sum);
    sums.tensors.push_back(sum);
    const auto count = static_cast<std::size_t>(element_count(t.value.shape));
    if (t.exp_avg.values.size() != count || t.exp_avg_sq.values.size() != count) {
      throw Error(path + ": Adam moments of " + t.name + " do not have the parameter's shape; the file is corrupt");
    }
    const auto fitted = static_cast<std::int64_t>(c.inputs.size() - c.held_out.size());
    if (t.sharded && (t.value.shape.empty() || t.value.shape[0] != fitted)) {
      throw Error(path + ": /parameters/" + t.name + " is not indexed by the " + std::to_string(fitted) +
                  " fitted exposures; the file is corrupt");
    }
  }
}

}  // namespace

Checkpoint read_checkpoint_file(const std::string& path, bool with_latent) {
  Hdf5File f = Hdf5File::open(path);
  const std::int64_t version = check_format(f, path);
  Checkpoint c;
  c.format_version = version;
  DatasetSums sums;
  c.iteration = f.read_int_attribute("/", "iteration");
  c.ranks = f.read_int_attribute("/", "ranks");
  c.created_utc = f.read_string_attribute("/", "created_utc");
  c.software_version = f.read_string_attribute("/", "astroclear_version");
  for (const std::string& key : split_names(f.read_string_attribute("/config", "keys"))) {
    c.config.emplace_back(key, f.read_string_attribute("/config", key));
  }
  read_inputs(f, path, c);
  if (version >= 2) read_validation(f, path, c, sums);

  c.loss_history = f.read_doubles("/loss_history");
  sums.loss_history = f.read_uint64_attribute("/loss_history", "checksum");
  if (checksum_of(c.loss_history) != sums.loss_history) {
    throw Error(path + ": dataset /loss_history: checksum does not match its values; the file is corrupt");
  }
  read_tensors(f, path, c, sums);
  // Every stored checksum is verified: the latent image is read and checked even when the caller
  // does not keep it (a resume recomputes it from the parameters; inspect only describes it).
  c.latent = read_array(f, "/latent", sums.latent);
  if (!with_latent) c.latent = FloatArray{};
  const std::uint64_t stored = f.read_uint64_attribute("/", "checksum");
  const std::uint64_t computed = header_checksum(c, sums, version);
  if (stored != computed) {
    throw Error(path + ": header checksum " + checksum_text(computed) + " does not match the stored " +
                checksum_text(stored) + "; an attribute is corrupt");
  }
  if (static_cast<std::int64_t>(c.loss_history.size()) != c.iteration) {
    throw Error(path + ": " + std::to_string(c.loss_history.size()) + " losses for iteration " +
                std::to_string(c.iteration) + "; the file is inconsistent");
  }
  return c;
}

std::string describe_checkpoint(const Checkpoint& c) {
  std::ostringstream out;
  out << "format      " << kCheckpointFormat << " v" << c.format_version << ", written by astroclear "
      << c.software_version << " on " << c.created_utc << " UTC\n";
  out << "iteration   " << c.iteration << "\n";
  out << "loss        " << (c.loss_history.empty() ? std::string("(none yet)") : std::to_string(c.loss_history.back()))
      << "\n";
  out << "ranks       " << c.ranks << "\n";
  out << "config     ";
  for (const auto& [key, value] : c.config) out << " " << key << "=" << value;
  out << "\n";
  out << "inputs      " << c.inputs.size() << " exposures of " << c.width << "x" << c.height << " px from "
      << c.manifest << ", flux unit " << c.flux_unit << "\n";
  for (std::size_t t = 0; t < c.inputs.size(); ++t) {
    char line[64];
    std::snprintf(line, sizeof(line), "  %03zu  ", t);
    const bool held_out = std::find(c.held_out.begin(), c.held_out.end(), t) != c.held_out.end();
    out << line << checksum_text(c.inputs[t].checksum) << "  " << c.inputs[t].file << "  psf " << c.inputs[t].psf
        << (held_out ? "  (held out)" : "") << "\n";
  }
  const auto& v = c.validation;
  if (!c.held_out.empty()) {
    out << "held out    " << c.held_out.size() << " exposures; ";
    if (v.losses.empty()) {
      out << "no held-out loss recorded yet\n";
    } else {
      const auto best = std::min_element(v.losses.begin(), v.losses.end()) - v.losses.begin();
      out << "held-out loss " << v.losses.back() << " at iteration " << v.iterations.back() << ", lowest "
          << v.losses[best] << " at iteration " << v.iterations[best] << " (" << v.losses.size() << " scored)\n";
    }
  }
  std::int64_t values = 0;
  for (const auto& t : c.tensors) values += static_cast<std::int64_t>(t.value.values.size());
  out << "parameters  " << c.tensors.size() << " tensors, " << values << " values";
  return out.str();
}

}  // namespace astroclear::io
