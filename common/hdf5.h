#pragma once
// RAII over the HDF5 C API. Each identifier is owned by exactly one object and closed by the matching
// H5?close; every failing call becomes an sdm::IoError naming the file, the object and HDF5's own reason.
// This layer never touches MPI: parallel (MPI-IO) file access is set up by the orchestrator, which passes
// a file-access property list in.
#include <hdf5.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sdm::h5 {

/// Owns one HDF5 identifier; closes it with CloseFn. Move-only.
template <herr_t (*CloseFn)(hid_t)>
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& other) noexcept : id_(other.release()) {}
  Id& operator=(Id&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.release();
    }
    return *this;
  }
  ~Id() { reset(); }

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  hid_t release() {
    hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }
  void reset() {
    if (id_ >= 0) CloseFn(id_);  // destructors never throw; a failed close is already on HDF5's stack
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using FileId = Id<H5Fclose>;
using GroupId = Id<H5Gclose>;
using DatasetId = Id<H5Dclose>;
using SpaceId = Id<H5Sclose>;
using TypeId = Id<H5Tclose>;
using PlistId = Id<H5Pclose>;
using AttrId = Id<H5Aclose>;
using ObjectId = Id<H5Oclose>;

/// Silences HDF5's automatic error printing (we turn errors into exceptions instead) and, unless
/// HDF5_PLUGIN_PATH says otherwise, adds Debian's filter-plugin directories (LZF). Idempotent.
void init();

/// The HDF5 error stack as one line ("file signature not found; unable to open file"), then clears it.
std::string take_error_stack();

/// Throws IoError({file, object}, what + HDF5's reason) when `status` is negative; returns it otherwise.
hid_t check(hid_t status, const std::string& file, const std::string& object, const std::string& what);

/// The most bytes one read allocates for an array a file describes: SDM_MAX_READ_MB when set, else this machine's
/// physical memory. A corrupt or hostile header can claim petabytes; the claim is refused before allocating.
std::uint64_t max_read_bytes();

/// Elements in a dataspace (0 for an invalid one).
hsize_t element_count(hid_t space);

/// `n` elements of `element_bytes` each, checked (overflow, max_read_bytes()) before anything is allocated;
/// throws IoError naming the file and object with the claimed size. Returns n.
std::size_t checked_elements(std::uint64_t n, std::uint64_t element_bytes, const std::string& file,
                             const std::string& object);

/// Variable-length UTF-8 string type (what anndata and h5py write).
TypeId utf8_string_type();

/// Strings from `n` fixed-width elements: each ends at its first NUL; space-padded data loses trailing spaces.
std::vector<std::string> split_fixed_strings(const std::vector<char>& buf, std::size_t width, std::size_t n,
                                             bool space_padded);

/// HDF5 in-memory type for a C++ arithmetic type.
template <class T>
hid_t native_type();

/// Object-creation property lists with time tracking off, so identical content gives identical bytes.
PlistId reproducible_dataset_plist();
PlistId reproducible_group_plist();

class Group;
class Object;

/// A file or group: where datasets, groups and attributes live. Paths are relative ("cells/f1").
class Location {
 public:
  hid_t id() const { return id_; }
  const std::string& file() const { return file_; }
  /// Path of this location inside its file ("/" for the root).
  const std::string& name() const { return name_; }

  /// True if every component of `path` exists (link check, no exception for missing parents).
  bool exists(const std::string& path) const;
  Group open_group(const std::string& path) const;
  /// Any object (group or dataset), e.g. to put attributes on a dataset.
  Object open_object(const std::string& path) const;
  /// Creates the group (and missing parents).
  Group create_group(const std::string& path) const;

  template <class T>
  void write(const std::string& path, std::span<const T> values) const;
  /// An n-dimensional dataset (row-major values filling `dims`).
  template <class T>
  void write(const std::string& path, std::span<const T> values, const std::vector<hsize_t>& dims) const;
  template <class T>
  void write(const std::string& path, const std::vector<T>& values) const {
    write(path, std::span<const T>(values));
  }
  /// Reads a whole 1-D (or any rank, flattened) numeric dataset, converting to T.
  template <class T>
  std::vector<T> read(const std::string& path) const;
  /// Variable-length UTF-8 strings.
  void write_strings(const std::string& path, const std::vector<std::string>& values) const;
  std::vector<std::string> read_strings(const std::string& path) const;
  /// Dimensions of a dataset.
  std::vector<hsize_t> shape(const std::string& path) const;
  /// Elements [start, start + count) of a 1-D dataset, converted to T (HDF5 converts any numeric type).
  template <class T>
  std::vector<T> read_range(const std::string& path, hsize_t start, hsize_t count) const;
  /// The same, into caller-provided storage of `count` elements (no intermediate copy).
  template <class T>
  void read_range_into(const std::string& path, hsize_t start, hsize_t count, T* out) const;
  /// Rows [row, row + rows) of a 2-D dataset, flattened row-major and converted to T.
  template <class T>
  std::vector<T> read_rows(const std::string& path, hsize_t row, hsize_t rows) const;

  bool is_group(const std::string& path) const;
  bool is_dataset(const std::string& path) const;
  /// Names of the direct children of a group, in HDF5's (alphabetical) order.
  std::vector<std::string> children(const std::string& path = ".") const;
  /// numpy spelling of a dataset's element type: float32, int64, uint8, bool, str, compound, ...
  std::string dtype_name(const std::string& path) const;
  /// Throws IoError naming the filter when a dataset is compressed with a filter this HDF5 cannot decode.
  void check_filters(const std::string& path) const;

  /// Field names of a compound dataset (legacy anndata <= 0.6 dataframes).
  std::vector<std::string> compound_fields(const std::string& path) const;
  /// One field of a compound dataset: numbers (converted to T) or strings.
  template <class T>
  std::vector<T> read_field(const std::string& path, const std::string& field) const;
  std::vector<std::string> read_field_strings(const std::string& path, const std::string& field) const;
  /// HDF5 class of a compound field: H5T_INTEGER, H5T_FLOAT, H5T_STRING, H5T_ENUM, ...
  H5T_class_t field_class(const std::string& path, const std::string& field) const;

  void set_attr(const std::string& name, const std::string& value) const;
  void set_attr(const std::string& name, std::int64_t value) const;
  void set_attr(const std::string& name, double value) const;
  bool has_attr(const std::string& name) const;
  /// Attributes of a child object ("." = this one): strings (scalar or 1-D, fixed or variable length),
  /// integers (scalar or 1-D). A zero-length attribute of any type reads as an empty list.
  bool has_attr(const std::string& path, const std::string& name) const;
  std::string attr_string(const std::string& path, const std::string& name) const;
  std::vector<std::string> attr_strings(const std::string& path, const std::string& name) const;
  std::vector<std::int64_t> attr_ints(const std::string& path, const std::string& name) const;
  std::string attr_string(const std::string& name) const;
  std::int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;

 protected:
  Location(hid_t id, std::string file, std::string name) : id_(id), file_(std::move(file)), name_(std::move(name)) {}
  std::string object_path(const std::string& path) const;

 private:
  hid_t id_;
  std::string file_;
  std::string name_;
};

class Group : public Location {
 public:
  Group(GroupId id, std::string file, std::string name);

 private:
  GroupId owned_;
};

class Object : public Location {
 public:
  Object(ObjectId id, std::string file, std::string name);

 private:
  ObjectId owned_;
};

class File : public Location {
 public:
  /// Opens an existing file. `fapl` may carry a driver (e.g. MPI-IO); it is not taken over.
  static File open(const std::string& path, bool writable = false, hid_t fapl = H5P_DEFAULT);
  /// Creates (truncating) a file.
  static File create(const std::string& path, hid_t fapl = H5P_DEFAULT);

  void flush() const;
  /// Closes now and reports a failure (a destructor would have to swallow it).
  void close();

 private:
  File(FileId id, const std::string& path);
  FileId owned_;
};

}  // namespace sdm::h5
