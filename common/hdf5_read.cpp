// The reading side of common/hdf5.h that the AnnData/10x/Loom readers need: slices, dtypes, filters,
// compound fields and attributes of any string or integer flavour.
#include <algorithm>
#include <limits>

#include "common/error.h"
#include "common/hdf5.h"
#include "common/hdf5_direct.h"

namespace sdm::h5 {
namespace {


std::string filter_name(H5Z_filter_t id) {
  switch (id) {
    case 1: return "deflate (gzip)";
    case 2: return "shuffle";
    case 3: return "fletcher32";
    case 4: return "szip";
    case 32000: return "lzf";
    case 32001: return "blosc";
    case 32004: return "lz4";
    case 32008: return "bitshuffle";
    case 32015: return "zstd";
    default: return "unknown";
  }
}

/// HDF5 1.10 loads filter plugins only when a read needs them, and H5Zfilter_avail does not trigger that:
/// reading one element makes HDF5 search HDF5_PLUGIN_PATH (and what init() appended) for the plugin.
bool try_plugin_read(hid_t ds) {
  SpaceId space(H5Dget_space(ds));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank <= 0) return false;
  std::vector<hsize_t> start(static_cast<std::size_t>(rank), 0), count(static_cast<std::size_t>(rank), 1);
  if (H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0) return false;
  TypeId ftype(H5Dget_type(ds));
  TypeId mtype(H5Tget_native_type(ftype.get(), H5T_DIR_DEFAULT));
  std::vector<char> one(std::max<std::size_t>(H5Tget_size(mtype.get()), 16) * 2);
  SpaceId mspace(H5Screate_simple(1, count.data(), nullptr));
  const bool ok = H5Dread(ds, mtype.get(), mspace.get(), space.get(), H5P_DEFAULT, one.data()) >= 0;
  if (ok && H5Tis_variable_str(mtype.get()) > 0) H5Dvlen_reclaim(mtype.get(), mspace.get(), H5P_DEFAULT, one.data());
  H5Eclear2(H5E_DEFAULT);
  return ok;
}

}  // namespace

void Location::check_filters(const std::string& path) const {
  const std::string where = object_path(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  PlistId dcpl(check(H5Dget_create_plist(ds.get()), file(), where, "H5Dget_create_plist"));
  const int n = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::size_t nelmts = 0;
    char name[64] = {};
    const H5Z_filter_t f = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nelmts, nullptr, sizeof name, name, nullptr);
    if (f < 0) continue;
    if (H5Zfilter_avail(f) <= 0 && !try_plugin_read(ds.get())) {
      H5Eclear2(H5E_DEFAULT);
      std::string hint = f == 32000 ? "; install Debian's hdf5-plugin-lzf (or set HDF5_PLUGIN_PATH to a directory holding the LZF plugin)"
                                    : "; set HDF5_PLUGIN_PATH to a directory holding that filter's plugin";
      throw IoError({file(), where, ""}, "compressed with HDF5 filter " + std::to_string(f) + " (" + filter_name(f) +
                                             "), which this HDF5 cannot decode" + hint);
    }
  }
}

template <class T>
std::vector<T> Location::read_range(const std::string& path, hsize_t start, hsize_t count) const {
  std::vector<T> out(checked_elements(count, sizeof(T), file(), object_path(path)));
  read_range_into(path, start, count, out.data());
  return out;
}

template <class T>
void Location::read_range_into(const std::string& path, hsize_t start, hsize_t count, T* out) const {
  const std::string where = object_path(path);
  check_filters(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  SpaceId fspace(check(H5Dget_space(ds.get()), file(), where, "H5Dget_space"));
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(fspace.get()) != 1) throw IoError({file(), where, ""}, "expected a 1-D dataset");
  H5Sget_simple_extent_dims(fspace.get(), &n, nullptr);
  if (start > n || count > n - start)
    throw IoError({file(), where, ""}, "range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                                           ") outside the dataset's " + std::to_string(n) + " elements (truncated or inconsistent file?)");
  if (count == 0) return;
  if (const FileId owner(H5Iget_file_id(ds.get()));
      owner.get() >= 0 && read_range_direct(owner.get(), ds.get(), native_type<T>(), sizeof(T), start, count, out, file(), where))
    return;
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  SpaceId mspace(H5Screate_simple(1, &count, nullptr));
  check(H5Dread(ds.get(), native_type<T>(), mspace.get(), fspace.get(), H5P_DEFAULT, out), file(), where, "cannot read");
}

template <class T>
std::vector<T> Location::read_rows(const std::string& path, hsize_t row, hsize_t rows) const {
  const std::string where = object_path(path);
  check_filters(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  SpaceId fspace(check(H5Dget_space(ds.get()), file(), where, "H5Dget_space"));
  if (H5Sget_simple_extent_ndims(fspace.get()) != 2) throw IoError({file(), where, ""}, "expected a 2-D dataset");
  hsize_t dims[2];
  H5Sget_simple_extent_dims(fspace.get(), dims, nullptr);
  if (row > dims[0] || rows > dims[0] - row) throw IoError({file(), where, ""}, "row range outside the dataset");
  if (dims[1] != 0 && rows > std::numeric_limits<hsize_t>::max() / dims[1])
    throw IoError({file(), where, std::to_string(dims[1]) + " columns"}, "too many elements (a corrupt header?)");
  std::vector<T> out(checked_elements(rows * dims[1], sizeof(T), file(), where));
  if (out.empty()) return out;
  hsize_t start[2] = {row, 0}, count[2] = {rows, dims[1]};
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
  SpaceId mspace(H5Screate_simple(2, count, nullptr));
  check(H5Dread(ds.get(), native_type<T>(), mspace.get(), fspace.get(), H5P_DEFAULT, out.data()), file(), where,
        "cannot read");
  return out;
}

#define SDM_H5_INSTANTIATE(T)                                                                         \
  template std::vector<T> Location::read_range<T>(const std::string&, hsize_t, hsize_t) const;       \
  template void Location::read_range_into<T>(const std::string&, hsize_t, hsize_t, T*) const;        \
  template std::vector<T> Location::read_rows<T>(const std::string&, hsize_t, hsize_t) const;        \
  template std::vector<T> Location::read_field<T>(const std::string&, const std::string&) const;
SDM_H5_INSTANTIATE(float)
SDM_H5_INSTANTIATE(double)
SDM_H5_INSTANTIATE(std::int8_t)
SDM_H5_INSTANTIATE(std::int32_t)
SDM_H5_INSTANTIATE(std::int64_t)
#undef SDM_H5_INSTANTIATE

namespace {
/// The object type at `path`, or H5O_TYPE_UNKNOWN when nothing is there.
H5O_type_t object_type(const Location& loc, const std::string& path) {
  if (!loc.exists(path)) return H5O_TYPE_UNKNOWN;
  H5O_info_t info;
  if (H5Oget_info_by_name(loc.id(), path.c_str(), &info, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5O_TYPE_UNKNOWN;
  }
  return info.type;
}
}  // namespace

bool Location::is_group(const std::string& path) const { return object_type(*this, path) == H5O_TYPE_GROUP; }
bool Location::is_dataset(const std::string& path) const { return object_type(*this, path) == H5O_TYPE_DATASET; }

std::vector<std::string> Location::children(const std::string& path) const {
  GroupId g(check(H5Gopen2(id(), path.c_str(), H5P_DEFAULT), file(), object_path(path), "cannot open group"));
  H5G_info_t info;
  check(H5Gget_info(g.get(), &info), file(), object_path(path), "H5Gget_info");
  std::vector<std::string> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) continue;
    std::string name(static_cast<std::size_t>(len), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
    out.push_back(name);
  }
  return out;
}

std::string Location::dtype_name(const std::string& path) const {
  const std::string where = object_path(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  TypeId t(check(H5Dget_type(ds.get()), file(), where, "H5Dget_type"));
  const std::size_t size = H5Tget_size(t.get());
  switch (H5Tget_class(t.get())) {
    case H5T_INTEGER:
      return std::string(H5Tget_sign(t.get()) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(size * 8);
    case H5T_FLOAT: return "float" + std::to_string(size * 8);
    case H5T_ENUM: return "bool";  // h5py writes numpy bool as an enum over int8
    case H5T_STRING: return "str";
    case H5T_COMPOUND: return "compound";
    default: return "other";
  }
}

std::vector<std::string> Location::compound_fields(const std::string& path) const {
  const std::string where = object_path(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  TypeId t(check(H5Dget_type(ds.get()), file(), where, "H5Dget_type"));
  if (H5Tget_class(t.get()) != H5T_COMPOUND) throw IoError({file(), where, ""}, "expected a compound dataset");
  std::vector<std::string> out;
  const int n = H5Tget_nmembers(t.get());
  for (int i = 0; i < n; ++i) {
    char* name = H5Tget_member_name(t.get(), static_cast<unsigned>(i));
    out.emplace_back(name);
    H5free_memory(name);
  }
  return out;
}

H5T_class_t Location::field_class(const std::string& path, const std::string& field) const {
  const std::string where = object_path(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  TypeId t(check(H5Dget_type(ds.get()), file(), where, "H5Dget_type"));
  const int idx = H5Tget_member_index(t.get(), field.c_str());
  if (idx < 0) throw IoError({file(), where + "." + field, ""}, "no such compound field");
  return H5Tget_member_class(t.get(), static_cast<unsigned>(idx));
}

template <class T>
std::vector<T> Location::read_field(const std::string& path, const std::string& field) const {
  const std::string where = object_path(path);
  check_filters(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  SpaceId space(H5Dget_space(ds.get()));
  TypeId mtype(H5Tcreate(H5T_COMPOUND, sizeof(T)));
  H5Tinsert(mtype.get(), field.c_str(), 0, native_type<T>());
  std::vector<T> out(checked_elements(element_count(space.get()), sizeof(T), file(), where));
  if (!out.empty())
    check(H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), file(), where + "." + field,
          "cannot read compound field");
  return out;
}

std::vector<std::string> Location::read_field_strings(const std::string& path, const std::string& field) const {
  const std::string where = object_path(path);
  check_filters(path);
  DatasetId ds(check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), file(), where, "cannot open dataset"));
  TypeId ftype(H5Dget_type(ds.get()));
  const int idx = H5Tget_member_index(ftype.get(), field.c_str());
  if (idx < 0) throw IoError({file(), where + "." + field, ""}, "no such compound field");
  TypeId member(H5Tget_member_type(ftype.get(), static_cast<unsigned>(idx)));
  SpaceId space(H5Dget_space(ds.get()));
  const std::size_t n = checked_elements(element_count(space.get()), std::max(H5Tget_size(member.get()), sizeof(std::string)),
                                         file(), where + "." + field);
  if (H5Tis_variable_str(member.get()) > 0) {
    auto str = utf8_string_type();
    TypeId mtype(H5Tcreate(H5T_COMPOUND, sizeof(char*)));
    H5Tinsert(mtype.get(), field.c_str(), 0, str.get());
    std::vector<char*> ptrs(n, nullptr);
    if (n) check(H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), file(), where, "cannot read");
    std::vector<std::string> out;
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n) H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
    return out;
  }
  const std::size_t width = H5Tget_size(member.get());
  TypeId mtype(H5Tcreate(H5T_COMPOUND, width));
  H5Tinsert(mtype.get(), field.c_str(), 0, member.get());
  std::vector<char> buf(n * width);
  if (n) check(H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file(), where, "cannot read");
  return split_fixed_strings(buf, width, n, H5Tget_strpad(member.get()) == H5T_STR_SPACEPAD);
}

// --- attributes on any child ----------------------------------------------------------------------------
bool Location::has_attr(const std::string& path, const std::string& name) const {
  if (path != "." && !exists(path)) return false;
  const htri_t ok = H5Aexists_by_name(id(), path.c_str(), name.c_str(), H5P_DEFAULT);
  if (ok < 0) H5Eclear2(H5E_DEFAULT);
  return ok > 0;
}

std::vector<std::string> Location::attr_strings(const std::string& path, const std::string& name) const {
  const std::string where = object_path(path == "." ? "" : path) + "@" + name;
  AttrId a(check(H5Aopen_by_name(id(), path.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), file(), where,
                 "cannot open attribute"));
  TypeId ftype(H5Aget_type(a.get()));
  SpaceId space(H5Aget_space(a.get()));
  const std::size_t n =
      checked_elements(element_count(space.get()), std::max(H5Tget_size(ftype.get()), sizeof(std::string)), file(), where);
  if (n == 0) return {};  // anndata writes an empty float64 array for "no columns"
  if (H5Tget_class(ftype.get()) != H5T_STRING) throw IoError({file(), where, ""}, "expected a string attribute");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    auto mtype = utf8_string_type();
    std::vector<char*> ptrs(n, nullptr);
    check(H5Aread(a.get(), mtype.get(), ptrs.data()), file(), where, "cannot read attribute");
    std::vector<std::string> out;
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
    return out;
  }
  const std::size_t width = H5Tget_size(ftype.get());
  std::vector<char> buf(n * width);
  check(H5Aread(a.get(), ftype.get(), buf.data()), file(), where, "cannot read attribute");
  return split_fixed_strings(buf, width, n, H5Tget_strpad(ftype.get()) == H5T_STR_SPACEPAD);
}

std::string Location::attr_string(const std::string& path, const std::string& name) const {
  auto v = attr_strings(path, name);
  if (v.size() != 1)
    throw IoError({file(), object_path(path == "." ? "" : path) + "@" + name, ""}, "expected one string");
  return v[0];
}

std::vector<std::int64_t> Location::attr_ints(const std::string& path, const std::string& name) const {
  const std::string where = object_path(path == "." ? "" : path) + "@" + name;
  AttrId a(check(H5Aopen_by_name(id(), path.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), file(), where,
                 "cannot open attribute"));
  SpaceId space(H5Aget_space(a.get()));
  const std::size_t n = checked_elements(element_count(space.get()), sizeof(std::int64_t), file(), where);
  std::vector<std::int64_t> out(n);
  if (n) check(H5Aread(a.get(), H5T_NATIVE_INT64, out.data()), file(), where, "cannot read attribute as integers");
  return out;
}

}  // namespace sdm::h5
