#pragma once
// One entry point for single-cell files: .h5ad (any anndata version), 10x Genomics .h5 (v2/v3), Loom 3.0
// and the scDrugMap TSV layout (optionally gzipped). Format detection, reading into a CellMatrix, and a
// format-faithful summary for `sdm inspect`.
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm {

enum class FileFormat { kH5ad, kTenxH5, kLoom, kTsv };
std::string_view format_name(FileFormat format);  ///< h5ad, 10x-h5, loom, tsv

/// From the content (HDF5 signature, root layout) and, for text, the extension. Throws IoError.
FileFormat detect_format(const std::string& path);

struct ReadOptions {
  /// Which matrix: "X", "raw" (raw/X with raw/var) or "layer:<name>". Only .h5ad has raw and layers.
  std::string matrix = "X";
  /// Rows [row_begin, row_end) only (row_end < 0 = to the end): stream files larger than RAM in blocks.
  std::int64_t row_begin = 0;
  std::int64_t row_end = -1;
  /// 10x: keep only features whose feature_type is "Gene Expression" (as scanpy does by default).
  bool gene_expression_only = true;
};

CellMatrix read_cells(const std::string& path, const ReadOptions& options = {});

struct ColumnInfo {
  std::string name;
  std::string type;                      ///< column_type_name()
  std::vector<std::string> categories;   ///< categoricals only
};

struct FileInfo {
  std::string format;
  std::optional<std::string> encoding_version;
  std::int64_t n_obs = 0;
  std::int64_t n_vars = 0;
  std::string x_encoding = "none";       ///< dense | csr | csc | none, as stored
  std::optional<std::string> x_dtype;    ///< numpy spelling
  std::int64_t nnz = 0;
  std::vector<std::string> layers;
  std::vector<ColumnInfo> obs_columns;
  std::vector<ColumnInfo> var_columns;
  /// What makes the file unreadable by the reading commands (missing indptr, X shape not obs x var, sizes over
  /// the read bound, ...), one sentence each; empty for a sound file.
  std::vector<std::string> problems;
};

FileInfo inspect_file(const std::string& path);
nlohmann::json to_json(const FileInfo& info);
std::vector<ColumnInfo> describe_columns(const Table& table);

// Per-format entry points (dataset_io.cpp dispatches to these).
CellMatrix read_h5ad(const std::string& path, const ReadOptions& options);
FileInfo inspect_h5ad(const std::string& path);
CellMatrix read_10x_h5(const std::string& path, const ReadOptions& options);
FileInfo inspect_10x_h5(const std::string& path);
CellMatrix read_loom(const std::string& path, const ReadOptions& options);
FileInfo inspect_loom(const std::string& path);
CellMatrix read_tsv(const std::string& path, const ReadOptions& options);
FileInfo inspect_tsv(const std::string& path);

/// Rows per block when reading a dense matrix of `width` columns in bounded blocks (~64 MiB of float32).
std::int64_t rows_per_block(std::int64_t width);

/// [begin, end) clamped to `rows`; throws ConfigError for an empty or inverted range.
std::pair<std::int64_t, std::int64_t> resolve_rows(const ReadOptions& options, std::int64_t rows, const std::string& path);

}  // namespace sdm
