// Preprocessing against an independent numpy reference (tests/common/preprocess_reference.py), plus the
// bad-input and labelling rules of CONTRACTS §4.
#include "common/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/dataset_io.h"
#include "common/error.h"
#include "tests/common/python_reference.h"

namespace sdm {
namespace {

CsrMatrix small_matrix(std::vector<std::vector<float>> dense) {
  CsrMatrix m;
  m.rows = static_cast<std::int64_t>(dense.size());
  m.cols = static_cast<std::int64_t>(dense.at(0).size());
  for (const auto& row : dense) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (row[c] != 0.0F) {
        m.indices.push_back(static_cast<std::int32_t>(c));
        m.data.push_back(row[c]);
      }
    }
    m.indptr.push_back(static_cast<std::int64_t>(m.data.size()));
  }
  return m;
}

TEST(Preprocess, MatchesNumpyReference) {
  const auto path = (std::filesystem::temp_directory_path() / "sdm_preprocess_ref.h5ad").string();
  const auto ref = testing::python_json("preprocess_reference.py", "'" + path + "' 50");
  ASSERT_TRUE(ref.is_object());

  const CellMatrix cells = read_cells(path);
  const GeneMoments moments = gene_moments(cells.X);
  for (std::size_t g = 0; g < moments.mean.size(); ++g) {
    EXPECT_NEAR(moments.mean[g], ref["mean"][g].get<double>(), 1e-9 * (1 + moments.mean[g])) << g;
    EXPECT_NEAR(moments.var[g], ref["var"][g].get<double>(), 1e-7 * (1 + moments.var[g])) << g;
  }
  const HvgResult hvg = highly_variable_genes(cells.X, 50);
  for (std::size_t g = 0; g < hvg.normalized_variance.size(); ++g) {
    const double want = ref["norm_var"][g].get<double>();
    EXPECT_NEAR(hvg.normalized_variance[g], want, 1e-6 * (1 + std::abs(want))) << "gene " << g;
  }
  EXPECT_EQ(hvg.genes, ref["hvg"].get<std::vector<std::int32_t>>());

  CsrMatrix X = cells.X;
  normalize_log1p(X);
  for (std::int64_t r = 0; r < X.rows; ++r) {
    double s = 0;
    for (auto k = X.indptr[r]; k < X.indptr[r + 1]; ++k) s += X.data[k];
    EXPECT_NEAR(s, ref["row_sums_log1p"][r].get<double>(), 1e-4) << "cell " << r;
  }
  std::filesystem::remove(path);
}

TEST(Preprocess, LoessReproducesAQuadratic) {
  std::vector<double> x, y;
  for (int i = 0; i < 200; ++i) {
    x.push_back(i * 0.05);
    y.push_back(1.0 - 2.0 * x.back() + 0.5 * x.back() * x.back());
  }
  const auto fit = loess_fit(x, y, 0.3);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(fit[i], y[i], 1e-8);
}

TEST(Preprocess, NormalizeLeavesEmptyCellsZero) {
  CsrMatrix m = small_matrix({{1, 3, 0}, {0, 0, 0}, {2, 0, 2}});
  normalize_log1p(m, 4.0);
  ASSERT_EQ(m.nnz(), 4);
  EXPECT_FLOAT_EQ(m.data[0], std::log1p(1.0F));
  EXPECT_FLOAT_EQ(m.data[1], std::log1p(3.0F));
  EXPECT_FLOAT_EQ(m.data[2], std::log1p(2.0F));
  EXPECT_EQ(m.indptr[2] - m.indptr[1], 0);
}

TEST(Preprocess, CountsCheckNamesTheValueAndSuggestsTheFix) {
  const CsrMatrix fine = small_matrix({{1, 0}, {0, 7}});
  EXPECT_NO_THROW(check_values(fine, ValueKind::kCounts, "a.h5ad", "X"));
  const CsrMatrix fractional = small_matrix({{1.5F, 0}, {0, 7}});
  try {
    check_values(fractional, ValueKind::kCounts, "a.h5ad", "X");
    FAIL() << "non-integer counts accepted";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("a.h5ad"), std::string::npos) << what;
    EXPECT_NE(what.find("non-integer"), std::string::npos) << what;
    EXPECT_NE(what.find("data.values"), std::string::npos) << what;
    EXPECT_NE(what.find("data.matrix"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(check_values(fractional, ValueKind::kLog1p, "a.h5ad", "X"));
  EXPECT_THROW(check_values(small_matrix({{-1, 0}}), ValueKind::kCounts, "a.h5ad", "X"), DataError);
  const CsrMatrix with_nan = small_matrix({{std::numeric_limits<float>::quiet_NaN(), 1}});
  EXPECT_THROW(check_values(with_nan, ValueKind::kLog1p, "a.h5ad", "X"), DataError);
  EXPECT_THROW(parse_value_kind("normalized", "data.values"), ConfigError);
}

TEST(Preprocess, SelectColumnsKeepsRowsSorted) {
  const CsrMatrix m = small_matrix({{1, 2, 3}, {0, 5, 0}});
  const CsrMatrix s = select_columns(m, {2, 0});
  EXPECT_EQ(s.cols, 2);
  EXPECT_EQ(s.indptr, (std::vector<std::int64_t>{0, 2, 2}));
  EXPECT_EQ(s.indices[0], 0);
  EXPECT_EQ(s.data[0], 3.0F);
  EXPECT_EQ(s.data[1], 1.0F);
}

TEST(Preprocess, GeneNamesAndKeys) {
  EXPECT_EQ(normalize_gene_name(" tp53 "), "TP53");
  EXPECT_EQ(normalize_gene_name("ENSG00000141510.16"), "ENSG00000141510");
  EXPECT_TRUE(looks_like_ensembl_id("ENSMUSG00000059552"));
  EXPECT_FALSE(looks_like_ensembl_id("ENST00000269305"));  // transcript
  EXPECT_FALSE(looks_like_ensembl_id("ENSA"));
  Table var;
  var.index = {"TP53", "egfr", "MYC"};
  var.columns.push_back({"gene_ids", ColumnType::kString, {"ENSG00000141510.3", "ENSG00000146648", "ENSG00000136997"},
                         {}, {}, {}, {}, false});
  GeneKeys keys = gene_keys(var);
  EXPECT_EQ(keys.symbols, (std::vector<std::string>{"TP53", "EGFR", "MYC"}));
  EXPECT_EQ(keys.ensembl[0], "ENSG00000141510");
  // Ensembl ids in the index, symbols in a column (Cell Ranger style after var_names = gene_ids).
  Table swapped;
  swapped.index = keys.ensembl;
  swapped.columns.push_back({"gene_symbols", ColumnType::kString, {"TP53", "EGFR", "MYC"}, {}, {}, {}, {}, false});
  GeneKeys keys2 = gene_keys(swapped);
  EXPECT_EQ(keys2.ensembl, keys.ensembl);
  EXPECT_EQ(keys2.symbols, keys.symbols);
}

Table obs_with(std::vector<std::string> values) {
  Table obs;
  for (std::size_t i = 0; i < values.size(); ++i) obs.index.push_back("c" + std::to_string(i));
  obs.columns.push_back({"response", ColumnType::kString, std::move(values), {}, {}, {}, {}, false});
  return obs;
}

TEST(Preprocess, LabelMappingDropsAndCounts) {
  const Table obs = obs_with({"responder", "non-responder", "unknown", "responder", "unknown", "NR"});
  LabelMapping mapping{"response", {"responder"}, {"non-responder", "NR"}};
  const LabeledCells labels = map_labels(obs, mapping, "d.h5ad");
  EXPECT_EQ(labels.rows, (std::vector<std::size_t>{0, 1, 3, 5}));
  EXPECT_EQ(labels.y, (std::vector<std::int8_t>{1, 0, 1, 0}));
  EXPECT_EQ(labels.n_dropped(), 2);
  EXPECT_FALSE(labels.one_class());
  EXPECT_NE(labels.summary("d.h5ad").find("'unknown' x2"), std::string::npos) << labels.summary("d.h5ad");
}

TEST(Preprocess, OneClassIsReportedNotFatal) {
  const LabeledCells labels = map_labels(obs_with({"responder", "responder"}),
                                         {"response", {"responder"}, {"NR"}}, "d.h5ad");
  EXPECT_TRUE(labels.one_class());
  EXPECT_NE(labels.summary("d.h5ad").find("one class"), std::string::npos);
}

TEST(Preprocess, LabelMappingErrors) {
  const Table obs = obs_with({"a"});
  try {
    map_labels(obs, {"condition", {"a"}, {"b"}}, "d.h5ad");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("response"), std::string::npos) << e.what();  // lists what exists
  }
  EXPECT_THROW(map_labels(obs, {"response", {"a"}, {"a"}}, "d.h5ad"), ConfigError);
}

TEST(GeneKeys, RepeatedGeneNamesAreOneErrorNamingTheFirst) {
  EXPECT_NO_THROW(check_unique_genes({"CD3E", "MS4A1", "", ""}, "d.h5ad"));  // empty names are not genes
  try {
    check_unique_genes({"CD3E", "MS4A1", "CD3E", "MS4A1", "CD3E"}, "d.h5ad");
    FAIL() << "no error";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("d.h5ad"), std::string::npos) << what;
    EXPECT_NE(what.find("CD3E"), std::string::npos) << what;
    EXPECT_NE(what.find("2 repeated"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace sdm
