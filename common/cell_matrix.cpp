#include "common/cell_matrix.h"

#include "common/error.h"

namespace sdm {

std::size_t CsrMatrix::bytes() const {
  return indptr.size() * sizeof(std::int64_t) + indices.size() * sizeof(std::int32_t) + data.size() * sizeof(float);
}

double CsrMatrix::sum() const {
  double s = 0;
  for (float v : data) s += v;
  return s;
}

void CsrMatrix::validate(const std::string& where) const {
  if (static_cast<std::int64_t>(indptr.size()) != rows + 1 || indptr.front() != 0 || indptr.back() != nnz())
    throw DataError({where, "indptr", ""}, "has " + std::to_string(indptr.size()) + " entries ending at " +
                                               std::to_string(indptr.empty() ? 0 : indptr.back()) + "; expected " +
                                               std::to_string(rows + 1) + " ending at nnz " + std::to_string(nnz()));
  for (std::int64_t r = 0; r < rows; ++r)
    if (indptr[static_cast<std::size_t>(r) + 1] < indptr[static_cast<std::size_t>(r)])
      throw DataError({where, "indptr", std::to_string(r)}, "decreases at this row (corrupt sparse matrix)");
  for (std::int32_t c : indices)
    if (c < 0 || c >= cols)
      throw DataError({where, "indices", std::to_string(c)}, "column index outside 0.." + std::to_string(cols - 1));
}

CsrMatrix CsrMatrix::take_rows(const std::vector<std::size_t>& pick) const {
  CsrMatrix out;
  out.rows = static_cast<std::int64_t>(pick.size());
  out.cols = cols;
  out.indptr.reserve(pick.size() + 1);
  for (std::size_t r : pick) {
    const auto b = static_cast<std::size_t>(indptr[r]), e = static_cast<std::size_t>(indptr[r + 1]);
    out.indices.insert(out.indices.end(), indices.begin() + static_cast<std::ptrdiff_t>(b), indices.begin() + static_cast<std::ptrdiff_t>(e));
    out.data.insert(out.data.end(), data.begin() + static_cast<std::ptrdiff_t>(b), data.begin() + static_cast<std::ptrdiff_t>(e));
    out.indptr.push_back(static_cast<std::int64_t>(out.data.size()));
  }
  return out;
}

CellMatrix CellMatrix::take_cells(const std::vector<std::size_t>& rows) const {
  CellMatrix out;
  out.X = X.take_rows(rows);
  out.obs = obs.take(rows);
  out.var = var;
  out.source = source;
  return out;
}

}  // namespace sdm
