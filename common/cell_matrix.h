#pragma once
// The in-memory dataset every model starts from: cells x genes in CSR float32, plus obs and var tables.
#include <cstdint>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/table.h"

namespace sdm {

struct CsrMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> indptr{0};  ///< rows + 1 entries
  BigVector<std::int32_t> indices;      ///< column of each stored value
  BigVector<float> data;

  std::int64_t nnz() const { return static_cast<std::int64_t>(data.size()); }
  std::size_t bytes() const;
  /// Sum of all stored values, accumulated in double.
  double sum() const;
  /// Throws DataError (naming `where`) if the structure is inconsistent: indptr not monotone, indices out of range.
  void validate(const std::string& where) const;
  CsrMatrix take_rows(const std::vector<std::size_t>& rows) const;
};

struct CellMatrix {
  CsrMatrix X;
  Table obs;  ///< rows = cells
  Table var;  ///< rows = genes
  std::string source;  ///< the file it came from

  std::int64_t n_obs() const { return X.rows; }
  std::int64_t n_vars() const { return X.cols; }
  CellMatrix take_cells(const std::vector<std::size_t>& rows) const;
};

}  // namespace sdm
