// What each figure of `sdm plot` draws from hand-made store contents (no gnuplot needed): how many marks, which
// data rows, and which figures are skipped with which reason.
#include "orchestrator/figures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace sdm::orchestrator {
namespace {

CellRecord cell(const std::string& id, const std::string& model, const std::string& protocol, const std::string& split,
                const std::string& test_group, double f1) {
  CellRecord c;
  c.set("cell_id", id);
  c.set("model", model);
  c.set("preset", std::string("default"));
  c.set("strategy", std::string("freeze"));
  c.set("protocol", protocol);
  c.set("split", split);
  c.set("test_group", test_group);
  c.set("train_groups", std::string("P01,P02"));
  c.set("seed", std::int64_t{0});
  c.set("status", std::string("done"));
  c.set("f1", f1);
  return c;
}

const Figure& find(const std::vector<Figure>& figures, const std::string& name) {
  const auto it = std::find_if(figures.begin(), figures.end(), [&](const Figure& f) { return f.name == name; });
  if (it == figures.end()) throw std::runtime_error("no figure " + name);
  return *it;
}

std::size_t lines(const std::string& data) {
  std::size_t n = 0;
  std::size_t start = 0;
  while (start < data.size()) {
    const auto end = std::min(data.find('\n', start), data.size());
    if (end > start && data[start] != '#') ++n;
    start = end + 1;
  }
  return n;
}

/// logreg and mlp held out P01 and P02 (mlp's F1 on P02 is NaN: no heatmap cell); logreg also ran a pooled cell and
/// sample split with per-dataset breakdown rows.
FigureInputs inputs() {
  FigureInputs in;
  in.cells = {cell("a", "logreg", "cross-data", "dataset", "P01", 0.8),
              cell("b", "logreg", "cross-data", "dataset", "P02", 0.7),
              cell("c", "mlp", "cross-data", "dataset", "P01", 0.6),
              cell("d", "mlp", "cross-data", "dataset", "P02", NAN),
              cell("e", "logreg", "pooled", "cell", "fold-1/2", 0.9),
              cell("f", "logreg", "pooled", "sample", "fold-1/2", 0.7)};
  in.breakdown = {{"e", "P01", {{"f1", 0.95}}},
                  {"e", "P02", {{"f1", 0.85}}},
                  {"f", "P01", {{"f1", 0.75}}},
                  {"f", "P02", {{"f1", 0.65}}}};
  in.no_catalog = "the sweep used no dataset catalog (bring-your-own files); pass --catalog";
  return in;
}

TEST(Figures, HeatmapHasOneCellPerModelAndHeldOutDatasetWithAValue) {
  const auto figures = build_figures(inputs(), "f1");
  const Figure& h = find(figures, "heatmap");
  ASSERT_TRUE(h.skipped.empty()) << h.skipped;
  EXPECT_EQ(h.expected_marks, 3U);  // mlp x P02 is NaN: left out, not drawn in a misleading colour
  EXPECT_EQ(lines(h.data), 3U);
  EXPECT_EQ(h.data_plots, 1);
  EXPECT_NE(h.body.find("set xtics ('P01' 0, 'P02' 1)"), std::string::npos) << h.body;
  EXPECT_NE(h.body.find("set ytics ('logreg' 0, 'mlp' 1)"), std::string::npos) << h.body;
  EXPECT_NE(h.data.find("0\t0\t0.8\n"), std::string::npos) << h.data;
}

TEST(Figures, LeakagePairsTheSplitsOfOneConfiguration) {
  const auto figures = build_figures(inputs(), "f1");
  const Figure& l = find(figures, "leakage");
  ASSERT_TRUE(l.skipped.empty()) << l.skipped;
  EXPECT_EQ(l.expected_marks, 2U);
  EXPECT_EQ(l.data_plots, 2);  // cell split, sample split: one element each, before error bars and key
  EXPECT_NE(l.body.find("keyentry with boxes"), std::string::npos);
  auto in = inputs();
  in.cells.pop_back();  // no sample split left
  const auto without = build_figures(in, "f1");
  const Figure& none = find(without, "leakage");
  EXPECT_EQ(none.skipped, "no configuration ran both a cell split and a sample split");
}

TEST(Figures, WithoutCatalogOrPredictionsThoseFiguresAreSkippedWithTheReason) {
  const auto figures = build_figures(inputs(), "f1");
  for (const char* name : {"bars-tissue", "bars-therapy", "bars-cancer_type"}) {
    EXPECT_NE(find(figures, name).skipped.find("catalog"), std::string::npos) << name;
  }
  EXPECT_EQ(find(figures, "roc").skipped, "the store has no predictions");
  EXPECT_EQ(find(figures, "pr").skipped, "the store has no predictions");
}

TEST(Figures, OneCurvePerConfigurationWithBothClasses) {
  auto in = inputs();
  // logreg cross-data (cells a, b): both classes; mlp cross-data (cell c): sensitive only -> no ROC curve (no
  // false positive rate), but a precision-recall curve (precision 1 throughout)
  in.prediction_cell = {"a", "a", "b", "b", "c", "c"};
  in.y_true = {1, 0, 1, 0, 1, 1};
  in.y_score = {0.9, 0.2, 0.4, 0.6, 0.8, 0.7};
  const auto figures = build_figures(in, "f1");
  const Figure& roc = find(figures, "roc");
  ASSERT_TRUE(roc.skipped.empty()) << roc.skipped;
  EXPECT_EQ(roc.marks, MarkKind::kCurves);
  EXPECT_EQ(roc.expected_marks, 1U);
  EXPECT_NE(roc.body.find("(AUC 0.750)"), std::string::npos) << roc.body;  // 3 of 4 pairs ordered
  EXPECT_EQ(find(figures, "pr").expected_marks, 2U);
}

TEST(Figures, ScriptDrawsSvgOrPdfWithoutJavaScript) {
  const auto figures = build_figures(inputs(), "f1");
  const Figure& h = find(figures, "heatmap");
  const std::string gp = figure_script(h);
  EXPECT_NE(gp.find("set terminal svg size"), std::string::npos);
  EXPECT_NE(gp.find("set terminal pdfcairo"), std::string::npos);
  EXPECT_NE(gp.find("set output 'heatmap.svg'"), std::string::npos);
  EXPECT_EQ(gp.find("mouse"), std::string::npos);
  EXPECT_EQ(gp.find("standalone"), std::string::npos);
  EXPECT_NE(gp.find("plot 'heatmap.dat'"), std::string::npos);
  EXPECT_EQ(parse_figure_formats("pdf,svg,pdf"), (std::vector<std::string>{"pdf", "svg"}));
  EXPECT_THROW(parse_figure_formats("png"), std::exception);
}

}  // namespace
}  // namespace sdm::orchestrator
