#include "common/dataset_io.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/text.h"
#include "common/hdf5.h"

namespace sdm {

std::string_view format_name(FileFormat format) {
  switch (format) {
    case FileFormat::kH5ad: return "h5ad";
    case FileFormat::kTenxH5: return "10x-h5";
    case FileFormat::kLoom: return "loom";
    case FileFormat::kTsv: return "tsv";
  }
  return "?";
}

namespace {
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

FileFormat detect_format(const std::string& path) {
  if (!std::filesystem::exists(path)) throw IoError({path, "", ""}, "no such file");
  if (std::filesystem::is_directory(path)) throw IoError({path, "", ""}, "is a directory, not a data file");
  h5::init();
  if (H5Fis_hdf5(path.c_str()) > 0) {
    auto f = h5::File::open(path);
    if ((f.has_attr(".", "encoding-type") && f.attr_string(".", "encoding-type") == "anndata") ||
        (f.exists("obs") && f.exists("var")))
      return FileFormat::kH5ad;
    if (f.is_dataset("matrix") && (f.exists("row_attrs") || f.exists("col_attrs"))) return FileFormat::kLoom;
    if (f.is_group("matrix") && f.exists("matrix/barcodes")) return FileFormat::kTenxH5;
    for (const auto& g : f.children("."))
      if (f.is_group(g) && f.exists(g + "/barcodes")) return FileFormat::kTenxH5;
    throw IoError({path, "", ""}, "an HDF5 file, but neither AnnData (.h5ad), 10x Genomics nor Loom");
  }
  H5Eclear2(H5E_DEFAULT);
  std::string name = path;
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  if (ends_with(name, ".tsv") || ends_with(name, ".txt")) return FileFormat::kTsv;
  if (ends_with(path, ".h5ad") || ends_with(path, ".h5") || ends_with(path, ".loom"))
    throw IoError({path, "", ""}, "not an HDF5 file (no HDF5 signature found; truncated or another format?)");
  throw IoError({path, "", ""}, "unknown format: expected .h5ad, 10x .h5, .loom or scDrugMap .tsv[.gz]");
}

namespace {

/// Cell and gene names end up in output files and are matched against vocabularies: they must be text.
void check_names(const CellMatrix& cells, const std::string& path) {
  for (const auto* table : {&cells.obs, &cells.var}) {
    const std::string where = table == &cells.obs ? "obs_names" : "var_names";
    for (std::size_t r = 0; r < table->index.size(); ++r) {
      if (!is_valid_utf8(table->index[r])) {
        throw DataError({path, where + "[" + std::to_string(r) + "]", ""}, "not valid UTF-8 text");
      }
    }
  }
}

CellMatrix read_any(const std::string& path, const ReadOptions& options) {
  const FileFormat format = detect_format(path);
  if (format != FileFormat::kH5ad && options.matrix != "X")
    throw ConfigError({path, "matrix", options.matrix}, "only .h5ad files have raw and layers");
  switch (format) {
    case FileFormat::kH5ad: return read_h5ad(path, options);
    case FileFormat::kTenxH5: return read_10x_h5(path, options);
    case FileFormat::kLoom: return read_loom(path, options);
    case FileFormat::kTsv: return read_tsv(path, options);
  }
  throw IoError({path, "", ""}, "unknown format");
}

}  // namespace

CellMatrix read_cells(const std::string& path, const ReadOptions& options) {
  CellMatrix cells = read_any(path, options);
  check_names(cells, path);
  return cells;
}

FileInfo inspect_file(const std::string& path) {
  switch (detect_format(path)) {
    case FileFormat::kH5ad: return inspect_h5ad(path);
    case FileFormat::kTenxH5: return inspect_10x_h5(path);
    case FileFormat::kLoom: return inspect_loom(path);
    case FileFormat::kTsv: return inspect_tsv(path);
  }
  throw IoError({path, "", ""}, "unknown format");
}

std::vector<ColumnInfo> describe_columns(const Table& table) {
  std::vector<ColumnInfo> out;
  for (const auto& c : table.columns) out.push_back({c.name, std::string(column_type_name(c.type)), c.categories});
  return out;
}

nlohmann::json to_json(const FileInfo& info) {
  auto columns = [](const std::vector<ColumnInfo>& cols) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& c : cols) {
      nlohmann::json j = {{"name", c.name}, {"type", c.type}};
      if (c.type == "categorical") j["categories"] = c.categories;
      arr.push_back(j);
    }
    return arr;
  };
  return {{"problems", info.problems},
          {"format", info.format},
          {"encoding_version", info.encoding_version ? nlohmann::json(*info.encoding_version) : nlohmann::json(nullptr)},
          {"n_obs", info.n_obs},
          {"n_vars", info.n_vars},
          {"x_encoding", info.x_encoding},
          {"x_dtype", info.x_dtype ? nlohmann::json(*info.x_dtype) : nlohmann::json(nullptr)},
          {"nnz", info.nnz},
          {"layers", info.layers},
          {"obs_columns", columns(info.obs_columns)},
          {"var_columns", columns(info.var_columns)}};
}

std::int64_t rows_per_block(std::int64_t width) {
  return std::max<std::int64_t>(1, (std::int64_t{16} << 20) / std::max<std::int64_t>(1, width));
}

std::pair<std::int64_t, std::int64_t> resolve_rows(const ReadOptions& options, std::int64_t rows, const std::string& path) {
  const std::int64_t begin = options.row_begin;
  const std::int64_t end = options.row_end < 0 ? rows : std::min(options.row_end, rows);
  if (begin < 0 || begin > end)
    throw ConfigError({path, "rows", std::to_string(options.row_begin) + ":" + std::to_string(options.row_end)},
                      "row range is empty or outside 0.." + std::to_string(rows));
  return {begin, end};
}

}  // namespace sdm
