// Every shared fixture (real files written by anndata 0.5-0.11, scanpy, Cell Ranger, loompy) must read with
// the same shape, values and annotations that Python's anndata / h5py see, computed here at test time.
#include "common/dataset_io.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/anndata_writer.h"
#include "common/error.h"

namespace sdm {
namespace {

std::string fixture(const std::string& name) {
  return name.find('/') == std::string::npos ? std::string(SDM_FIXTURES) + "/" + name : name;
}

nlohmann::json python_reference(const std::string& path, const std::string& matrix = "X") {
  const std::string cmd = std::string(SDM_PYTHON) + " " + SDM_TEST_DIR + "/fixture_reference.py '" + path + "' " + matrix;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (pipe && std::fgets(buf, sizeof buf, pipe)) out += buf;
  const int rc = pipe ? pclose(pipe) : -1;
  EXPECT_EQ(rc, 0) << cmd;
  return nlohmann::json::parse(out);
}

std::int64_t count_nonzero(const CsrMatrix& m) {
  std::int64_t n = 0;
  for (float v : m.data) n += v != 0.0f;
  return n;
}

double row_sum(const CsrMatrix& m, std::size_t r) {
  double s = 0;
  for (auto k = m.indptr[r]; k < m.indptr[r + 1]; ++k) s += m.data[static_cast<std::size_t>(k)];
  return s;
}

void expect_matches_reference(const std::string& name, const std::string& matrix = "X") {
  SCOPED_TRACE(name + " [" + matrix + "]");
  const std::string path = fixture(name);
  const auto ref = python_reference(path, matrix);
  ReadOptions options;
  options.matrix = matrix;
  const CellMatrix m = read_cells(path, options);
  EXPECT_EQ(m.n_obs(), ref["n_obs"].get<std::int64_t>());
  EXPECT_EQ(m.n_vars(), ref["n_vars"].get<std::int64_t>());
  EXPECT_EQ(static_cast<std::int64_t>(m.obs.rows()), m.n_obs());
  EXPECT_EQ(static_cast<std::int64_t>(m.var.rows()), m.n_vars());
  EXPECT_EQ(count_nonzero(m.X), ref["nonzero"].get<std::int64_t>());
  const double sum = ref["sum"].get<double>();
  EXPECT_NEAR(m.X.sum(), sum, 1e-5 * std::max(1.0, std::abs(sum)));
  const auto& row_sums = ref["row_sums"];
  for (std::size_t r = 0; r < row_sums.size(); ++r)
    EXPECT_NEAR(row_sum(m.X, r), row_sums[r].get<double>(), 1e-4 * std::max(1.0, std::abs(row_sums[r].get<double>()))) << "row " << r;
  if (ref.contains("obs_names")) {
    for (std::size_t i = 0; i < ref["obs_names"].size(); ++i) EXPECT_EQ(m.obs.index[i], ref["obs_names"][i]);
  }
  for (std::size_t i = 0; i < ref["var_names"].size(); ++i) EXPECT_EQ(m.var.index[i], ref["var_names"][i]);
  if (!ref.contains("obs_columns")) return;
  ASSERT_EQ(m.obs.columns.size(), ref["obs_columns"].size());
  for (std::size_t i = 0; i < m.obs.columns.size(); ++i) {
    const auto& col = m.obs.columns[i];
    const auto& want = ref["obs_columns"][i];
    EXPECT_EQ(col.name, want["name"]);
    EXPECT_EQ(column_type_name(col.type), want["type"].get<std::string>()) << col.name;
    if (want.contains("categories")) {
      EXPECT_EQ(col.categories, want["categories"].get<std::vector<std::string>>()) << col.name;
      for (std::size_t r = 0; r < want["head"].size(); ++r) EXPECT_EQ(col.text(r), want["head"][r]) << col.name << " row " << r;
    }
  }
  ASSERT_EQ(m.var.columns.size(), ref["var_columns"].size());
  for (std::size_t i = 0; i < m.var.columns.size(); ++i)
    EXPECT_EQ(column_type_name(m.var.columns[i].type), ref["var_columns"][i]["type"].get<std::string>()) << m.var.columns[i].name;
}

}  // namespace

std::string run_command(const std::string& cmd) {
  std::FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (pipe && std::fgets(buf, sizeof buf, pipe)) out += buf;
  EXPECT_EQ(pipe ? pclose(pipe) : -1, 0) << cmd;
  return out;
}

TEST(Fixtures, ModernCsrKitchenSink) {
  expect_matches_reference("modern_kitchensink_anndataR_example.h5ad");
  expect_matches_reference("modern_kitchensink_anndataR_example.h5ad", "layer:counts");
  expect_matches_reference("modern_kitchensink_anndataR_example.h5ad", "layer:csc_counts");
  expect_matches_reference("modern_kitchensink_anndataR_example.h5ad", "layer:dense_counts");
}
TEST(Fixtures, ModernDenseWithRaw) {
  expect_matches_reference("modern_denseX_scanpy_pbmc68k_reduced.h5ad");
  expect_matches_reference("modern_denseX_scanpy_pbmc68k_reduced.h5ad", "raw");
}
TEST(Fixtures, LegacyCompound06) {
  expect_matches_reference("legacy06_compound_anndata_v0.5.0_pbmc68k.h5ad");
  expect_matches_reference("legacy06_compound_anndata_v0.5.0_pbmc68k.h5ad", "raw");
}
TEST(Fixtures, Legacy07Categoricals) { expect_matches_reference("legacy07_zellkonverter_krumsiek11.h5ad"); }
TEST(Fixtures, Legacy07Lzf) {
  expect_matches_reference("legacy07_lzf_anndata_v0.7.8.h5ad");
  expect_matches_reference("legacy07_lzf_anndata_v0.7.8.h5ad", "raw");
}
TEST(Fixtures, ModernCscX) { expect_matches_reference("modern_cscX_pertpy_sc_sim.h5ad"); }
TEST(Fixtures, TenxV3) { expect_matches_reference("10x_v3_filtered_feature_bc_matrix.h5"); }
TEST(Fixtures, TenxV2) { expect_matches_reference("10x_v2_filtered_gene_bc_matrices_h5.h5"); }
TEST(Fixtures, Loom) { expect_matches_reference("loom_v3_loompy_test.loom"); }

TEST(Fixtures, SameDataInTwoFormatsReadsIdentically) {
  const auto modern = read_cells(fixture("modern_denseX_scanpy_pbmc68k_reduced.h5ad"));
  const auto legacy = read_cells(fixture("legacy06_compound_anndata_v0.5.0_pbmc68k.h5ad"));
  EXPECT_EQ(modern.X.indptr, legacy.X.indptr);
  EXPECT_EQ(modern.X.indices, legacy.X.indices);
  EXPECT_EQ(modern.X.data, legacy.X.data);
  EXPECT_EQ(modern.obs.index, legacy.obs.index);
  EXPECT_EQ(modern.obs.at("bulk_labels", "", "obs").ints, legacy.obs.at("bulk_labels", "", "obs").ints);
}

TEST(Fixtures, RowRangesMatchTheFullRead) {
  for (const char* name : {"modern_kitchensink_anndataR_example.h5ad", "modern_cscX_pertpy_sc_sim.h5ad",
                           "modern_denseX_scanpy_pbmc68k_reduced.h5ad", "10x_v3_filtered_feature_bc_matrix.h5"}) {
    SCOPED_TRACE(name);
    const auto full = read_cells(fixture(name));
    ReadOptions o;
    o.row_begin = 7;
    o.row_end = 19;
    const auto part = read_cells(fixture(name), o);
    std::vector<std::size_t> rows;
    for (std::size_t r = 7; r < 19; ++r) rows.push_back(r);
    const auto expect = full.take_cells(rows);
    EXPECT_EQ(part.X.indptr, expect.X.indptr);
    EXPECT_EQ(part.X.indices, expect.X.indices);
    EXPECT_EQ(part.X.data, expect.X.data);
    EXPECT_EQ(part.obs.index, expect.obs.index);
  }
}

TEST(Fixtures, NoXFileHasShapeButNoMatrix) {
  const auto info = inspect_file(fixture("modern_noX_anndata_v0.11.4.h5ad"));
  EXPECT_EQ(info.n_obs, 10);
  EXPECT_EQ(info.n_vars, 20);
  EXPECT_EQ(info.x_encoding, "none");
  EXPECT_THROW(read_cells(fixture("modern_noX_anndata_v0.11.4.h5ad")), DataError);
}

TEST(Inspect, ReportsEncodingsAsStored) {
  const auto kitchen = inspect_file(fixture("modern_kitchensink_anndataR_example.h5ad"));
  EXPECT_EQ(kitchen.format, "h5ad");
  EXPECT_EQ(kitchen.encoding_version, "0.1.0");
  EXPECT_EQ(kitchen.x_encoding, "csr");
  EXPECT_EQ(kitchen.x_dtype, "float32");
  EXPECT_EQ(kitchen.nnz, 4317);
  EXPECT_EQ(kitchen.layers, (std::vector<std::string>{"counts", "csc_counts", "dense_X", "dense_counts"}));
  const auto tenx = inspect_file(fixture("10x_v3_filtered_feature_bc_matrix.h5"));
  EXPECT_EQ(tenx.format, "10x-h5");
  EXPECT_EQ(tenx.x_encoding, "csc");
  EXPECT_EQ(tenx.n_obs, 1107);
  EXPECT_EQ(tenx.nnz, 23866);
  const auto dense = inspect_file(fixture("modern_denseX_scanpy_pbmc68k_reduced.h5ad"));
  EXPECT_EQ(dense.x_encoding, "dense");
  const auto json = to_json(dense);
  for (const char* key : {"format", "encoding_version", "n_obs", "n_vars", "x_encoding", "x_dtype", "nnz", "layers",
                          "obs_columns", "var_columns"})
    EXPECT_TRUE(json.contains(key)) << key;
  EXPECT_EQ(json["obs_columns"][0]["categories"].size(), 10u);
  EXPECT_EQ(inspect_file(fixture("loom_v3_loompy_test.loom")).encoding_version, "3.0.0");
}

TEST(BadInput, TruncatedCorruptAndForeignFilesGiveOneClearError) {
  const auto dir = std::filesystem::temp_directory_path() / "sdm_bad_input";
  std::filesystem::create_directories(dir);
  for (const char* name : {"modern_kitchensink_anndataR_example.h5ad", "modern_denseX_scanpy_pbmc68k_reduced.h5ad",
                           "10x_v3_filtered_feature_bc_matrix.h5", "legacy06_compound_anndata_v0.5.0_pbmc68k.h5ad"}) {
    for (double keep : {0.1, 0.5, 0.9}) {
      const auto copy = (dir / ("cut_" + std::to_string(static_cast<int>(keep * 10)) + "_" + name)).string();
      std::filesystem::copy_file(fixture(name), copy, std::filesystem::copy_options::overwrite_existing);
      std::filesystem::resize_file(copy, static_cast<std::uintmax_t>(static_cast<double>(std::filesystem::file_size(copy)) * keep));
      try {
        read_cells(copy);
        ADD_FAILURE() << copy << " read without error";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(copy), std::string::npos) << e.what();
      }
    }
  }
  const auto text = (dir / "notes.h5ad").string();
  std::ofstream(text) << "not hdf5";
  EXPECT_THROW(read_cells(text), IoError);
  EXPECT_THROW(read_cells((dir / "missing.h5ad").string()), IoError);
  std::filesystem::remove_all(dir);
}

TEST(BadInput, MissingLayerSuggestsTheExistingOnes) {
  ReadOptions o;
  o.matrix = "layer:count";
  try {
    read_cells(fixture("modern_kitchensink_anndataR_example.h5ad"), o);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no such layer; did you mean 'counts'?"), std::string::npos) << e.what();
  }
}

}  // namespace sdm

namespace sdm {

// anndata (Python) writes X as dense/CSR/CSC in several dtypes, with every obs column kind; we read the same.
TEST(Interop, WhatAnndataWritesReadsEqual) {
  const auto dir = (std::filesystem::temp_directory_path() / "sdm_anndata_variants").string();
  std::filesystem::remove_all(dir);
  const std::string listing =
      run_command(std::string(SDM_PYTHON) + " " + SDM_TEST_DIR + "/write_anndata_variants.py " + dir);
  std::size_t files = 0;
  for (std::size_t start = 0, nl; (nl = listing.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string path = dir + "/" + listing.substr(start, nl - start);
    expect_matches_reference(path);
    expect_matches_reference(path, "layer:counts");
    ++files;
  }
  EXPECT_EQ(files, 7u);
  std::filesystem::remove_all(dir);
}

// Our writer's files read back equal in Python anndata: matrix, names, every column kind, categories.
TEST(Interop, OurWriterReadsBackInAnndata) {
  CellMatrix m;
  m.X.rows = 4;
  m.X.cols = 3;
  m.X.indptr = {0, 2, 2, 3, 5};
  m.X.indices = {0, 2, 1, 0, 1};
  m.X.data = {1, 5, 2, 7, 0.5f};
  m.obs.index = {"c1", "c2", "c3", "c4"};
  m.var.index = {"TP53", "EGFR", "MYC"};
  Column cond{"condition", ColumnType::kCategorical, {}, {1, 0, -1, 1}, {}, {}, {"resistant", "sensitive"}, false};
  Column stage{"stage", ColumnType::kCategorical, {}, {0, 1, 2, 0}, {}, {}, {"I", "II", "III"}, true};
  Column donor{"donor", ColumnType::kString, {"a", "b", "a", "c"}, {}, {}, {}, {}, false};
  Column depth{"n_counts", ColumnType::kFloat, {}, {}, {6, 0, 2, 7.5}, {}, {}, false};
  Column batch{"batch", ColumnType::kInt, {}, {3, 1, 4, 1}, {}, {}, {}, false};
  Column flag{"doublet", ColumnType::kBool, {}, {0, 1, 0, 0}, {}, {}, {}, false};
  Column nint{"maybe_int", ColumnType::kNullableInt, {}, {5, 0, 7, 8}, {}, {0, 1, 0, 0}, {}, false};
  Column nbool{"maybe_bool", ColumnType::kNullableBool, {}, {1, 0, 0, 1}, {}, {0, 0, 1, 0}, {}, false};
  m.obs.columns = {cond, stage, donor, depth, batch, flag, nint, nbool};
  Column ids{"gene_ids", ColumnType::kString, {"ENSG1", "ENSG2", "ENSG3"}, {}, {}, {}, {}, false};
  m.var.columns = {ids};
  const auto path = (std::filesystem::temp_directory_path() / "sdm_writer_test.h5ad").string();
  write_h5ad(path, m, {{"dataset_id", std::string("P01")}, {"scale", 0.02}, {"seed", std::int64_t{3}}});

  const auto ref = python_reference(path);
  EXPECT_EQ(ref["n_obs"], 4);
  EXPECT_EQ(ref["n_vars"], 3);
  EXPECT_EQ(ref["nonzero"], 5);
  EXPECT_DOUBLE_EQ(ref["sum"].get<double>(), 15.5);
  EXPECT_EQ(ref["row_sums"], nlohmann::json::parse("[6.0, 0.0, 2.0, 7.5]"));
  EXPECT_EQ(ref["var_names"], nlohmann::json::parse(R"(["TP53", "EGFR", "MYC"])"));
  const std::vector<std::string> types{"categorical", "categorical", "string", "float", "int", "bool", "nullable-int", "nullable-bool"};
  ASSERT_EQ(ref["obs_columns"].size(), types.size());
  for (std::size_t i = 0; i < types.size(); ++i) EXPECT_EQ(ref["obs_columns"][i]["type"], types[i]) << i;
  EXPECT_EQ(ref["obs_columns"][0]["head"], nlohmann::json::parse(R"(["sensitive", "resistant", "", "sensitive"])"));
  // ... and we read our own file back identically.
  const auto back = read_cells(path);
  EXPECT_EQ(back.X.data, m.X.data);
  EXPECT_EQ(back.X.indptr, m.X.indptr);
  EXPECT_EQ(back.obs.at("stage", path, "obs").ordered, true);
  EXPECT_EQ(back.obs.at("maybe_bool", path, "obs").missing, nbool.missing);
  std::filesystem::remove(path);
}

TEST(Interop, WriterRefusesInconsistentShapes) {
  CellMatrix m;
  m.X.rows = 2;
  m.X.cols = 1;
  m.X.indptr = {0, 1, 1};
  m.X.indices = {0};
  m.X.data = {1};
  m.obs.index = {"only-one"};
  m.var.index = {"G"};
  EXPECT_THROW(write_h5ad((std::filesystem::temp_directory_path() / "bad.h5ad").string(), m), DataError);
}

}  // namespace sdm

namespace sdm {

TEST(Tsv, ReadsPlainAndGzippedScDrugMapLayout) {
  const auto dir = std::filesystem::temp_directory_path() / "sdm_tsv_test";
  std::filesystem::create_directories(dir);
  const std::string plain = (dir / "P01.tsv").string();
  std::ofstream(plain) << "Cell_barcode\tCondition\tTP53\tEGFR\tMYC\n"
                          "AAAC-1\tsensitive\t0\t3\t1.5\n"
                          "AAAG-1\tresistant\t2\t0\t0\n"
                          "AACT-1\tsensitive\t0\t0\t4\n";
  ASSERT_EQ(std::system(("gzip -kf " + plain).c_str()), 0);
  for (const std::string& path : {plain, plain + ".gz"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(detect_format(path), FileFormat::kTsv);
    const auto m = read_cells(path);
    EXPECT_EQ(m.n_obs(), 3);
    EXPECT_EQ(m.var.index, (std::vector<std::string>{"TP53", "EGFR", "MYC"}));
    EXPECT_EQ(m.obs.index[1], "AAAG-1");
    EXPECT_EQ(m.X.indptr, (std::vector<std::int64_t>{0, 2, 3, 4}));
    EXPECT_DOUBLE_EQ(m.X.sum(), 10.5);
    const auto& cond = m.obs.at("condition", path, "obs");
    EXPECT_EQ(cond.categories, (std::vector<std::string>{"resistant", "sensitive"}));
    EXPECT_EQ(cond.text(0), "sensitive");
    EXPECT_EQ(inspect_file(path).nnz, 4);
  }
  const std::string bad = (dir / "bad.tsv").string();
  std::ofstream(bad) << "Cell_barcode\tCondition\tTP53\nA\tsensitive\tlots\n";
  try {
    read_cells(bad);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, gene TP53 = 'lots': not a number"), std::string::npos) << e.what();
  }
  const std::string ragged = (dir / "ragged.tsv").string();
  std::ofstream(ragged) << "Cell_barcode\tCondition\tTP53\tEGFR\nA\tsensitive\t1\n";
  EXPECT_THROW(read_cells(ragged), DataError);
  std::filesystem::remove_all(dir);
}

}  // namespace sdm
