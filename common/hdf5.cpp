#include "common/hdf5.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "common/error.h"
#include "common/text.h"

namespace sdm::h5 {
namespace {

herr_t collect_frame(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* messages = static_cast<std::vector<std::string>*>(data);
  if (err->desc && *err->desc) messages->emplace_back(err->desc);
  return 0;
}

}  // namespace

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    // Debian ships the LZF filter (h5py's, used by anndata 0.7 files) as a plugin outside HDF5's default path.
    // Debian's liblzf_filter.so does not link liblzf (dlopen fails on "undefined symbol: lzf_decompress"):
    // making liblzf's symbols global first lets the plugin load.
    dlopen("liblzf.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!std::getenv("HDF5_PLUGIN_PATH")) {
      for (const char* dir : {"/usr/lib/x86_64-linux-gnu/hdf5/openmpi/plugins", "/usr/lib/aarch64-linux-gnu/hdf5/openmpi/plugins",
                              "/usr/lib/x86_64-linux-gnu/hdf5/plugins"})
        if (std::filesystem::is_directory(dir)) H5PLappend(dir);
    }
  });
}

std::string take_error_stack() {
  std::vector<std::string> messages;
  // Upward: the most specific reason first, the API call last.
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_frame, &messages);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (const auto& m : messages) {
    if (out.find(m) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += m;
  }
  return out.empty() ? "no reason given by HDF5" : out;
}

hid_t check(hid_t status, const std::string& file, const std::string& object, const std::string& what) {
  if (status < 0) throw IoError({file, object, ""}, what + ": " + take_error_stack());
  return status;
}

std::uint64_t max_read_bytes() {
  static const std::uint64_t limit = [] {
    if (const char* mb = std::getenv("SDM_MAX_READ_MB"); mb && *mb) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(mb, &end, 10);
      if (end && *end == '\0' && v > 0) return static_cast<std::uint64_t>(v) << 20;
      throw ConfigError({"<env>", "SDM_MAX_READ_MB", mb}, "expected a positive whole number of MiB");
    }
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
                                 : std::uint64_t{1} << 40;
  }();
  return limit;
}

hsize_t element_count(hid_t space) {
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  return n < 0 ? 0 : static_cast<hsize_t>(n);
}

std::size_t checked_elements(std::uint64_t n, std::uint64_t element_bytes, const std::string& file,
                             const std::string& object) {
  const std::uint64_t limit = max_read_bytes();
  if (element_bytes != 0 && n > limit / element_bytes) {
    throw IoError({file, object, std::to_string(n) + " elements"},
                  "the file claims " + human_bytes(static_cast<double>(n) * static_cast<double>(element_bytes)) +
                      ", more than one read may allocate (" + human_bytes(static_cast<double>(limit)) +
                      ": physical memory, or SDM_MAX_READ_MB) — a corrupt header?");
  }
  return static_cast<std::size_t>(n);
}

TypeId utf8_string_type() {
  TypeId t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

std::vector<std::string> split_fixed_strings(const std::vector<char>& buf, std::size_t width, std::size_t n,
                                             bool space_padded) {
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const char* s = buf.data() + i * width;
    std::size_t len = 0;
    while (len < width && s[len] != '\0') ++len;
    if (space_padded)
      while (len > 0 && s[len - 1] == ' ') --len;
    out.emplace_back(s, len);
  }
  return out;
}

template <>
hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <>
hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <>
hid_t native_type<std::int8_t>() { return H5T_NATIVE_INT8; }
template <>
hid_t native_type<std::uint8_t>() { return H5T_NATIVE_UINT8; }
template <>
hid_t native_type<std::int16_t>() { return H5T_NATIVE_INT16; }
template <>
hid_t native_type<std::uint16_t>() { return H5T_NATIVE_UINT16; }
template <>
hid_t native_type<std::int32_t>() { return H5T_NATIVE_INT32; }
template <>
hid_t native_type<std::uint32_t>() { return H5T_NATIVE_UINT32; }
template <>
hid_t native_type<std::int64_t>() { return H5T_NATIVE_INT64; }
template <>
hid_t native_type<std::uint64_t>() { return H5T_NATIVE_UINT64; }

PlistId reproducible_dataset_plist() {
  PlistId p(check(H5Pcreate(H5P_DATASET_CREATE), "", "", "H5Pcreate"));
  H5Pset_obj_track_times(p.get(), false);
  return p;
}

PlistId reproducible_group_plist() {
  PlistId p(check(H5Pcreate(H5P_GROUP_CREATE), "", "", "H5Pcreate"));
  H5Pset_obj_track_times(p.get(), false);
  return p;
}

// ---------------------------------------------------------------------------------------------------
std::string Location::object_path(const std::string& path) const {
  if (path.empty() || path[0] == '/') return path;
  return name_ == "/" ? "/" + path : name_ + "/" + path;
}

bool Location::exists(const std::string& path) const {
  // H5Lexists fails (rather than returning false) when a parent is missing, so walk component by component.
  std::string prefix;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix += prefix.empty() ? part : "/" + part;
      const htri_t ok = H5Lexists(id_, prefix.c_str(), H5P_DEFAULT);
      if (ok <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

Group Location::open_group(const std::string& path) const {
  GroupId g(check(H5Gopen2(id_, path.c_str(), H5P_DEFAULT), file_, object_path(path), "cannot open group"));
  return Group(std::move(g), file_, object_path(path));
}

Object Location::open_object(const std::string& path) const {
  ObjectId o(check(H5Oopen(id_, path.c_str(), H5P_DEFAULT), file_, object_path(path), "cannot open object"));
  return Object(std::move(o), file_, object_path(path));
}

Group Location::create_group(const std::string& path) const {
  if (exists(path)) return open_group(path);
  PlistId lcpl(check(H5Pcreate(H5P_LINK_CREATE), file_, path, "H5Pcreate"));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  auto gcpl = reproducible_group_plist();
  GroupId g(check(H5Gcreate2(id_, path.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT), file_, object_path(path),
                  "cannot create group"));
  return Group(std::move(g), file_, object_path(path));
}

namespace {

DatasetId create_dataset(const Location& loc, const std::string& path, hid_t file_type, const std::vector<hsize_t>& dims) {
  SpaceId space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), loc.file(), path,
                      "H5Screate_simple"));
  PlistId lcpl(check(H5Pcreate(H5P_LINK_CREATE), loc.file(), path, "H5Pcreate"));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  auto dcpl = reproducible_dataset_plist();
  return DatasetId(check(H5Dcreate2(loc.id(), path.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                         loc.file(), path, "cannot create dataset"));
}

}  // namespace

template <class T>
void Location::write(const std::string& path, std::span<const T> values) const {
  write(path, values, {static_cast<hsize_t>(values.size())});
}

template <class T>
void Location::write(const std::string& path, std::span<const T> values, const std::vector<hsize_t>& dims) const {
  hsize_t n = 1;
  for (auto d : dims) n *= d;
  if (n != values.size()) {
    throw IoError({file_, object_path(path), std::to_string(values.size())}, "values do not fill the dataset's shape");
  }
  auto ds = create_dataset(*this, path, native_type<T>(), dims);
  if (n > 0) {
    check(H5Dwrite(ds.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), file_,
          object_path(path), "cannot write dataset");
  }
}

template <class T>
std::vector<T> Location::read(const std::string& path) const {
  DatasetId ds(check(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), file_, object_path(path), "cannot open dataset"));
  SpaceId space(check(H5Dget_space(ds.get()), file_, object_path(path), "H5Dget_space"));
  std::vector<T> out(checked_elements(element_count(space.get()), sizeof(T), file_, object_path(path)));
  if (!out.empty())
    check(H5Dread(ds.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), file_, object_path(path),
          "cannot read dataset");
  return out;
}

#define SDM_H5_INSTANTIATE(T)                                                                \
  template void Location::write<T>(const std::string&, std::span<const T>) const;           \
  template void Location::write<T>(const std::string&, std::span<const T>, const std::vector<hsize_t>&) const; \
  template std::vector<T> Location::read<T>(const std::string&) const;
SDM_H5_INSTANTIATE(float)
SDM_H5_INSTANTIATE(double)
SDM_H5_INSTANTIATE(std::int8_t)
SDM_H5_INSTANTIATE(std::uint8_t)
SDM_H5_INSTANTIATE(std::int16_t)
SDM_H5_INSTANTIATE(std::uint16_t)
SDM_H5_INSTANTIATE(std::int32_t)
SDM_H5_INSTANTIATE(std::uint32_t)
SDM_H5_INSTANTIATE(std::int64_t)
SDM_H5_INSTANTIATE(std::uint64_t)
#undef SDM_H5_INSTANTIATE

void Location::write_strings(const std::string& path, const std::vector<std::string>& values) const {
  auto type = utf8_string_type();
  auto ds = create_dataset(*this, path, type.get(), {static_cast<hsize_t>(values.size())});
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), file_, object_path(path),
        "cannot write strings");
}

std::vector<std::string> Location::read_strings(const std::string& path) const {
  const std::string where = object_path(path);
  DatasetId ds(check(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), file_, where, "cannot open dataset"));
  TypeId ftype(check(H5Dget_type(ds.get()), file_, where, "H5Dget_type"));
  if (H5Tget_class(ftype.get()) != H5T_STRING) throw IoError({file_, where, ""}, "expected a string dataset");
  SpaceId space(check(H5Dget_space(ds.get()), file_, where, "H5Dget_space"));
  const std::size_t width = H5Tget_size(ftype.get());
  const std::size_t n = checked_elements(element_count(space.get()), std::max(width, sizeof(std::string)), file_, where);
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(ftype.get()) > 0) {
    auto mtype = utf8_string_type();
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    std::vector<char*> ptrs(n, nullptr);
    if (n) check(H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), file_, where,
                 "cannot read strings");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n) H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    std::vector<char> buf(n * width);
    if (n) check(H5Dread(ds.get(), ftype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file_, where,
                 "cannot read strings");
    out = split_fixed_strings(buf, width, n, H5Tget_strpad(ftype.get()) == H5T_STR_SPACEPAD);
  }
  return out;
}

std::vector<hsize_t> Location::shape(const std::string& path) const {
  const std::string where = object_path(path);
  DatasetId ds(check(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), file_, where, "cannot open dataset"));
  SpaceId space(check(H5Dget_space(ds.get()), file_, where, "H5Dget_space"));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

// --- attributes --------------------------------------------------------------------------------------
namespace {

void write_attr(const Location& loc, const std::string& name, hid_t type, const void* value) {
  if (H5Aexists(loc.id(), name.c_str()) > 0) H5Adelete(loc.id(), name.c_str());
  SpaceId space(check(H5Screate(H5S_SCALAR), loc.file(), name, "H5Screate"));
  AttrId a(check(H5Acreate2(loc.id(), name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), loc.file(),
                 loc.name() + "@" + name, "cannot create attribute"));
  check(H5Awrite(a.get(), type, value), loc.file(), loc.name() + "@" + name, "cannot write attribute");
}

AttrId open_attr(const Location& loc, const std::string& name) {
  return AttrId(check(H5Aopen(loc.id(), name.c_str(), H5P_DEFAULT), loc.file(), loc.name() + "@" + name,
                      "cannot open attribute"));
}

}  // namespace

void Location::set_attr(const std::string& name, const std::string& value) const {
  auto type = utf8_string_type();
  const char* p = value.c_str();
  write_attr(*this, name, type.get(), &p);
}
void Location::set_attr(const std::string& name, std::int64_t value) const {
  write_attr(*this, name, H5T_NATIVE_INT64, &value);
}
void Location::set_attr(const std::string& name, double value) const {
  write_attr(*this, name, H5T_NATIVE_DOUBLE, &value);
}

bool Location::has_attr(const std::string& name) const { return H5Aexists(id_, name.c_str()) > 0; }

std::string Location::attr_string(const std::string& name) const { return attr_string(".", name); }

std::int64_t Location::attr_int(const std::string& name) const {
  auto a = open_attr(*this, name);
  std::int64_t v = 0;
  check(H5Aread(a.get(), H5T_NATIVE_INT64, &v), file_, name_ + "@" + name, "cannot read attribute");
  return v;
}

double Location::attr_double(const std::string& name) const {
  auto a = open_attr(*this, name);
  double v = 0;
  check(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v), file_, name_ + "@" + name, "cannot read attribute");
  return v;
}

// --- groups and files --------------------------------------------------------------------------------
Group::Group(GroupId id, std::string file, std::string name)
    : Location(id.get(), std::move(file), std::move(name)), owned_(std::move(id)) {}

Object::Object(ObjectId id, std::string file, std::string name)
    : Location(id.get(), std::move(file), std::move(name)), owned_(std::move(id)) {}

File::File(FileId id, const std::string& path) : Location(id.get(), path, "/"), owned_(std::move(id)) {}

File File::open(const std::string& path, bool writable, hid_t fapl) {
  init();
  if (!std::filesystem::exists(path)) throw IoError({path, "", ""}, "no such file");
#if H5_VERSION_GE(1, 12, 0)
  const htri_t is_hdf5 = H5Fis_accessible(path.c_str(), fapl);
#else
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
#endif
  if (is_hdf5 <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IoError({path, "", ""}, "not an HDF5 file (no HDF5 signature found; truncated or another format?)");
  }
  FileId f(check(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl), path, "",
                 "cannot open HDF5 file"));
  return File(std::move(f), path);
}

File File::create(const std::string& path, hid_t fapl) {
  init();
  PlistId fcpl(check(H5Pcreate(H5P_FILE_CREATE), path, "", "H5Pcreate"));
  H5Pset_obj_track_times(fcpl.get(), false);  // the root group's header, too
  FileId f(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl), path, "", "cannot create HDF5 file"));
  return File(std::move(f), path);
}

void File::flush() const { check(H5Fflush(id(), H5F_SCOPE_GLOBAL), file(), "", "cannot flush"); }

void File::close() {
  if (!owned_) return;
  const hid_t id = owned_.release();
  check(H5Fclose(id), file(), "", "cannot close");
}

}  // namespace sdm::h5
