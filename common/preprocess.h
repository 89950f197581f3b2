#pragma once
// Preprocessing shared by every model: checks that counts are counts, total-count normalization + log1p,
// Seurat-v3 highly-variable genes, gene-name normalization and symbol <-> Ensembl keys, and the mapping from
// an obs column to sensitive (1) / resistant (0) labels.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm {

/// What the values of the chosen matrix are (sweep spec `data.values`).
enum class ValueKind { kCounts, kLog1p };
ValueKind parse_value_kind(const std::string& text, const std::string& field);

/// Throws DataError naming `file`, `matrix` and the first offending value when the matrix holds NaN/inf, or,
/// for kCounts, negative or non-integer values (then the message suggests `data.matrix` / `data.values`).
void check_values(const CsrMatrix& X, ValueKind kind, const std::string& file, const std::string& matrix);

/// Scales each cell to `target_sum` total counts (cells with no counts stay zero), then applies log1p.
void normalize_log1p(CsrMatrix& X, double target_sum = 1e4);

/// Per-gene mean and variance (ddof = 1) of the given rows (all rows when empty), accumulated in double.
struct GeneMoments {
  std::vector<double> mean;
  std::vector<double> var;
};
GeneMoments gene_moments(const CsrMatrix& X, const std::vector<std::size_t>& rows = {});

/// Seurat v3 (scanpy flavor "seurat_v3", one batch) on raw counts: loess (span 0.3, degree 2) of log10 var on
/// log10 mean, values clipped at mean + sqrt(n) * regularized sd, genes ranked by standardized variance.
/// Returns the column indices of the `n_top` most variable genes, in ascending column order.
struct HvgResult {
  std::vector<std::int32_t> genes;       ///< selected columns, ascending
  std::vector<double> normalized_variance;  ///< per gene (all columns)
};
HvgResult highly_variable_genes(const CsrMatrix& counts, std::size_t n_top,
                                const std::vector<std::size_t>& rows = {});

/// Local quadratic regression with tricube weights over the nearest span * n points (exact, no interpolation).
std::vector<double> loess_fit(const std::vector<double>& x, const std::vector<double>& y, double span);

/// Keeps only the given columns (in the given order) of every row.
CsrMatrix select_columns(const CsrMatrix& X, const std::vector<std::int32_t>& columns);

/// Canonical spelling of a gene name for matching across files: trimmed, upper case, and an Ensembl id loses
/// its version suffix ("ENSG00000141510.16" -> "ENSG00000141510").
std::string normalize_gene_name(std::string_view name);
bool looks_like_ensembl_id(std::string_view name);

/// Gene keys of a var table: symbols and Ensembl ids, whichever the file has (index or a known column such as
/// gene_ids / gene_symbols / feature_name). Empty vector when the file has no such column.
struct GeneKeys {
  std::vector<std::string> symbols;
  std::vector<std::string> ensembl;
};
GeneKeys gene_keys(const Table& var);
/// DataError naming the file and the first repeated name (with how many repeat) when `keys` (the names genes are
/// matched by) are not unique: a repeated gene would be pooled, tokenized and predicted ambiguously.
void check_unique_genes(const std::vector<std::string>& keys, const std::string& path);

/// Which obs column and which of its values mean sensitive / resistant (sweep spec `data.label`).
struct LabelMapping {
  std::string column = "condition";
  std::vector<std::string> sensitive{"sensitive"};
  std::vector<std::string> resistant{"resistant"};
};

struct LabeledCells {
  std::vector<std::size_t> rows;       ///< kept cells, in file order
  std::vector<std::int8_t> y;          ///< 1 = sensitive, 0 = resistant
  std::int64_t n_sensitive = 0;
  std::int64_t n_resistant = 0;
  std::map<std::string, std::int64_t> dropped;  ///< value -> cells matching neither list
  std::int64_t n_dropped() const;
  bool one_class() const { return n_sensitive == 0 || n_resistant == 0; }
  /// "file: 812 sensitive, 0 resistant (one class), dropped 3 cells (value 'unknown' x3)".
  std::string summary(const std::string& file) const;
};

/// Labels every cell; a value in both lists is a ConfigError, a missing column a DataError listing the columns.
LabeledCells map_labels(const Table& obs, const LabelMapping& mapping, const std::string& file);

}  // namespace sdm
