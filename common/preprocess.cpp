#include "common/preprocess.h"

#include <algorithm>
#include <unordered_map>
#include <array>
#include <cctype>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/text.h"

namespace sdm {

ValueKind parse_value_kind(const std::string& text, const std::string& field) {
  if (text == "counts") return ValueKind::kCounts;
  if (text == "log1p") return ValueKind::kLog1p;
  throw ConfigError({"", field, text}, "unknown value kind; expected 'counts' or 'log1p'");
}

void check_values(const CsrMatrix& X, ValueKind kind, const std::string& file, const std::string& matrix) {
  for (std::int64_t r = 0; r < X.rows; ++r) {
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) {
      const float v = X.data[k];
      auto where = [&] {
        return ErrorSite{file, matrix + "[cell " + std::to_string(r) + ", gene " + std::to_string(X.indices[k]) + "]",
                         std::to_string(v)};
      };
      if (!std::isfinite(v)) throw DataError(where(), "NaN or infinite value in the expression matrix");
      if (kind == ValueKind::kCounts && (v < 0.0F || v != std::nearbyint(v))) {
        throw DataError(where(), std::string(v < 0.0F ? "negative" : "non-integer") +
                                     " value where raw counts are expected; if this matrix is already normalized "
                                     "set `data.values: log1p`, or point `data.matrix` at the counts "
                                     "(`raw` or `layer:counts`)");
      }
    }
  }
}

void normalize_log1p(CsrMatrix& X, double target_sum) {
  for (std::int64_t r = 0; r < X.rows; ++r) {
    double total = 0.0;
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) total += X.data[k];
    const double scale = total > 0.0 ? target_sum / total : 0.0;
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) {
      X.data[k] = static_cast<float>(std::log1p(X.data[k] * scale));
    }
  }
}

namespace {

template <class Visit>
void for_rows(const CsrMatrix& X, const std::vector<std::size_t>& rows, Visit&& visit) {
  if (rows.empty()) {
    for (std::int64_t r = 0; r < X.rows; ++r) visit(r);
  } else {
    for (std::size_t r : rows) visit(static_cast<std::int64_t>(r));
  }
}

}  // namespace

GeneMoments gene_moments(const CsrMatrix& X, const std::vector<std::size_t>& rows) {
  const auto cols = static_cast<std::size_t>(X.cols);
  std::vector<double> sum(cols, 0.0), sum_sq(cols, 0.0);
  for_rows(X, rows, [&](std::int64_t r) {
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) {
      const double v = X.data[k];
      sum[X.indices[k]] += v;
      sum_sq[X.indices[k]] += v * v;
    }
  });
  const double n = rows.empty() ? static_cast<double>(X.rows) : static_cast<double>(rows.size());
  GeneMoments m{std::vector<double>(cols, 0.0), std::vector<double>(cols, 0.0)};
  for (std::size_t g = 0; g < cols; ++g) {
    m.mean[g] = n > 0 ? sum[g] / n : 0.0;
    m.var[g] = n > 1 ? std::max(0.0, (sum_sq[g] - n * m.mean[g] * m.mean[g]) / (n - 1.0)) : 0.0;
  }
  return m;
}

std::vector<double> loess_fit(const std::vector<double>& x, const std::vector<double>& y, double span) {
  const std::size_t n = x.size();
  std::vector<double> fitted(n, 0.0);
  if (n == 0) return fitted;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
  std::vector<double> xs(n), ys(n);
  for (std::size_t i = 0; i < n; ++i) {
    xs[i] = x[order[i]];
    ys[i] = y[order[i]];
  }
  const std::size_t q = std::clamp<std::size_t>(static_cast<std::size_t>(std::floor(span * static_cast<double>(n))), 1, n);
  std::size_t lo = 0;  // window [lo, lo + q) of the q nearest neighbours of xs[i]; slides right as i grows
  for (std::size_t i = 0; i < n; ++i) {
    while (lo + q < n && xs[lo + q] - xs[i] < xs[i] - xs[lo]) ++lo;
    const double dmax = std::max(xs[i] - xs[lo], xs[lo + q - 1] - xs[i]);
    // Weighted least squares of y on (1, u, u^2) with u = x - x_i: the fitted value at x_i is the intercept.
    std::array<double, 5> su{};  // sum w u^p, p = 0..4
    std::array<double, 3> sy{};  // sum w y u^p, p = 0..2
    for (std::size_t j = lo; j < lo + q; ++j) {
      const double u = xs[j] - xs[i];
      double w = 1.0;
      if (dmax > 0.0) {
        const double d = std::abs(u) / dmax;
        const double t = d < 1.0 ? 1.0 - d * d * d : 0.0;
        w = t * t * t;
      }
      double up = w;
      for (int p = 0; p < 5; ++p) {
        su[p] += up;
        if (p < 3) sy[p] += up * ys[j];
        up *= u;
      }
    }
    std::array<std::array<double, 4>, 3> a{{{su[0], su[1], su[2], sy[0]},
                                             {su[1], su[2], su[3], sy[1]},
                                             {su[2], su[3], su[4], sy[2]}}};
    // Gaussian elimination with partial pivoting; a (near) singular system falls back to the weighted mean.
    bool singular = su[0] <= 0.0;
    for (int c = 0; c < 3 && !singular; ++c) {
      int pivot = c;
      for (int r = c + 1; r < 3; ++r) {
        if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
      }
      if (std::abs(a[pivot][c]) < 1e-12 * std::max(1.0, std::abs(su[0]))) {
        singular = true;
        break;
      }
      std::swap(a[c], a[pivot]);
      for (int r = 0; r < 3; ++r) {
        if (r == c) continue;
        const double f = a[r][c] / a[c][c];
        for (int k = c; k < 4; ++k) a[r][k] -= f * a[c][k];
      }
    }
    fitted[order[i]] = singular ? (su[0] > 0.0 ? sy[0] / su[0] : ys[i]) : a[0][3] / a[0][0];
  }
  return fitted;
}

HvgResult highly_variable_genes(const CsrMatrix& counts, std::size_t n_top, const std::vector<std::size_t>& rows) {
  const auto cols = static_cast<std::size_t>(counts.cols);
  const GeneMoments m = gene_moments(counts, rows);
  const double n = rows.empty() ? static_cast<double>(counts.rows) : static_cast<double>(rows.size());
  std::vector<double> lx, ly;
  std::vector<std::size_t> varying;
  for (std::size_t g = 0; g < cols; ++g) {
    if (m.var[g] > 0.0) {
      varying.push_back(g);
      lx.push_back(std::log10(m.mean[g]));
      ly.push_back(std::log10(m.var[g]));
    }
  }
  const std::vector<double> fit = loess_fit(lx, ly, 0.3);
  std::vector<double> reg_sd(cols, 1.0);  // constant genes: 10^0, as scanpy leaves their estimate at 0
  for (std::size_t i = 0; i < varying.size(); ++i) reg_sd[varying[i]] = std::sqrt(std::pow(10.0, fit[i]));
  std::vector<double> clip(cols), sum(cols, 0.0), sum_sq(cols, 0.0);
  for (std::size_t g = 0; g < cols; ++g) clip[g] = m.mean[g] + std::sqrt(n) * reg_sd[g];
  for_rows(counts, rows, [&](std::int64_t r) {
    for (std::int64_t k = counts.indptr[r]; k < counts.indptr[r + 1]; ++k) {
      const auto g = static_cast<std::size_t>(counts.indices[k]);
      const double v = std::min<double>(counts.data[k], clip[g]);
      sum[g] += v;
      sum_sq[g] += v * v;
    }
  });
  HvgResult result;
  result.normalized_variance.assign(cols, 0.0);
  for (std::size_t g = 0; g < cols; ++g) {
    const double mu = m.mean[g];
    result.normalized_variance[g] =
        n > 1 ? (n * mu * mu + sum_sq[g] - 2.0 * sum[g] * mu) / ((n - 1.0) * reg_sd[g] * reg_sd[g]) : 0.0;
  }
  std::vector<std::int32_t> order(cols);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    return result.normalized_variance[a] > result.normalized_variance[b];
  });
  order.resize(std::min(n_top, cols));
  std::sort(order.begin(), order.end());
  result.genes = std::move(order);
  return result;
}

CsrMatrix select_columns(const CsrMatrix& X, const std::vector<std::int32_t>& columns) {
  std::vector<std::int32_t> new_index(static_cast<std::size_t>(X.cols), -1);
  for (std::size_t i = 0; i < columns.size(); ++i) new_index[columns[i]] = static_cast<std::int32_t>(i);
  CsrMatrix out;
  out.rows = X.rows;
  out.cols = static_cast<std::int64_t>(columns.size());
  out.indptr.assign(static_cast<std::size_t>(X.rows) + 1, 0);
  std::int64_t nnz = 0;
  for (std::int64_t k = 0; k < X.nnz(); ++k) nnz += new_index[X.indices[k]] >= 0;
  out.indices.resize(static_cast<std::size_t>(nnz));
  out.data.resize(static_cast<std::size_t>(nnz));
  std::int64_t at = 0;
  for (std::int64_t r = 0; r < X.rows; ++r) {
    const std::int64_t row_start = at;
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) {
      const std::int32_t c = new_index[X.indices[k]];
      if (c < 0) continue;
      out.indices[at] = c;
      out.data[at] = X.data[k];
      ++at;
    }
    // Keep each row's columns ascending even when `columns` reorders them.
    std::vector<std::pair<std::int32_t, float>> row;
    if (!std::is_sorted(out.indices.begin() + row_start, out.indices.begin() + at)) {
      for (std::int64_t k = row_start; k < at; ++k) row.emplace_back(out.indices[k], out.data[k]);
      std::sort(row.begin(), row.end());
      for (std::size_t i = 0; i < row.size(); ++i) {
        out.indices[row_start + static_cast<std::int64_t>(i)] = row[i].first;
        out.data[row_start + static_cast<std::int64_t>(i)] = row[i].second;
      }
    }
    out.indptr[r + 1] = at;
  }
  return out;
}

bool looks_like_ensembl_id(std::string_view name) {
  if (name.size() < 8 || name.substr(0, 3) != "ENS") return false;
  std::size_t i = 3;
  while (i < name.size() && std::isalpha(static_cast<unsigned char>(name[i]))) ++i;
  if (i == 3 || name[i - 1] != 'G') return false;  // ENSG, ENSMUSG, ...: gene ids, not transcripts
  const std::size_t digits = i;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i - digits < 5) return false;
  return i == name.size() || name[i] == '.';
}

std::string normalize_gene_name(std::string_view name) {
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.remove_prefix(1);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (looks_like_ensembl_id(out)) {
    if (auto dot = out.find('.'); dot != std::string::npos) out.resize(dot);
  }
  return out;
}

namespace {

std::vector<std::string> column_texts(const Column& column) {
  std::vector<std::string> out(column.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = column.text(i);
  return out;
}

bool mostly_ensembl(const std::vector<std::string>& names) {
  if (names.empty()) return false;
  std::size_t hits = 0;
  for (const auto& n : names) hits += looks_like_ensembl_id(normalize_gene_name(n));
  return hits * 10 >= names.size() * 9;
}

std::vector<std::string> normalized(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back(normalize_gene_name(n));
  return out;
}

}  // namespace

void check_unique_genes(const std::vector<std::string>& keys, const std::string& path) {
  std::unordered_map<std::string, std::size_t> seen;
  std::size_t repeated = 0;
  std::string first;
  for (const auto& k : keys) {
    if (k.empty()) continue;
    if (++seen[k] == 2) {
      ++repeated;
      if (first.empty()) first = k;
    }
  }
  if (repeated > 0) {
    throw DataError({path, "var_names", first},
                    "gene names are not unique (" + std::to_string(repeated) +
                        " repeated); make them unique (anndata: adata.var_names_make_unique()) or drop the duplicates");
  }
}

GeneKeys gene_keys(const Table& var) {
  static const std::vector<std::string> kSymbolColumns{"gene_symbols", "gene_symbol", "gene_name", "gene_names",
                                                       "feature_name", "symbol", "symbols", "Gene"};
  static const std::vector<std::string> kEnsemblColumns{"gene_ids", "gene_id", "ensembl_id", "ensembl",
                                                        "feature_id", "Accession"};
  GeneKeys keys;
  (mostly_ensembl(var.index) ? keys.ensembl : keys.symbols) = normalized(var.index);
  for (const auto& name : kEnsemblColumns) {
    if (!keys.ensembl.empty()) break;
    if (const Column* c = var.find(name); c && c->type != ColumnType::kFloat) {
      auto texts = column_texts(*c);
      if (mostly_ensembl(texts)) keys.ensembl = normalized(texts);
    }
  }
  for (const auto& name : kSymbolColumns) {
    if (!keys.symbols.empty()) break;
    if (const Column* c = var.find(name); c && c->type != ColumnType::kFloat) {
      auto texts = column_texts(*c);
      if (!mostly_ensembl(texts)) keys.symbols = normalized(texts);
    }
  }
  return keys;
}

std::int64_t LabeledCells::n_dropped() const {
  std::int64_t n = 0;
  for (const auto& [value, count] : dropped) n += count;
  return n;
}

std::string LabeledCells::summary(const std::string& file) const {
  std::ostringstream out;
  out << file << ": " << n_sensitive << " sensitive, " << n_resistant << " resistant";
  if (one_class()) out << " (one class)";
  if (!dropped.empty()) {
    out << ", dropped " << n_dropped() << " cells matching neither label (";
    bool first = true;
    for (const auto& [value, count] : dropped) {
      out << (first ? "" : ", ") << "'" << value << "' x" << count;
      first = false;
    }
    out << ")";
  }
  return out.str();
}

LabeledCells map_labels(const Table& obs, const LabelMapping& mapping, const std::string& file) {
  const Column& column = obs.at(mapping.column, file, "obs");
  const std::set<std::string> sensitive(mapping.sensitive.begin(), mapping.sensitive.end());
  const std::set<std::string> resistant(mapping.resistant.begin(), mapping.resistant.end());
  for (const auto& v : sensitive) {
    if (resistant.count(v)) throw ConfigError({"", "data.label", v}, "value listed as both sensitive and resistant");
  }
  LabeledCells out;
  for (std::size_t i = 0; i < obs.rows(); ++i) {
    const std::string value = column.is_missing(i) ? std::string("<missing>") : column.text(i);
    if (sensitive.count(value)) {
      out.rows.push_back(i);
      out.y.push_back(1);
      ++out.n_sensitive;
    } else if (resistant.count(value)) {
      out.rows.push_back(i);
      out.y.push_back(0);
      ++out.n_resistant;
    } else {
      ++out.dropped[value];
    }
  }
  return out;
}

}  // namespace sdm
