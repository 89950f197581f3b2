#pragma once
// Writes a CellMatrix as a modern .h5ad (anndata >= 0.8 layout): CSR X, obs/var dataframes with
// categorical, string, numeric, bool and nullable columns, and scalar uns entries. Python anndata reads
// it back; bytes are reproducible (no HDF5 timestamps), so identical content hashes identically.
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm {

using UnsScalar = std::variant<std::string, double, std::int64_t>;

void write_h5ad(const std::string& path, const CellMatrix& cells, const std::map<std::string, UnsScalar>& uns = {});

/// Adds (or replaces) columns of an existing .h5ad's obs dataframe in place and lists them in its column-order.
/// Only the anndata >= 0.7 group layout is writable; a legacy compound obs, or a column whose length differs from
/// obs_names, is a DataError naming the file.
void add_obs_columns(const std::string& path, const std::vector<Column>& columns);

}  // namespace sdm
