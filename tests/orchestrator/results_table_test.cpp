// `sdm compare`'s table on hand-made cells: pairing by what a cell is (not its id), deltas and verdicts.
#include "orchestrator/results_table.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sdm::orchestrator {
namespace {

CellRecord cell(const std::string& id, const std::string& model, const std::string& test_group, double f1,
                const std::string& status = "done") {
  CellRecord c;
  c.set("cell_id", id);
  c.set("model", model);
  c.set("preset", std::string("default"));
  c.set("strategy", std::string("freeze"));
  c.set("protocol", std::string("pooled"));
  c.set("split", std::string("cell"));
  c.set("fold", std::int64_t{0});
  c.set("test_group", test_group);
  c.set("seed", std::int64_t{0});
  c.set("status", status);
  c.set("f1", f1);
  return c;
}

TEST(Compare, PairsCellsByWhatTheyAreAndJudgesTheDelta) {
  const std::vector<CellRecord> a{cell("a1", "logreg", "fold-1/2", 0.80), cell("a2", "logreg", "fold-2/2", 0.90),
                                  cell("a3", "mlp", "fold-1/2", 0.70), cell("a4", "mlp", "fold-2/2", 0.60),
                                  cell("a5", "scgpt", "fold-1/2", 0.50)};
  // other ids (say, other weights): still paired; one better, one worse, one the same, one failed, one new
  const std::vector<CellRecord> b{cell("b1", "logreg", "fold-1/2", 0.85), cell("b2", "logreg", "fold-2/2", 0.80),
                                  cell("b3", "mlp", "fold-1/2", 0.70), cell("b4", "mlp", "fold-2/2", NAN, "failed"),
                                  cell("b6", "uce", "fold-1/2", 0.40)};
  std::map<std::string, int> n;
  const auto t = compare_table(a, b, "f1", 1e-9, &n);
  EXPECT_EQ(n["better"], 1);
  EXPECT_EQ(n["worse"], 1);
  EXPECT_EQ(n["same"], 1);
  EXPECT_EQ(n["n/a"], 1);
  EXPECT_EQ(n["only_a"], 1);
  EXPECT_EQ(n["only_b"], 1);
  ASSERT_EQ(t.size(), 6U);
  EXPECT_EQ(t.columns()[8].name, "f1_a");
  // logreg fold-1/2: the delta is the difference of the stored values, not of rounded text
  EXPECT_EQ(std::get<std::string>(t.at(0, "model")), "logreg");
  EXPECT_EQ(std::get<double>(t.at(0, "delta")), 0.85 - 0.80);
  EXPECT_EQ(std::get<std::int64_t>(t.at(0, "seed")), 0);
  EXPECT_EQ(std::get<std::string>(t.at(0, "verdict")), "better");
  EXPECT_EQ(std::get<std::string>(t.at(4, "verdict")), "only in A");
  EXPECT_EQ(std::get<std::string>(t.at(5, "verdict")), "only in B");
}

TEST(Pivot, MeanAndSemPerHeldOutDatasetAsAGoldenLatexTable) {
  // two models x two held-out datasets; logreg has two seeds on P01 (mean ± s.e.m.), mlp one cell per dataset
  std::vector<CellRecord> cells{cell("1", "logreg", "P01", 0.80), cell("2", "logreg", "P01", 0.90),
                                cell("3", "logreg", "P02", 0.60), cell("4", "mlp", "P01", 0.70),
                                cell("5", "mlp", "P02", 0.75), cell("6", "mlp", "P02", NAN, "failed")};
  cells[1].set("seed", std::int64_t{1});
  const auto t = pivot_table(cells, {"model", "strategy"}, "test_group", "f1");
  // logreg P01: mean 0.85, sd 0.0707, s.e.m. 0.05; the failed cell is left out
  const std::string golden =
      "\\begin{tabular}{llrr}\n"
      "\\toprule\n"
      "model & strategy & P01 & P02 \\\\\n"
      "\\midrule\n"
      "logreg & freeze & \\textbf{0.850 $\\pm$ 0.050} & 0.600 \\\\\n"
      "mlp & freeze & 0.700 & \\textbf{0.750} \\\\\n"
      "\\bottomrule\n"
      "\\end{tabular}\n";
  EXPECT_EQ(render(t, "latex", {3}), golden);
  // machine formats: mean, s.e.m. and count as numbers; the s.e.m. of one value is NaN
  EXPECT_EQ(render(t, "csv"),
            "model,strategy,P01,P01_sem,P01_n,P02,P02_sem,P02_n\n"
            "logreg,freeze,0.8500000000000001,0.04999999999999999,2,0.6,NaN,1\n"
            "mlp,freeze,0.7,NaN,1,0.75,NaN,1\n");
}

}  // namespace
}  // namespace sdm::orchestrator
