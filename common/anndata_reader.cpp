// AnnData .h5ad reader: anndata >= 0.8 (encoding-type attributes), 0.7 (dataframe 0.1.0 with __categories)
// and <= 0.6 (compound obs/var, uns/<col>_categories, h5sparse groups). Spec: reference/anndata-format.md.
#include <algorithm>

#include "common/dataset_io.h"
#include "common/error.h"
#include "common/hdf5.h"
#include "common/matrix_check.h"
#include "common/text.h"

namespace sdm {
namespace {

std::string encoding_of(const h5::Location& loc, const std::string& path) {
  return loc.has_attr(path, "encoding-type") ? loc.attr_string(path, "encoding-type") : "";
}

/// Any 1-D element as text: string dataset, numeric dataset, categorical or nullable-string group.
std::vector<std::string> read_as_strings(const h5::Location& loc, const std::string& path);

Column read_categorical_group(const h5::Location& loc, const std::string& path, const std::string& name) {
  Column c;
  c.name = name;
  c.type = ColumnType::kCategorical;
  c.ints = loc.read<std::int64_t>(path + "/codes");
  c.categories = read_as_strings(loc, path + "/categories");
  if (loc.has_attr(path, "ordered")) {
    const auto ordered = loc.attr_ints(path, "ordered");
    c.ordered = !ordered.empty() && ordered[0] != 0;
  }
  return c;
}

std::vector<std::string> read_as_strings(const h5::Location& loc, const std::string& path) {
  if (loc.is_group(path)) {
    const std::string enc = encoding_of(loc, path);
    if (enc == "nullable-string-array") return loc.read_strings(path + "/values");
    if (enc == "categorical") {
      const Column c = read_categorical_group(loc, path, path);
      std::vector<std::string> out;
      for (std::size_t i = 0; i < c.size(); ++i) out.push_back(c.text(i));
      return out;
    }
    throw DataError({loc.file(), path, enc}, "cannot read this element as a list of names");
  }
  loc.check_filters(path);
  const std::string dtype = loc.dtype_name(path);
  if (dtype == "str") return loc.read_strings(path);
  std::vector<std::string> out;
  if (dtype.rfind("float", 0) == 0) {
    Column tmp;
    tmp.type = ColumnType::kFloat;
    tmp.floats = loc.read<double>(path);
    for (std::size_t i = 0; i < tmp.floats.size(); ++i) out.push_back(tmp.text(i));
  } else {
    for (auto v : loc.read<std::int64_t>(path)) out.push_back(std::to_string(v));
  }
  return out;
}

Column read_plain_column(const h5::Location& loc, const std::string& path, const std::string& name) {
  loc.check_filters(path);
  Column c;
  c.name = name;
  const std::string dtype = loc.dtype_name(path);
  if (dtype == "str") {
    c.type = ColumnType::kString;
    c.strings = loc.read_strings(path);
  } else if (dtype == "bool") {
    c.type = ColumnType::kBool;
    c.ints = loc.read<std::int64_t>(path);
  } else if (dtype.rfind("float", 0) == 0) {
    c.type = ColumnType::kFloat;
    c.floats = loc.read<double>(path);
  } else if (dtype.rfind("int", 0) == 0 || dtype.rfind("uint", 0) == 0) {
    c.type = ColumnType::kInt;
    c.ints = loc.read<std::int64_t>(path);
  } else {
    throw DataError({loc.file(), path, dtype}, "unsupported column element type");
  }
  return c;
}

std::vector<std::uint8_t> read_mask(const h5::Location& loc, const std::string& path) {
  std::vector<std::uint8_t> mask;
  for (auto v : loc.read<std::int8_t>(path)) mask.push_back(v != 0);
  return mask;
}

Column read_column(const h5::Location& loc, const std::string& df, const std::string& name) {
  const std::string path = df + "/" + name;
  if (!loc.exists(path)) throw DataError({loc.file(), path, ""}, "column listed in column-order is missing");
  if (loc.is_group(path)) {
    const std::string enc = encoding_of(loc, path);
    if (enc == "categorical") return read_categorical_group(loc, path, name);
    Column c;
    c.name = name;
    if (enc == "nullable-integer" || enc == "nullable-boolean") {
      c.type = enc == "nullable-integer" ? ColumnType::kNullableInt : ColumnType::kNullableBool;
      c.ints = loc.read<std::int64_t>(path + "/values");
    } else if (enc == "nullable-string-array") {
      c.type = ColumnType::kNullableString;
      c.strings = loc.read_strings(path + "/values");
    } else {
      throw DataError({loc.file(), path, enc}, "unsupported column encoding");
    }
    c.missing = read_mask(loc, path + "/mask");
    return c;
  }
  // anndata 0.7: a codes dataset whose "categories" attribute references <df>/__categories/<name>.
  if (loc.has_attr(path, "categories") && loc.exists(df + "/__categories/" + name)) {
    Column c;
    c.name = name;
    c.type = ColumnType::kCategorical;
    c.ints = loc.read<std::int64_t>(path);
    const std::string cats = df + "/__categories/" + name;
    c.categories = loc.read_strings(cats);
    c.ordered = loc.has_attr(cats, "ordered") && loc.attr_ints(cats, "ordered").at(0) != 0;
    return c;
  }
  return read_plain_column(loc, path, name);
}

/// anndata <= 0.6: a compound dataset; categories of int8 code fields live in uns/<field>_categories.
Table read_compound_dataframe(const h5::File& f, const std::string& path) {
  Table t;
  const auto fields = f.compound_fields(path);
  if (std::find(fields.begin(), fields.end(), "index") == fields.end())
    throw DataError({f.file(), path, ""}, "legacy compound dataframe has no 'index' field");
  t.index = f.field_class(path, "index") == H5T_STRING ? f.read_field_strings(path, "index") : std::vector<std::string>{};
  if (t.index.empty())
    for (auto v : f.read_field<std::int64_t>(path, "index")) t.index.push_back(std::to_string(v));
  for (const auto& field : fields) {
    if (field == "index") continue;
    Column c;
    c.name = field;
    const H5T_class_t cls = f.field_class(path, field);
    const std::string cats = "uns/" + field + "_categories";
    if (cls == H5T_STRING) {
      c.type = ColumnType::kString;
      c.strings = f.read_field_strings(path, field);
    } else if (cls == H5T_FLOAT) {
      c.type = ColumnType::kFloat;
      c.floats = f.read_field<double>(path, field);
    } else if (cls == H5T_ENUM) {
      c.type = ColumnType::kBool;
      c.ints = f.read_field<std::int64_t>(path, field);
    } else if (cls == H5T_INTEGER) {
      c.type = ColumnType::kInt;
      c.ints = f.read_field<std::int64_t>(path, field);
      if (f.exists(cats)) {
        auto categories = f.read_strings(cats);
        const bool fits = std::all_of(c.ints.begin(), c.ints.end(),
                                      [&](std::int64_t v) { return v < static_cast<std::int64_t>(categories.size()); });
        if (fits) {
          c.type = ColumnType::kCategorical;
          c.categories = std::move(categories);
        }
      }
    } else {
      continue;  // array-valued fields (obsm-style) are not annotation columns
    }
    t.columns.push_back(std::move(c));
  }
  return t;
}

Table read_dataframe(const h5::File& f, const std::string& path) {
  if (!f.exists(path)) throw DataError({f.file(), path, ""}, "missing (every .h5ad has obs and var)");
  if (f.is_dataset(path)) return read_compound_dataframe(f, path);
  Table t;
  const std::string index_name = f.has_attr(path, "_index") ? f.attr_string(path, "_index") : "_index";
  t.index = read_as_strings(f, path + "/" + index_name);
  const auto order = f.has_attr(path, "column-order") ? f.attr_strings(path, "column-order") : std::vector<std::string>{};
  for (const auto& name : order) {
    Column c = read_column(f, path, name);
    if (c.size() != t.index.size())
      throw DataError({f.file(), path + "/" + name, ""}, "has " + std::to_string(c.size()) + " rows; the index has " +
                                                             std::to_string(t.index.size()));
    t.columns.push_back(std::move(c));
  }
  return t;
}

// --- matrices ------------------------------------------------------------------------------------------
struct MatrixRef {
  std::string path;        ///< "" when absent
  std::string encoding;    ///< dense | csr | csc | none
  std::int64_t rows = 0, cols = 0;
};

MatrixRef locate_matrix(const h5::File& f, const std::string& spec) {
  std::string path;
  if (spec == "X") path = "X";
  else if (spec == "raw") path = f.exists("raw/X") ? "raw/X" : "raw.X";
  else if (spec.rfind("layer:", 0) == 0) path = "layers/" + spec.substr(6);
  else throw ConfigError({f.file(), "matrix", spec}, "expected X, raw or layer:<name>");

  MatrixRef m;
  if (!f.exists(path)) {
    if (spec == "X") return m;
    std::vector<std::string> layers = f.is_group("layers") ? f.children("layers") : std::vector<std::string>{};
    throw DataError({f.file(), path, spec}, spec.rfind("layer:", 0) == 0
                                                ? "no such layer; " + (layers.empty() ? "the file has no layers"
                                                                                      : suggest(spec.substr(6), layers))
                                                : "the file has no raw matrix");
  }
  m.path = path;
  if (f.is_dataset(path)) {
    const auto dims = f.shape(path);
    if (dims.size() != 2) throw DataError({f.file(), path, ""}, "dense matrix is not 2-D");
    m.encoding = "dense";
    m.rows = static_cast<std::int64_t>(dims[0]);
    m.cols = static_cast<std::int64_t>(dims[1]);
    return m;
  }
  const std::string enc = encoding_of(f, path);
  std::string kind;
  std::vector<std::int64_t> shape;
  if (enc == "csr_matrix" || enc == "csc_matrix") {
    kind = enc.substr(0, 3);
    shape = f.attr_ints(path, "shape");
  } else if (f.has_attr(path, "h5sparse_format")) {
    kind = f.attr_string(path, "h5sparse_format");
    shape = f.attr_ints(path, "h5sparse_shape");
  } else {
    throw DataError({f.file(), path, enc}, "unsupported matrix encoding");
  }
  if (shape.size() != 2 || (kind != "csr" && kind != "csc"))
    throw DataError({f.file(), path, kind}, "sparse matrix needs a 2-element shape and csr/csc format");
  m.encoding = kind;
  m.rows = shape[0];
  m.cols = shape[1];
  return m;
}

void append_dense_block(CsrMatrix& out, const std::vector<float>& block, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = block.data() + r * cols;
    for (std::int64_t c = 0; c < cols; ++c)
      if (row[c] != 0.0f) {
        out.indices.push_back(static_cast<std::int32_t>(c));
        out.data.push_back(row[c]);
      }
    out.indptr.push_back(static_cast<std::int64_t>(out.data.size()));
  }
}

CsrMatrix read_matrix(const h5::File& f, const MatrixRef& m, std::int64_t begin, std::int64_t end) {
  CsrMatrix out;
  out.rows = end - begin;
  out.cols = m.cols;
  if (m.cols > INT32_MAX) throw DataError({f.file(), m.path, ""}, "more than 2^31 genes");
  if (m.encoding == "dense") {
    // Bounded blocks, so a dense file never needs its whole dense copy in memory.
    const std::int64_t block = rows_per_block(m.cols);
    for (std::int64_t r = begin; r < end; r += block) {
      const std::int64_t n = std::min(block, end - r);
      append_dense_block(out, f.read_rows<float>(m.path, static_cast<hsize_t>(r), static_cast<hsize_t>(n)), n, m.cols);
    }
  } else if (m.encoding == "csr") {
    auto indptr = f.read_range<std::int64_t>(m.path + "/indptr", static_cast<hsize_t>(begin), static_cast<hsize_t>(end - begin + 1));
    const std::int64_t lo = indptr.front(), hi = indptr.back();
    if (lo < 0 || hi < lo) throw DataError({f.file(), m.path + "/indptr", ""}, "not monotone (corrupt sparse matrix)");
    const auto nnz = h5::checked_elements(static_cast<std::uint64_t>(hi - lo), sizeof(float) + sizeof(std::int32_t),
                                          f.file(), m.path + "/data");
    out.data.resize(nnz);  // default-initialised: HDF5 writes every element once, nothing zeroes it first
    out.indices.resize(nnz);
    f.read_range_into(m.path + "/data", static_cast<hsize_t>(lo), nnz, out.data.data());
    f.read_range_into(m.path + "/indices", static_cast<hsize_t>(lo), nnz, out.indices.data());
    for (auto& p : indptr) p -= lo;
    out.indptr = std::move(indptr);
  } else {
    // CSC -> CSR without densifying: count entries per row, then scatter (a counting sort by row).
    const auto indptr = f.read<std::int64_t>(m.path + "/indptr");
    if (static_cast<std::int64_t>(indptr.size()) != m.cols + 1)
      throw DataError({f.file(), m.path + "/indptr", ""}, "length " + std::to_string(indptr.size()) + " != n_cols + 1");
    // every later index comes from indptr: it must start at 0, never decrease and end at nnz
    for (std::size_t c = 0; c < indptr.size(); ++c)
      if ((c == 0 && indptr[c] != 0) || (c > 0 && indptr[c] < indptr[c - 1]))
        throw DataError({f.file(), m.path + "/indptr", std::to_string(indptr[c])},
                        "entry " + std::to_string(c) + " breaks 0 = indptr[0] <= ... <= nnz (corrupt sparse matrix)");
    const auto nnz = static_cast<hsize_t>(indptr.back());
    const auto rows_of = f.read_range<std::int64_t>(m.path + "/indices", 0, nnz);
    const auto values = f.read_range<float>(m.path + "/data", 0, nnz);
    std::vector<std::int64_t> counts(static_cast<std::size_t>(out.rows) + 1, 0);
    for (auto r : rows_of) {
      if (r < 0 || r >= m.rows)
        throw DataError({f.file(), m.path + "/indices", std::to_string(r)},
                        "row index outside [0, " + std::to_string(m.rows) + ") (corrupt sparse matrix)");
      if (r >= begin && r < end) ++counts[static_cast<std::size_t>(r - begin) + 1];
    }
    for (std::size_t i = 1; i < counts.size(); ++i) counts[i] += counts[i - 1];
    out.indptr = counts;
    out.indices.resize(static_cast<std::size_t>(counts.back()));
    out.data.resize(static_cast<std::size_t>(counts.back()));
    for (std::int64_t c = 0; c < m.cols; ++c)
      for (auto k = indptr[static_cast<std::size_t>(c)]; k < indptr[static_cast<std::size_t>(c) + 1]; ++k) {
        const auto r = rows_of[static_cast<std::size_t>(k)];
        if (r < begin || r >= end) continue;
        const auto slot = static_cast<std::size_t>(counts[static_cast<std::size_t>(r - begin)]++);
        out.indices[slot] = static_cast<std::int32_t>(c);
        out.data[slot] = values[static_cast<std::size_t>(k)];
      }
  }
  out.validate(f.file() + ":" + m.path);
  return out;
}

std::int64_t count_dense_nonzeros(const h5::File& f, const MatrixRef& m) {
  std::int64_t nnz = 0;
  const std::int64_t block = rows_per_block(m.cols);
  for (std::int64_t r = 0; r < m.rows; r += block) {
    const auto values = f.read_rows<float>(m.path, static_cast<hsize_t>(r), static_cast<hsize_t>(std::min(block, m.rows - r)));
    nnz += std::count_if(values.begin(), values.end(), [](float v) { return v != 0.0f; });
  }
  return nnz;
}

std::string var_path(const h5::File& f, const std::string& matrix) {
  if (matrix != "raw") return "var";
  return f.exists("raw/var") ? "raw/var" : "raw.var";
}

}  // namespace

CellMatrix read_h5ad(const std::string& path, const ReadOptions& options) {
  auto f = h5::File::open(path);
  CellMatrix out;
  out.source = path;
  out.obs = read_dataframe(f, "obs");
  out.var = read_dataframe(f, var_path(f, options.matrix));
  const MatrixRef m = locate_matrix(f, options.matrix);
  if (m.encoding.empty() || m.path.empty())
    throw DataError({path, "X", ""}, "the file has no X matrix; choose a layer (matrix: layer:<name>) or raw");
  if (m.rows != static_cast<std::int64_t>(out.obs.rows()) || m.cols != static_cast<std::int64_t>(out.var.rows()))
    throw DataError({path, m.path, std::to_string(m.rows) + "x" + std::to_string(m.cols)},
                    "matrix shape does not match obs x var (" + std::to_string(out.obs.rows()) + "x" +
                        std::to_string(out.var.rows()) + ")");
  const auto [begin, end] = resolve_rows(options, m.rows, path);
  out.X = read_matrix(f, m, begin, end);
  if (begin != 0 || end != m.rows) {
    std::vector<std::size_t> rows;
    for (auto r = begin; r < end; ++r) rows.push_back(static_cast<std::size_t>(r));
    out.obs = out.obs.take(rows);
  }
  return out;
}

FileInfo inspect_h5ad(const std::string& path) {
  auto f = h5::File::open(path);
  FileInfo info;
  info.format = "h5ad";
  if (f.has_attr(".", "encoding-version")) info.encoding_version = f.attr_string(".", "encoding-version");
  const Table obs = read_dataframe(f, "obs");
  const Table var = read_dataframe(f, "var");
  info.n_obs = static_cast<std::int64_t>(obs.rows());
  info.n_vars = static_cast<std::int64_t>(var.rows());
  info.obs_columns = describe_columns(obs);
  info.var_columns = describe_columns(var);
  if (f.is_group("layers")) info.layers = f.children("layers");
  // describe X as stored, and say what would stop a reading command (inspect must not call a file sound that
  // `sdm sweep` then refuses)
  MatrixRef m;
  try {
    m = locate_matrix(f, "X");
  } catch (const DataError& e) {
    info.x_encoding = "none";
    info.problems.push_back("X: " + e.problem());
    return info;
  }
  info.x_encoding = m.encoding.empty() ? "none" : m.encoding;
  if (m.encoding.empty()) return info;
  if (m.rows != info.n_obs || m.cols != info.n_vars) {
    info.problems.push_back(m.path + " shape " + std::to_string(m.rows) + " x " + std::to_string(m.cols) +
                            " does not match obs x var (" + std::to_string(info.n_obs) + " x " +
                            std::to_string(info.n_vars) + ")");
  }
  if (m.encoding == "dense") {
    info.x_dtype = f.dtype_name(m.path);
    if (info.problems.empty()) info.nnz = count_dense_nonzeros(f, m);
    return info;
  }
  const auto structure = compressed_matrix_problems(f, m.path, m.encoding == "csr" ? m.rows : m.cols,
                                                    m.encoding == "csr" ? "rows" : "columns");
  info.problems.insert(info.problems.end(), structure.begin(), structure.end());
  if (f.exists(m.path + "/data")) {
    info.x_dtype = f.dtype_name(m.path + "/data");
    info.nnz = static_cast<std::int64_t>(f.shape(m.path + "/data").at(0));
  }
  return info;
}

}  // namespace sdm
