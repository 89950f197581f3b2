// `sdm export --by` / `--layout paper`: grouping hand-made cells by setting and by the catalog's tissue, therapy
// and cancer type, with mean ± s.e.m. values worked out by hand.
#include "orchestrator/result_groups.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace sdm::orchestrator {
namespace {

CellRecord cell(const std::string& id, const std::string& model, const std::string& protocol,
                const std::string& test_group, double f1, std::int64_t seed = 0, const std::string& status = "done") {
  CellRecord c;
  c.set("cell_id", id);
  c.set("model", model);
  c.set("preset", std::string("default"));
  c.set("strategy", std::string("freeze"));
  c.set("protocol", protocol);
  c.set("split", std::string(protocol == "pooled" ? "cell" : "dataset"));
  c.set("test_group", test_group);
  c.set("train_groups", std::string(protocol == "pooled" ? "P01,P02,P03" : "P02,P03"));
  c.set("seed", seed);
  c.set("status", status);
  c.set("f1", f1);
  c.set("auroc", f1 + 0.1);
  return c;
}

BreakdownEntry row(const std::string& cell_id, const std::string& dataset, double f1) {
  return {cell_id, dataset, {{"f1", f1}, {"auroc", f1 + 0.1}, {"n_test", 10}}};
}

/// P01 and P02 share a tissue (bone marrow) and a cancer type (MM); P03 is a cell line of another cancer.
jobs::Catalog small_catalog() {
  const auto path = std::filesystem::temp_directory_path() / "sdm_result_groups_catalog.yaml";
  std::ofstream(path) << R"(collection: primary
datasets:
  - {id: P01, name: a, tissue: bone marrow, cancer_level1: MM, cancer_level2: MM, therapy: targeted, cells: 10, count_source: exact}
  - {id: P02, name: b, tissue: bone marrow, cancer_level1: MM, cancer_level2: MM, therapy: immunotherapy, cells: 10, count_source: exact}
  - {id: P03, name: c, tissue: cell line, cancer_level1: breast, cancer_level2: TNBC, therapy: chemotherapy, cells: 10, count_source: exact}
)";
  return jobs::Catalog::load(path.string());
}

// Cross-data: logreg held out P01 twice (seeds 0, 1: F1 0.8, 0.9) and P03 once (0.6); mlp held out P03 (0.5).
// Pooled: logreg folds a and b, each with per-dataset breakdown rows; a failed cell that must not count.
std::vector<CellRecord> cells() {
  return {
      cell("x1", "logreg", "cross-data", "P01", 0.8, 0),           cell("x2", "logreg", "cross-data", "P01", 0.9, 1),
      cell("x3", "logreg", "cross-data", "P03", 0.6, 0),           cell("x4", "mlp", "cross-data", "P03", 0.5, 0),
      cell("pa", "logreg", "pooled", "fold-1/2", 0.95, 0),         cell("pb", "logreg", "pooled", "fold-2/2", 0.85, 0),
      cell("bad", "logreg", "cross-data", "P02", NAN, 0, "failed")};
}

std::vector<BreakdownEntry> breakdown() {
  return {row("pa", "P01", 1.0), row("pa", "P02", 0.8), row("pa", "P03", 0.9),
          row("pb", "P01", 0.9), row("pb", "P02", 0.7), row("pb", "P03", 0.6)};
}

/// The table as display formats show it, with 3 decimals.
std::vector<std::vector<std::string>> shown(const Table& t) { return display_cells(t, 3).rows; }
std::vector<std::string> header(const Table& t) { return display_cells(t, 3).header; }

TEST(Aggregate, MeanAndStandardErrorOfTheMean) {
  const Aggregate a = aggregate({0.8, 0.9, NAN});
  EXPECT_EQ(a.n, 2U);
  EXPECT_NEAR(a.mean, 0.85, 1e-12);
  EXPECT_NEAR(a.sem, 0.05, 1e-12);  // sd = 0.0707..., / sqrt(2)
  const Estimate e = to_estimate(a, 3);
  EXPECT_EQ(e.n, 2);
  EXPECT_EQ(e.of, 3);
  EXPECT_EQ(e.mean, a.mean);
  EXPECT_EQ(e.spread, a.sem);
  const Aggregate one = aggregate({0.7});
  EXPECT_EQ(one.n, 1U);
  EXPECT_TRUE(std::isnan(one.sem));
  EXPECT_EQ(aggregate({}).n, 0U);
  EXPECT_TRUE(std::isnan(aggregate({}).mean));
}

TEST(GroupedTable, ByModelAndProtocolUsesEachDoneCellOnce) {
  const auto obs = observations(cells(), breakdown(), nullptr, {"model", "protocol"});
  ASSERT_EQ(obs.size(), 6U);  // the failed cell is left out
  const auto t = grouped_table(obs, {"model", "protocol"}, {"f1"});
  ASSERT_EQ(header(t), (std::vector<std::string>{"model", "protocol", "n", "f1"}));
  ASSERT_EQ(t.size(), 3U);
  // logreg cross-data: 0.8, 0.9, 0.6 -> mean 0.7667, sd 0.1528, s.e.m. 0.0882
  EXPECT_EQ(shown(t)[0], (std::vector<std::string>{"logreg", "cross-data", "3", "0.767 \u00b1 0.088"}));
  // logreg pooled: 0.95, 0.85 -> 0.900 ± 0.050
  EXPECT_EQ(shown(t)[1], (std::vector<std::string>{"logreg", "pooled", "2", "0.900 \u00b1 0.050"}));
  EXPECT_EQ(shown(t)[2], (std::vector<std::string>{"mlp", "cross-data", "1", "0.500"}));
  // the value itself, unrounded: (0.8 + 0.9 + 0.6) / 3 and its s.e.m.
  const auto& f1 = std::get<Estimate>(t.at(0, "f1"));
  EXPECT_DOUBLE_EQ(f1.mean, (0.8 + 0.9 + 0.6) / 3);
  EXPECT_NEAR(f1.spread, 0.0881917, 1e-6);
  EXPECT_EQ(f1.n, 3);
  EXPECT_EQ(std::get<std::int64_t>(t.at(0, "n")), 3);
}

TEST(GroupedTable, BootstrapIntervalsOverUnitsAndOverTestCells) {
  const auto obs = observations(cells(), breakdown(), nullptr, {"model", "protocol"});
  const auto t = grouped_table(obs, {"model", "protocol"}, {"f1"}, CiOptions{"units", 500, 3, nullptr});
  ASSERT_EQ(header(t).back(), "f1 95% CI (units)");
  EXPECT_EQ(machine_columns(t).names.back(), "f1_ci_high");
  // logreg cross-data resamples {0.8, 0.9, 0.6}: the mean lies in [0.6, 0.9], the interval inside it and around 0.767
  const auto& ci = std::get<Bounds>(t.at(0, "f1_ci"));
  const double low = ci.low, high = ci.high;
  EXPECT_GE(low, 0.6);
  EXPECT_LE(high, 0.9);
  EXPECT_LT(low, 0.7667);
  EXPECT_GT(high, 0.7667);
  EXPECT_LT(low, high);
  EXPECT_EQ(shown(grouped_table(obs, {"model", "protocol"}, {"f1"}, CiOptions{"units", 500, 3, nullptr})), shown(t));  // seeded
  // over test cells: a cell whose predictions are all right has F1 1 on every resample
  std::map<std::string, CellPredictions> predictions;
  for (const auto& o : obs) predictions[o.cell_id] = {{"P01", "P01", "P01", "P01"}, {1, 0, 1, 0}, {0.9, 0.1, 0.8, 0.3}};
  const auto c = grouped_table(obs, {"model", "protocol"}, {"f1"}, CiOptions{"cells", 200, 1, &predictions});
  EXPECT_EQ(shown(c)[0].back(), "[1.000, 1.000] (12 cells)");
  const auto m = machine_columns(c);
  ASSERT_EQ(m.names.size(), 10U);  // model protocol n f1 f1_sem f1_n f1_ci_low f1_ci_high f1_ci_cells f1_ci_note
  EXPECT_EQ(m.names.back(), "f1_ci_note");
  EXPECT_EQ(std::get<std::int64_t>(m.rows[0][m.names.size() - 2]), 12);
  // the paper layout and the pivot follow each entry with its interval column
  const auto paper = paper_table(obs, {}, "f1", CiOptions{"cells", 200, 1, &predictions});
  EXPECT_EQ(shown(paper)[0][2], "[1.000, 1.000] (12 cells)") << shown(paper)[0][2];
  const auto pivot = pivot_table(cells(), {"model"}, "protocol", "f1", CiOptions{"units", 200, 1, nullptr});
  EXPECT_EQ(shown(pivot)[0][1], "0.767 \u00b1 0.088");
  EXPECT_EQ(shown(pivot)[0][2].rfind("[0.", 0), 0u) << shown(pivot)[0][2];
  EXPECT_THROW(grouped_table(obs, {"model"}, {"f1"}, CiOptions{"folds", 10, 0, nullptr}), ConfigError);
  EXPECT_THROW(grouped_table(obs, {"model"}, {"f1"}, CiOptions{"cells", 10, 0, nullptr}), ConfigError);
}

TEST(GroupedTable, AMetricNaNOnSomeObservationsSaysHowManyItAveraged) {
  auto c = cells();
  c.push_back(cell("x5", "mlp", "cross-data", "P01", NAN));  // F1 undefined there, AUROC (NaN + 0.1) too
  c.back().set("auroc", 0.7);
  const auto t = grouped_table(observations(c, breakdown(), nullptr, {"model"}), {"model"}, {"f1", "auroc"});
  ASSERT_EQ(t.size(), 2U);
  // mlp: x4 (F1 0.5, AUROC 0.6) and x5 (F1 NaN, AUROC 0.7)
  EXPECT_EQ(shown(t)[1], (std::vector<std::string>{"mlp", "2", "0.500 (n=1)", "0.650 \u00b1 0.050"}));
  const auto paper = paper_table(observations(c, breakdown(), nullptr, {}), {}, "f1");
  EXPECT_EQ(shown(paper)[1][1], "0.500 (n=1)");
}

TEST(GroupedTable, TissueFromTheCatalogOfEachTestDataset) {
  const auto catalog = small_catalog();
  const auto obs = observations(cells(), breakdown(), &catalog, {"model", "tissue"});
  const auto t = grouped_table(obs, {"model", "tissue"}, {"f1", "auroc"});
  ASSERT_EQ(t.size(), 3U);
  // logreg, bone marrow: cross-data P01 (0.8, 0.9); pooled a: mean(P01 1.0, P02 0.8) = 0.9, pooled b: mean(0.9,
  // 0.7) = 0.8 -> {0.8, 0.9, 0.9, 0.8}: mean 0.85, sd 0.0577, s.e.m. 0.0289
  EXPECT_EQ(shown(t)[0],
            (std::vector<std::string>{"logreg", "bone marrow", "4", "0.850 \u00b1 0.029", "0.950 \u00b1 0.029"}));
  // logreg, cell line: cross-data P03 0.6; pooled a P03 0.9, b P03 0.6 -> {0.6, 0.9, 0.6}: 0.7 ± 0.1
  EXPECT_EQ(shown(t)[1],
            (std::vector<std::string>{"logreg", "cell line", "3", "0.700 \u00b1 0.100", "0.800 \u00b1 0.100"}));
  EXPECT_EQ(shown(t)[2], (std::vector<std::string>{"mlp", "cell line", "1", "0.500", "0.600"}));
}

TEST(GroupedTable, TherapyAndCancerTypeMapThroughTheCatalog) {
  const auto catalog = small_catalog();
  const auto therapy = grouped_table(observations(cells(), breakdown(), &catalog, {"therapy"}), {"therapy"}, {"f1"});
  ASSERT_EQ(therapy.size(), 3U);
  // immunotherapy = P02 only: pooled a 0.8, b 0.7 (no cross-data cell held P02 out: that one failed)
  EXPECT_EQ(shown(therapy)[1], (std::vector<std::string>{"immunotherapy", "2", "0.750 \u00b1 0.050"}));
  const auto cancer =
      grouped_table(observations(cells(), breakdown(), &catalog, {"cancer_type"}), {"cancer_type"}, {"f1"});
  ASSERT_EQ(cancer.size(), 2U);
  EXPECT_EQ(shown(cancer)[0][0], "MM");
  EXPECT_EQ(shown(cancer)[1][0], "breast");
  EXPECT_EQ(shown(cancer)[1][1], "4");  // x3, x4 and both pooled folds on P03
}

TEST(GroupedTable, ADatasetMissingFromTheCatalogIsAnErrorNamingIt) {
  const auto catalog = small_catalog();
  auto c = cells();
  c.push_back(cell("x9", "logreg", "cross-data", "P77", 0.5));
  try {
    observations(c, breakdown(), &catalog, {"tissue"});
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("P77"), std::string::npos) << e.what();
  }
  // no catalog at all: tissue cannot be known, dataset still can
  EXPECT_THROW(observations(cells(), breakdown(), nullptr, {"tissue"}), ConfigError);
  EXPECT_EQ(observations(cells(), breakdown(), nullptr, {"dataset"}).size(), 4U + 6U);
}

TEST(GroupFields, UnknownFieldOrMetricIsAConfigErrorWithASuggestion) {
  EXPECT_EQ(parse_group_fields("model, strategy,tissue", "--by"),
            (std::vector<std::string>{"model", "strategy", "tissue"}));
  try {
    parse_group_fields("model,tisue", "--by");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--by"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("tissue"), std::string::npos) << e.what();  // did you mean
  }
  EXPECT_THROW(parse_group_fields("model,model", "--by"), ConfigError);
  EXPECT_EQ(parse_metrics("f1,auroc", "--metric"), (std::vector<std::string>{"f1", "auroc"}));
  EXPECT_THROW(parse_metrics("f2", "--metric"), ConfigError);
  EXPECT_THROW(parse_metrics("", "--metric"), ConfigError);
}

TEST(PaperTable, RowsAreModelsColumnsAreSettingsAndTheBestIsBoldInLatex) {
  const auto catalog = small_catalog();
  const auto t = paper_table(observations(cells(), breakdown(), nullptr, {}), {}, "f1");
  ASSERT_EQ(header(t), (std::vector<std::string>{"model", "freeze \u00b7 cross-data", "freeze \u00b7 pooled/cell"}));
  ASSERT_EQ(t.size(), 2U);
  EXPECT_EQ(shown(t)[0], (std::vector<std::string>{"logreg", "0.767 \u00b1 0.088", "0.900 \u00b1 0.050"}));
  EXPECT_EQ(shown(t)[1], (std::vector<std::string>{"mlp", "0.500", ""}));
  const std::string latex = render(t, "latex", {3});
  EXPECT_NE(latex.find("\\textbf{0.767 $\\pm$ 0.088}"), std::string::npos) << latex;
  EXPECT_EQ(latex.find("\\textbf{0.500}"), std::string::npos) << latex;
  // the default display rounding is 4 decimals; the same table in Markdown bolds the same entries
  EXPECT_NE(render(t, "latex").find("\\textbf{0.7667 $\\pm$ 0.0882}"), std::string::npos);
  EXPECT_NE(render(t, "md").find("**0.7667 \u00b1 0.0882**"), std::string::npos) << render(t, "md");
  // split further by tissue: setting · tissue columns
  const auto by_tissue = paper_table(observations(cells(), breakdown(), &catalog, {"tissue"}), {"tissue"}, "f1");
  EXPECT_EQ(header(by_tissue)[1], "freeze \u00b7 cross-data \u00b7 bone marrow");
  EXPECT_EQ(header(by_tissue).size(), 5U);
}

TEST(Html, ExportFormatRendersASortableTableWithTheBestInStrong) {
  TableColumn f1{"f1", ColumnKind::kReal};
  f1.best_in_bold = true;
  Table t({TableColumn{"model", ColumnKind::kText}, f1});
  t.add_row({std::string("a<b"), 0.5});
  t.add_row({std::string("c"), 0.9});
  const std::string html = render(t, "html", {1});
  EXPECT_NE(html.find("<table class=\"sortable\">"), std::string::npos);
  EXPECT_NE(html.find("<td>a&lt;b</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("<td><strong>0.9</strong></td>"), std::string::npos) << html;
}

}  // namespace
}  // namespace sdm::orchestrator
