// 10x Genomics .h5 (Cell Ranger 2 per-genome groups and Cell Ranger >= 3 /matrix) and Loom 3.0 readers.
// 10x stores features x barcodes in CSC, which is exactly cells x genes in CSR: no transpose needed.
// Loom stores genes x cells densely: it is read in gene blocks and regrouped by cell.
#include <algorithm>
#include <tuple>

#include "common/dataset_io.h"
#include "common/error.h"
#include "common/hdf5.h"
#include "common/matrix_check.h"

namespace sdm {
namespace {

struct TenxLayout {
  std::string group;         ///< "matrix" (v3) or the genome group (v2)
  std::string ids, names;    ///< feature id / symbol datasets
  std::string feature_type;  ///< "" for v2
  std::string version;       ///< "v2" | "v3"
};

TenxLayout tenx_layout(const h5::File& f) {
  if (f.is_group("matrix") && f.exists("matrix/barcodes"))
    return {"matrix", "matrix/features/id", "matrix/features/name",
            f.exists("matrix/features/feature_type") ? "matrix/features/feature_type" : "", "v3"};
  for (const auto& g : f.children("."))
    if (f.is_group(g) && f.exists(g + "/barcodes") && f.exists(g + "/genes"))
      return {g, g + "/genes", g + "/gene_names", "", "v2"};
  throw IoError({f.file(), "", ""}, "not a 10x Genomics .h5 file (no /matrix or per-genome group with barcodes)");
}

std::int64_t tenx_dim(const h5::File& f, const std::string& group, std::size_t axis) {
  const auto shape = f.read<std::int64_t>(group + "/shape");
  if (shape.size() != 2) throw DataError({f.file(), group + "/shape", ""}, "expected 2 entries");
  return shape[axis];
}

std::vector<ColumnInfo> tenx_var_columns(const TenxLayout& l) {
  std::vector<ColumnInfo> cols{{"gene_ids", "string", {}}};
  if (!l.feature_type.empty()) cols.push_back({"feature_types", "string", {}});
  return cols;
}

}  // namespace

CellMatrix read_10x_h5(const std::string& path, const ReadOptions& options) {
  auto f = h5::File::open(path);
  const TenxLayout l = tenx_layout(f);
  const std::int64_t n_features = tenx_dim(f, l.group, 0), n_cells = tenx_dim(f, l.group, 1);
  const auto [begin, end] = resolve_rows(options, n_cells, path);

  CellMatrix out;
  out.source = path;
  const auto barcodes = f.read_strings(l.group + "/barcodes");
  if (static_cast<std::int64_t>(barcodes.size()) != n_cells)
    throw DataError({path, l.group + "/barcodes", ""}, "length differs from shape[1]");
  out.obs.index.assign(barcodes.begin() + begin, barcodes.begin() + end);

  const auto ids = f.read_strings(l.ids), names = f.read_strings(l.names);
  std::vector<std::string> types = l.feature_type.empty() ? std::vector<std::string>(ids.size(), "Gene Expression")
                                                          : f.read_strings(l.feature_type);
  if (static_cast<std::int64_t>(ids.size()) != n_features || names.size() != ids.size() || types.size() != ids.size())
    throw DataError({path, l.ids, ""}, "feature lists disagree with shape[0]");
  std::vector<std::int32_t> new_col(ids.size(), -1);
  Column gene_ids{"gene_ids", ColumnType::kString, {}, {}, {}, {}, {}, false};
  Column feature_types{"feature_types", ColumnType::kString, {}, {}, {}, {}, {}, false};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (options.gene_expression_only && types[i] != "Gene Expression") continue;
    new_col[i] = static_cast<std::int32_t>(out.var.index.size());
    out.var.index.push_back(names[i]);
    gene_ids.strings.push_back(ids[i]);
    feature_types.strings.push_back(types[i]);
  }
  out.var.columns.push_back(std::move(gene_ids));
  if (!l.feature_type.empty()) out.var.columns.push_back(std::move(feature_types));

  auto indptr = f.read_range<std::int64_t>(l.group + "/indptr", static_cast<hsize_t>(begin), static_cast<hsize_t>(end - begin + 1));
  const std::int64_t lo = indptr.front(), hi = indptr.back();
  if (lo < 0 || hi < lo) throw DataError({path, l.group + "/indptr", ""}, "not monotone (corrupt file)");
  const auto values = f.read_range<float>(l.group + "/data", static_cast<hsize_t>(lo), static_cast<hsize_t>(hi - lo));
  const auto features = f.read_range<std::int64_t>(l.group + "/indices", static_cast<hsize_t>(lo), static_cast<hsize_t>(hi - lo));
  CsrMatrix& X = out.X;
  X.rows = end - begin;
  X.cols = static_cast<std::int64_t>(out.var.index.size());
  X.indptr.assign(1, 0);
  for (std::size_t cell = 0; cell + 1 < indptr.size(); ++cell) {
    if (indptr[cell + 1] < indptr[cell] || indptr[cell + 1] > hi)
      throw DataError({path, l.group + "/indptr", std::to_string(indptr[cell + 1])},
                      "entry " + std::to_string(begin + static_cast<std::int64_t>(cell) + 1) +
                          " breaks indptr[0] <= ... <= nnz (corrupt file)");
    for (auto k = indptr[cell] - lo; k < indptr[cell + 1] - lo; ++k) {
      const auto feat = features[static_cast<std::size_t>(k)];
      if (feat < 0 || feat >= n_features) throw DataError({path, l.group + "/indices", std::to_string(feat)}, "feature index out of range");
      const std::int32_t c = new_col[static_cast<std::size_t>(feat)];
      if (c < 0) continue;
      X.indices.push_back(c);
      X.data.push_back(values[static_cast<std::size_t>(k)]);
    }
    X.indptr.push_back(static_cast<std::int64_t>(X.data.size()));
  }
  X.validate(path);
  return out;
}

FileInfo inspect_10x_h5(const std::string& path) {
  auto f = h5::File::open(path);
  const TenxLayout l = tenx_layout(f);
  FileInfo info;
  info.format = "10x-h5";
  info.encoding_version = l.version;
  info.n_vars = tenx_dim(f, l.group, 0);
  info.n_obs = tenx_dim(f, l.group, 1);
  info.x_encoding = "csc";
  info.var_columns = tenx_var_columns(l);
  // one column of the stored matrix per cell (barcode)
  info.problems = compressed_matrix_problems(f, l.group, info.n_obs, "cells (barcodes)");
  for (const auto& [list, n, what] : {std::tuple{l.group + "/barcodes", info.n_obs, "cells"},
                                       std::tuple{l.ids, info.n_vars, "features"}}) {
    const auto dims = f.exists(list) ? f.shape(list) : std::vector<hsize_t>{};
    if (dims.size() != 1 || static_cast<std::int64_t>(dims[0]) != n) {
      info.problems.push_back(list + " has " + (dims.size() == 1 ? std::to_string(dims[0]) : std::string("no")) +
                              " entries; shape says " + std::to_string(n) + " " + what);
    }
  }
  if (f.exists(l.group + "/data")) {
    info.x_dtype = f.dtype_name(l.group + "/data");
    info.nnz = static_cast<std::int64_t>(f.shape(l.group + "/data").at(0));
  }
  return info;
}

// --- Loom ----------------------------------------------------------------------------------------------
namespace {

Table read_loom_attrs(const h5::File& f, const std::string& group, std::int64_t n, const char* index_name,
                      const char* id_name) {
  Table t;
  if (f.is_group(group)) {
    for (const auto& name : f.children(group)) {
      const std::string path = group + "/" + name;
      if (f.shape(path).size() != 1) continue;  // multi-dimensional attributes are not table columns
      Column c;
      c.name = name == id_name ? "gene_ids" : name;
      const std::string dtype = f.dtype_name(path);
      if (dtype == "str") {
        c.type = ColumnType::kString;
        c.strings = f.read_strings(path);
        if (name == index_name) {
          t.index = c.strings;
          continue;
        }
      } else if (dtype.rfind("float", 0) == 0) {
        c.type = ColumnType::kFloat;
        c.floats = f.read<double>(path);
      } else {
        c.type = dtype == "bool" ? ColumnType::kBool : ColumnType::kInt;
        c.ints = f.read<std::int64_t>(path);
      }
      if (static_cast<std::int64_t>(c.size()) != n)
        throw DataError({f.file(), path, ""}, "length " + std::to_string(c.size()) + " != " + std::to_string(n));
      t.columns.push_back(std::move(c));
    }
  }
  if (t.index.empty())
    for (std::int64_t i = 0; i < n; ++i) t.index.push_back(std::to_string(i));
  return t;
}

}  // namespace

CellMatrix read_loom(const std::string& path, const ReadOptions& options) {
  auto f = h5::File::open(path);
  const auto dims = f.shape("matrix");
  if (dims.size() != 2) throw DataError({path, "matrix", ""}, "Loom /matrix must be 2-D (genes x cells)");
  const auto n_genes = static_cast<std::int64_t>(dims[0]), n_cells = static_cast<std::int64_t>(dims[1]);
  const auto [begin, end] = resolve_rows(options, n_cells, path);

  CellMatrix out;
  out.source = path;
  out.var = read_loom_attrs(f, "row_attrs", n_genes, "Gene", "Accession");
  Table obs = read_loom_attrs(f, "col_attrs", n_cells, "CellID", "");
  std::vector<std::size_t> keep;
  for (auto r = begin; r < end; ++r) keep.push_back(static_cast<std::size_t>(r));
  out.obs = obs.take(keep);

  // Gene blocks -> per-cell lists (counting sort by cell), so the dense file is never held whole.
  struct Entry {
    std::int32_t gene;
    float value;
  };
  std::vector<std::vector<Entry>> per_cell(static_cast<std::size_t>(end - begin));
  const std::int64_t block = rows_per_block(n_cells);
  for (std::int64_t g = 0; g < n_genes; g += block) {
    const std::int64_t rows = std::min(block, n_genes - g);
    const auto values = f.read_rows<float>("matrix", static_cast<hsize_t>(g), static_cast<hsize_t>(rows));
    for (std::int64_t i = 0; i < rows; ++i)
      for (auto c = begin; c < end; ++c) {
        const float v = values[static_cast<std::size_t>(i * n_cells + c)];
        if (v != 0.0f) per_cell[static_cast<std::size_t>(c - begin)].push_back({static_cast<std::int32_t>(g + i), v});
      }
  }
  out.X.rows = end - begin;
  out.X.cols = n_genes;
  for (const auto& cell : per_cell) {
    for (const auto& e : cell) {
      out.X.indices.push_back(e.gene);
      out.X.data.push_back(e.value);
    }
    out.X.indptr.push_back(static_cast<std::int64_t>(out.X.data.size()));
  }
  return out;
}

FileInfo inspect_loom(const std::string& path) {
  auto f = h5::File::open(path);
  FileInfo info;
  info.format = "loom";
  if (f.exists("attrs/LOOM_SPEC_VERSION")) info.encoding_version = f.read_strings("attrs/LOOM_SPEC_VERSION").at(0);
  else if (f.has_attr(".", "LOOM_SPEC_VERSION")) info.encoding_version = f.attr_string(".", "LOOM_SPEC_VERSION");
  const auto dims = f.shape("matrix");
  info.n_vars = static_cast<std::int64_t>(dims.at(0));
  info.n_obs = static_cast<std::int64_t>(dims.at(1));
  info.x_encoding = "dense";
  info.x_dtype = f.dtype_name("matrix");
  const auto m = read_loom(path, {});
  info.nnz = m.X.nnz();
  info.obs_columns = describe_columns(m.obs);
  info.var_columns = describe_columns(m.var);
  if (f.is_group("layers")) info.layers = f.children("layers");
  return info;
}

}  // namespace sdm
