// Hdf5File over the HDF5 C API; every call goes through check(), which throws Error.
#include "io/hdf5_file.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "io/file_tree.hpp"

namespace astroclear::io {
namespace {

static_assert(std::is_same_v<hid_t, std::int64_t>, "HDF5 >= 1.10 keeps hid_t in an int64_t");

/// The innermost message of HDF5's error stack ("truncated file: eof = ...").
std::string hdf5_message() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD,
           [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
             auto* text = static_cast<std::string*>(out);
             if (e->desc != nullptr && e->desc[0] != '\0') *text = e->desc;  // the last one is the innermost
             (void)n;
             return 0;
           },
           &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "unknown HDF5 error" : message;
}

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) throw Error(what + " failed: " + hdf5_message());
  return id;
}

/// Owner of one temporary HDF5 identifier.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Id(Id&& other) noexcept : id_(std::exchange(other.id_, -1)), close_(other.close_) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id& operator=(Id&&) = delete;
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void silence_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Id simple_space(const std::vector<std::int64_t>& shape, const std::string& where) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Id(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where + ": H5Screate_simple"),
            H5Sclose);
}

/// Creates `dataset` (and its missing parent groups) of `type` and `shape`, and writes `data`.
void write_dataset(hid_t file, const std::string& where, const std::string& dataset, hid_t file_type, hid_t memory_type,
                   const std::vector<std::int64_t>& shape, const void* data) {
  Id links(check(H5Pcreate(H5P_LINK_CREATE), where + ": H5Pcreate"), H5Pclose);
  H5Pset_create_intermediate_group(links, 1);
  Id space = simple_space(shape, where);
  Id set(check(H5Dcreate2(file, dataset.c_str(), file_type, space, links, H5P_DEFAULT, H5P_DEFAULT),
               where + ": creating the dataset"),
         H5Dclose);
  std::int64_t count = 1;
  for (std::int64_t d : shape) count *= d;
  if (count > 0) check(H5Dwrite(set, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where + ": writing the dataset");
}

template <class T>
std::vector<T> read_dataset(hid_t file, const std::string& where, const std::string& dataset, hid_t memory_type) {
  Id set(check(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), where + ": opening the dataset"), H5Dclose);
  Id space(check(H5Dget_space(set), where + ": H5Dget_space"), H5Sclose);
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  std::vector<T> values(static_cast<std::size_t>(count));
  if (count > 0) check(H5Dread(set, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), where + ": reading the dataset");
  return values;
}

void write_scalar_attribute(hid_t file, const std::string& where, const std::string& object, const std::string& name,
                            hid_t type, const void* value) {
  Id target(check(H5Oopen(file, object.c_str(), H5P_DEFAULT), where + ": opening the object"), H5Oclose);
  Id space(check(H5Screate(H5S_SCALAR), where + ": H5Screate"), H5Sclose);
  Id attribute(check(H5Acreate2(target, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                     where + ": creating attribute " + name),
               H5Aclose);
  check(H5Awrite(attribute, type, value), where + ": writing attribute " + name);
}

void read_scalar_attribute(hid_t file, const std::string& where, const std::string& object, const std::string& name,
                           hid_t type, void* value) {
  Id attribute(check(H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
                     where + ": attribute " + name),
               H5Aclose);
  check(H5Aread(attribute, type, value), where + ": reading attribute " + name);
}

/// A fixed-length, NUL-terminated string type holding `length` characters.
Id string_type(std::size_t length) {
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, length + 1);
  H5Tset_strpad(type, H5T_STR_NULLTERM);
  return type;
}

}  // namespace

// Note [in-memory HDF5 writes]: a file is created with HDF5's core driver, without a backing
// store, and close() writes the finished image with plain POSIX calls. When HDF5 itself writes to
// a disk that fills up, H5Fclose fails, the file stays open inside the library, and HDF5's own
// shutdown then crashes while closing it again (a segmentation fault after "No space left on
// device"). Built in memory, the file cannot fail to close, and a full disk is an ordinary write
// error: the message names the file and the reason, the partial file is removed, and the process
// exits cleanly. A checkpoint is at most a few latent images, so the copy in memory is small beside
// the training's own.
Hdf5File Hdf5File::create(const std::string& path) {
  silence_hdf5();
  Id access(check(H5Pcreate(H5P_FILE_ACCESS), path + ": H5Pcreate"), H5Pclose);
  check(H5Pset_fapl_core(access, 16 << 20, /*backing_store=*/0), path + ": H5Pset_fapl_core");
  return Hdf5File(path,
                  check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access), path + ": creating the HDF5 file"),
                  /*in_memory=*/true);
}

Hdf5File Hdf5File::open(const std::string& path) {
  silence_hdf5();
  return Hdf5File(path, check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": opening the HDF5 file"));
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept
    : path_(std::move(other.path_)), id_(std::exchange(other.id_, -1)), in_memory_(other.in_memory_) {}

Hdf5File& Hdf5File::operator=(Hdf5File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) H5Fclose(id_);
    path_ = std::move(other.path_);
    id_ = std::exchange(other.id_, -1);
    in_memory_ = other.in_memory_;
  }
  return *this;
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0 && H5Fclose(id_) < 0) std::fprintf(stderr, "astroclear: closing %s failed\n", path_.c_str());
}

void Hdf5File::close(const std::function<void()>& midway) {
  if (id_ < 0) return;
  if (!in_memory_) {
    check(H5Fclose(std::exchange(id_, -1)), path_ + ": closing");
    return;
  }
  // Note [in-memory HDF5 writes]
  std::vector<char> image;
  {
    const hid_t id = std::exchange(id_, -1);
    struct Closer {
      hid_t id;
      ~Closer() { H5Fclose(id); }  // in memory: nothing to flush, so this cannot fail on a full disk
    } closer{id};
    check(H5Fflush(id, H5F_SCOPE_LOCAL), path_ + ": finishing the file in memory");
    const ssize_t size = check(H5Fget_file_image(id, nullptr, 0), path_ + ": sizing the file image");
    image.resize(static_cast<std::size_t>(size));
    check(H5Fget_file_image(id, image.data(), image.size()), path_ + ": copying the file image");
  }
  write_file_durably(path_, image, midway);
}

void Hdf5File::create_group(const std::string& group) {
  Id links(check(H5Pcreate(H5P_LINK_CREATE), where(group) + ": H5Pcreate"), H5Pclose);
  H5Pset_create_intermediate_group(links, 1);
  Id(check(H5Gcreate2(id_, group.c_str(), links, H5P_DEFAULT, H5P_DEFAULT), where(group) + ": creating the group"),
     H5Gclose);
}

void Hdf5File::write(const std::string& dataset, const std::vector<std::int64_t>& shape,
                     const std::vector<float>& values) {
  write_dataset(id_, where(dataset), dataset, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, shape, values.data());
}

void Hdf5File::write(const std::string& dataset, const std::vector<double>& values) {
  write_dataset(id_, where(dataset), dataset, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                {static_cast<std::int64_t>(values.size())}, values.data());
}

void Hdf5File::write(const std::string& dataset, const std::vector<std::uint64_t>& values) {
  write_dataset(id_, where(dataset), dataset, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                {static_cast<std::int64_t>(values.size())}, values.data());
}

void Hdf5File::write(const std::string& dataset, const std::vector<std::string>& values) {
  std::size_t length = 1;
  for (const auto& v : values) length = std::max(length, v.size());
  std::vector<char> packed(values.size() * (length + 1), '\0');
  for (std::size_t i = 0; i < values.size(); ++i) values[i].copy(&packed[i * (length + 1)], values[i].size());
  Id type = string_type(length);
  write_dataset(id_, where(dataset), dataset, type, type, {static_cast<std::int64_t>(values.size())}, packed.data());
}

std::vector<std::int64_t> Hdf5File::shape(const std::string& dataset) {
  Id set(check(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT), where(dataset) + ": opening the dataset"), H5Dclose);
  Id space(check(H5Dget_space(set), where(dataset) + ": H5Dget_space"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return std::vector<std::int64_t>(dims.begin(), dims.end());
}

std::vector<float> Hdf5File::read_floats(const std::string& dataset) {
  return read_dataset<float>(id_, where(dataset), dataset, H5T_NATIVE_FLOAT);
}

std::vector<double> Hdf5File::read_doubles(const std::string& dataset) {
  return read_dataset<double>(id_, where(dataset), dataset, H5T_NATIVE_DOUBLE);
}

std::vector<std::uint64_t> Hdf5File::read_uint64s(const std::string& dataset) {
  return read_dataset<std::uint64_t>(id_, where(dataset), dataset, H5T_NATIVE_UINT64);
}

std::vector<std::string> Hdf5File::read_strings(const std::string& dataset) {
  Id set(check(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT), where(dataset) + ": opening the dataset"), H5Dclose);
  Id file_type(check(H5Dget_type(set), where(dataset) + ": H5Dget_type"), H5Tclose);
  if (H5Tget_class(file_type) != H5T_STRING || H5Tis_variable_str(file_type) > 0) {
    throw Error(where(dataset) + ": expected fixed-length strings");
  }
  const std::size_t size = H5Tget_size(file_type);
  Id space(check(H5Dget_space(set), where(dataset) + ": H5Dget_space"), H5Sclose);
  const auto count = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
  Id type = string_type(size - 1);
  std::vector<char> packed(count * size + 1, '\0');
  if (count > 0) check(H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()), where(dataset) + ": reading");
  std::vector<std::string> values;
  for (std::size_t i = 0; i < count; ++i) values.emplace_back(&packed[i * size], strnlen(&packed[i * size], size));
  return values;
}

void Hdf5File::write_attribute(const std::string& object, const std::string& name, const std::string& value) {
  Id type = string_type(value.size());
  write_scalar_attribute(id_, where(object), object, name, type, value.c_str());
}

void Hdf5File::write_attribute(const std::string& object, const std::string& name, std::int64_t value) {
  write_scalar_attribute(id_, where(object), object, name, H5T_NATIVE_INT64, &value);
}

void Hdf5File::write_attribute(const std::string& object, const std::string& name, std::uint64_t value) {
  write_scalar_attribute(id_, where(object), object, name, H5T_NATIVE_UINT64, &value);
}

void Hdf5File::write_attribute(const std::string& object, const std::string& name, double value) {
  write_scalar_attribute(id_, where(object), object, name, H5T_NATIVE_DOUBLE, &value);
}

std::string Hdf5File::read_string_attribute(const std::string& object, const std::string& name) {
  Id attribute(check(H5Aopen_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
                     where(object) + ": attribute " + name),
               H5Aclose);
  Id file_type(check(H5Aget_type(attribute), where(object) + ": type of attribute " + name), H5Tclose);
  if (H5Tget_class(file_type) != H5T_STRING || H5Tis_variable_str(file_type) > 0) {
    throw Error(where(object) + ": attribute " + name + " is not a fixed-length string");
  }
  const std::size_t size = H5Tget_size(file_type);
  Id type = string_type(size - 1);
  std::vector<char> text(size + 1, '\0');
  check(H5Aread(attribute, type, text.data()), where(object) + ": reading attribute " + name);
  return std::string(text.data(), strnlen(text.data(), size));
}

std::int64_t Hdf5File::read_int_attribute(const std::string& object, const std::string& name) {
  std::int64_t value = 0;
  read_scalar_attribute(id_, where(object), object, name, H5T_NATIVE_INT64, &value);
  return value;
}

std::uint64_t Hdf5File::read_uint64_attribute(const std::string& object, const std::string& name) {
  std::uint64_t value = 0;
  read_scalar_attribute(id_, where(object), object, name, H5T_NATIVE_UINT64, &value);
  return value;
}

double Hdf5File::read_double_attribute(const std::string& object, const std::string& name) {
  double value = 0;
  read_scalar_attribute(id_, where(object), object, name, H5T_NATIVE_DOUBLE, &value);
  return value;
}

}  // namespace astroclear::io
