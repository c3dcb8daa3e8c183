// Hdf5File: the one owner of an HDF5 file handle, with typed reads and writes of datasets and attributes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace astroclear::io {

/// Move-only owner of an open HDF5 file (only io/ sees hid_t). Paths are HDF5 paths ("/adam/step");
/// groups are created on the way. Every failure throws Error naming the file, the object and the
/// innermost HDF5 message; HDF5's own error printing is switched off.
class Hdf5File {
 public:
  /// Creates a new file, built in memory and written to `path` by close() (Note [in-memory HDF5
  /// writes]); close() fails if `path` exists by then.
  static Hdf5File create(const std::string& path);
  /// Opens an existing file read-only.
  static Hdf5File open(const std::string& path);

  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&& other) noexcept;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;
  ~Hdf5File();

  const std::string& path() const { return path_; }

  /// Creates a group (and its missing parents).
  void create_group(const std::string& group);
  void write(const std::string& dataset, const std::vector<std::int64_t>& shape, const std::vector<float>& values);
  void write(const std::string& dataset, const std::vector<double>& values);
  void write(const std::string& dataset, const std::vector<std::uint64_t>& values);
  void write(const std::string& dataset, const std::vector<std::string>& values);

  /// Shape of a dataset; throws when it does not exist.
  std::vector<std::int64_t> shape(const std::string& dataset);
  std::vector<float> read_floats(const std::string& dataset);
  std::vector<double> read_doubles(const std::string& dataset);
  std::vector<std::uint64_t> read_uint64s(const std::string& dataset);
  std::vector<std::string> read_strings(const std::string& dataset);

  /// Scalar attributes of a group or dataset ("/" is the root group).
  void write_attribute(const std::string& object, const std::string& name, const std::string& value);
  void write_attribute(const std::string& object, const std::string& name, std::int64_t value);
  void write_attribute(const std::string& object, const std::string& name, std::uint64_t value);
  void write_attribute(const std::string& object, const std::string& name, double value);
  std::string read_string_attribute(const std::string& object, const std::string& name);
  std::int64_t read_int_attribute(const std::string& object, const std::string& name);
  std::uint64_t read_uint64_attribute(const std::string& object, const std::string& name);
  double read_double_attribute(const std::string& object, const std::string& name);

  /// Closes; a created file is then written to its path and synced to disk. Errors throw, naming
  /// the file and the reason ("No space left on device"), and leave no file behind (the
  /// destructor only logs). `midway` (tests only) runs when half of a created file is on disk.
  void close(const std::function<void()>& midway = {});

 private:
  Hdf5File(std::string path, std::int64_t id, bool in_memory = false)
      : path_(std::move(path)), id_(id), in_memory_(in_memory) {}
  std::string where(const std::string& object) const { return path_ + ":" + object; }

  std::string path_;
  std::int64_t id_ = -1;  ///< hid_t
  bool in_memory_ = false;  ///< created: the core driver holds it until close() writes it
};

}  // namespace astroclear::io
