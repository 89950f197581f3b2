#include "common/anndata_writer.h"

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "common/hdf5.h"

namespace sdm {
namespace {

using h5::check;

void set_encoding(const h5::Location& loc, const std::string& type, const std::string& version) {
  loc.set_attr("encoding-type", type);
  loc.set_attr("encoding-version", version);
}

/// numpy bool as h5py writes it: an enum over int8 {FALSE = 0, TRUE = 1}.
h5::TypeId bool_enum() {
  h5::TypeId t(H5Tenum_create(H5T_NATIVE_INT8));
  std::int8_t f = 0, tr = 1;
  H5Tenum_insert(t.get(), "FALSE", &f);
  H5Tenum_insert(t.get(), "TRUE", &tr);
  return t;
}

void write_bools(const h5::Location& g, const std::string& name, const std::vector<std::int8_t>& values) {
  const hsize_t n = values.size();
  h5::SpaceId space(H5Screate_simple(1, &n, nullptr));
  auto type = bool_enum();
  auto dcpl = h5::reproducible_dataset_plist();
  h5::DatasetId ds(check(H5Dcreate2(g.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                         g.file(), name, "cannot create dataset"));
  if (n) check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), g.file(), name, "cannot write");
}

void set_bool_attr(const h5::Location& loc, const std::string& name, bool value) {
  h5::SpaceId space(H5Screate(H5S_SCALAR));
  auto type = bool_enum();
  h5::AttrId a(check(H5Acreate2(loc.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), loc.file(),
                     name, "cannot create attribute"));
  const std::int8_t v = value ? 1 : 0;
  check(H5Awrite(a.get(), type.get(), &v), loc.file(), name, "cannot write attribute");
}

void set_string_list_attr(const h5::Location& loc, const std::string& name, const std::vector<std::string>& values) {
  if (values.empty()) {
    // What anndata itself writes for "no columns": an empty float64 array.
    const hsize_t zero = 0;
    h5::SpaceId space(H5Screate_simple(1, &zero, nullptr));
    h5::AttrId a(check(H5Acreate2(loc.id(), name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       loc.file(), name, "cannot create attribute"));
    return;
  }
  auto type = h5::utf8_string_type();
  const hsize_t n = values.size();
  h5::SpaceId space(H5Screate_simple(1, &n, nullptr));
  h5::AttrId a(check(H5Acreate2(loc.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), loc.file(),
                     name, "cannot create attribute"));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  check(H5Awrite(a.get(), type.get(), ptrs.data()), loc.file(), name, "cannot write attribute");
}

void write_string_array(const h5::Location& g, const std::string& name, const std::vector<std::string>& values) {
  g.write_strings(name, values);
  set_encoding(g.open_object(name), "string-array", "0.2.0");
}

template <class T>
void write_array(const h5::Location& g, const std::string& name, const std::vector<T>& values) {
  g.write(name, values);
  set_encoding(g.open_object(name), "array", "0.2.0");
}

std::vector<std::int8_t> as_int8(const std::vector<std::int64_t>& v) { return {v.begin(), v.end()}; }
std::vector<std::int8_t> as_int8(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }

void write_column(const h5::Location& df, const Column& c) {
  switch (c.type) {
    case ColumnType::kCategorical: {
      auto g = df.create_group(c.name);
      set_encoding(g, "categorical", "0.2.0");
      set_bool_attr(g, "ordered", c.ordered);
      // anndata picks the smallest signed code type that fits.
      if (c.categories.size() < 128) g.write("codes", as_int8(c.ints));
      else if (c.categories.size() < 32768) g.write("codes", std::vector<std::int16_t>(c.ints.begin(), c.ints.end()));
      else g.write("codes", std::vector<std::int32_t>(c.ints.begin(), c.ints.end()));
      set_encoding(g.open_object("codes"), "array", "0.2.0");
      write_string_array(g, "categories", c.categories);
      return;
    }
    case ColumnType::kString: return write_string_array(df, c.name, c.strings);
    case ColumnType::kInt: return write_array(df, c.name, c.ints);
    case ColumnType::kFloat: return write_array(df, c.name, c.floats);
    case ColumnType::kBool:
      write_bools(df, c.name, as_int8(c.ints));
      return set_encoding(df.open_object(c.name), "array", "0.2.0");
    case ColumnType::kNullableInt:
    case ColumnType::kNullableBool:
    case ColumnType::kNullableString: {
      auto g = df.create_group(c.name);
      const std::vector<std::uint8_t> mask = c.missing.empty() ? std::vector<std::uint8_t>(c.size(), 0) : c.missing;
      write_bools(g, "mask", as_int8(mask));
      if (c.type == ColumnType::kNullableInt) {
        set_encoding(g, "nullable-integer", "0.1.0");
        g.write("values", c.ints);
      } else if (c.type == ColumnType::kNullableBool) {
        set_encoding(g, "nullable-boolean", "0.1.0");
        write_bools(g, "values", as_int8(c.ints));
      } else {
        set_encoding(g, "nullable-string-array", "0.1.0");
        g.write_strings("values", c.strings);
      }
      return;
    }
  }
}

void write_dataframe(const h5::Location& file, const std::string& name, const Table& t) {
  auto g = file.create_group(name);
  set_encoding(g, "dataframe", "0.2.0");
  g.set_attr("_index", std::string("_index"));
  std::vector<std::string> order;
  for (const auto& c : t.columns) {
    if (c.size() != t.rows())
      throw DataError({file.file(), name + "/" + c.name, ""}, "has " + std::to_string(c.size()) + " rows, index has " +
                                                                   std::to_string(t.rows()));
    if (c.name == "_index") throw DataError({file.file(), name + "/_index", ""}, "a column may not be named _index");
    order.push_back(c.name);
  }
  set_string_list_attr(g, "column-order", order);
  write_string_array(g, "_index", t.index);
  for (const auto& c : t.columns) write_column(g, c);
}

void write_scalar(const h5::Location& g, const std::string& name, const UnsScalar& value) {
  h5::SpaceId space(H5Screate(H5S_SCALAR));
  auto dcpl = h5::reproducible_dataset_plist();
  if (const auto* s = std::get_if<std::string>(&value)) {
    auto type = h5::utf8_string_type();
    h5::DatasetId ds(check(H5Dcreate2(g.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                           g.file(), name, "cannot create"));
    const char* p = s->c_str();
    check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), g.file(), name, "cannot write");
    ds.reset();
    return set_encoding(g.open_object(name), "string", "0.2.0");
  }
  const bool is_int = std::holds_alternative<std::int64_t>(value);
  const hid_t type = is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
  h5::DatasetId ds(check(H5Dcreate2(g.id(), name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                         g.file(), name, "cannot create"));
  if (is_int) check(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &std::get<std::int64_t>(value)), g.file(), name, "cannot write");
  else check(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &std::get<double>(value)), g.file(), name, "cannot write");
  ds.reset();
  set_encoding(g.open_object(name), "numeric-scalar", "0.2.0");
}

}  // namespace

void add_obs_columns(const std::string& path, const std::vector<Column>& columns) {
  h5::init();
  auto file = h5::File::open(path, true);
  if (!file.is_group("obs") || !file.has_attr("obs", "encoding-type") || file.attr_string("obs", "encoding-type") != "dataframe") {
    throw DataError({path, "obs", ""}, "obs is not an anndata >= 0.7 dataframe group; cannot add columns (write a CSV instead)");
  }
  auto obs = file.open_group("obs");
  const std::string index = file.has_attr("obs", "_index") ? file.attr_string("obs", "_index") : "_index";
  const auto rows = obs.shape(index).at(0);
  std::vector<std::string> order;
  if (file.has_attr("obs", "column-order")) {
    // anndata writes an empty float64 array for "no columns"; attr_strings reads string lists only
    try {
      order = file.attr_strings("obs", "column-order");
    } catch (const std::exception&) {
      order.clear();
    }
  }
  for (const auto& c : columns) {
    if (c.size() != rows) {
      throw DataError({path, "obs/" + c.name, std::to_string(c.size())}, "has " + std::to_string(c.size()) +
                                                                            " rows, obs has " + std::to_string(rows));
    }
    if (obs.exists(c.name)) check(H5Ldelete(obs.id(), c.name.c_str(), H5P_DEFAULT), path, "obs/" + c.name, "cannot replace column");
    write_column(obs, c);
    if (std::find(order.begin(), order.end(), c.name) == order.end()) order.push_back(c.name);
  }
  if (H5Aexists(obs.id(), "column-order") > 0) check(H5Adelete(obs.id(), "column-order"), path, "obs", "cannot rewrite column-order");
  set_string_list_attr(obs, "column-order", order);
}

void write_h5ad(const std::string& path, const CellMatrix& cells, const std::map<std::string, UnsScalar>& uns) {
  cells.X.validate(path);
  if (cells.obs.rows() != static_cast<std::size_t>(cells.X.rows) || cells.var.rows() != static_cast<std::size_t>(cells.X.cols))
    throw DataError({path, "X", ""}, "shape " + std::to_string(cells.X.rows) + "x" + std::to_string(cells.X.cols) +
                                         " does not match obs x var " + std::to_string(cells.obs.rows()) + "x" +
                                         std::to_string(cells.var.rows()));
  // Write beside the target and rename, so a crash never leaves a half-written file under the final name.
  const std::string tmp = path + ".tmp";
  {
    auto f = h5::File::create(tmp);
    set_encoding(f, "anndata", "0.1.0");
    auto X = f.create_group("X");
    set_encoding(X, "csr_matrix", "0.1.0");
    {
      const hsize_t two = 2;
      h5::SpaceId space(H5Screate_simple(1, &two, nullptr));
      h5::AttrId a(check(H5Acreate2(X.id(), "shape", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), tmp, "X@shape", "cannot create"));
      const std::int64_t shape[2] = {cells.X.rows, cells.X.cols};
      check(H5Awrite(a.get(), H5T_NATIVE_INT64, shape), tmp, "X@shape", "cannot write");
    }
    X.write("data", std::span<const float>(cells.X.data));
    X.write("indices", std::span<const std::int32_t>(cells.X.indices));
    X.write("indptr", cells.X.indptr);
    write_dataframe(f, "obs", cells.obs);
    write_dataframe(f, "var", cells.var);
    for (const char* dict : {"layers", "obsm", "varm", "obsp", "varp"}) set_encoding(f.create_group(dict), "dict", "0.1.0");
    auto u = f.create_group("uns");
    set_encoding(u, "dict", "0.1.0");
    for (const auto& [key, value] : uns) write_scalar(u, key, value);
    f.close();
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw IoError({path, "", ""}, "cannot move the finished file into place: " + ec.message());
}

}  // namespace sdm
