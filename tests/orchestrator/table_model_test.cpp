// The one table model and its writers: machine formats lossless and typed, display formats rounded, one place
// for each (CONTRACTS §19).
#include "orchestrator/table_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "common/error.h"
#include "orchestrator/table_writers.h"

namespace sdm::orchestrator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(ShortestText, EveryDoubleReadsBackBitForBit) {
  std::mt19937_64 rng(11);
  std::vector<double> values{0.0, -0.0, 1.0, 0.1, 1.0 / 3.0, 0.99913, 1e-300, 5e-324, 1.7976931348623157e308,
                             0.9999999999999999, 1.0 - 1e-16, 123456789012345680.0, -2.5e-7};
  for (int i = 0; i < 200000; ++i) {
    std::uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    if (std::isfinite(v)) values.push_back(v);
    values.push_back(std::uniform_real_distribution<double>(0, 1)(rng));  // scores and metrics live here
  }
  for (double v : values) {
    const std::string text = shortest_text(v);
    ASSERT_TRUE(same_bits(std::strtod(text.c_str(), nullptr), v)) << text;
    // and nlohmann (the JSON writer) agrees on the value
    ASSERT_TRUE(same_bits(nlohmann::json::parse(nlohmann::json(v).dump()).get<double>(), v)) << nlohmann::json(v).dump();
  }
  EXPECT_EQ(shortest_text(0.1), "0.1");
  EXPECT_EQ(shortest_text(6.0), "6.0");  // a real stays a real for type-inferring readers
  EXPECT_EQ(shortest_text(-0.0), "-0.0");
  EXPECT_EQ(shortest_text(1e22), "1e+22");
  EXPECT_EQ(shortest_text(kNaN), "NaN");
  EXPECT_EQ(shortest_text(kInf), "inf");
  EXPECT_EQ(shortest_text(-kInf), "-inf");
}

Table sample() {
  TableColumn f1{"f1", ColumnKind::kEstimate};
  f1.spread = "sem";
  f1.best_in_bold = true;
  TableColumn ci{"f1_ci", ColumnKind::kBounds};
  ci.label = "f1 95% CI (cells)";
  ci.counts_cells = true;
  TableColumn note{"summary", ColumnKind::kText};
  note.display_only = true;
  TableColumn hours{"wall h", ColumnKind::kReal};
  hours.significant = true;
  Table t({TableColumn{"model", ColumnKind::kText}, TableColumn{"n", ColumnKind::kInt},
           TableColumn{"score", ColumnKind::kReal}, f1, ci, hours, note});
  t.add_row({std::string("a,\"quoted\"\nname"), std::int64_t{3}, 0.99913, Estimate{0.9123456789, 0.0123, 3, 3},
             Bounds{0.85, 0.95, 120, ""}, 1234.5678, std::string("a 1.5")});
  t.add_row({std::string("b"), std::int64_t{-2}, kNaN, Estimate{0.5, kNaN, 1, 2}, Bounds{kNaN, kNaN, 0, "no predictions"},
             kInf, std::string("")});
  t.add_row({std::string("c"), Value{}, 1e-20, Value{}, Value{}, 0.0001234, std::string("")});
  return t;
}

TEST(MachineView, EstimatesAndBoundsExpandToScalarsAndDisplayOnlyColumnsStayOut) {
  const auto m = machine_columns(sample());
  EXPECT_EQ(m.names, (std::vector<std::string>{"model", "n", "score", "f1", "f1_sem", "f1_n", "f1_ci_low", "f1_ci_high",
                                               "f1_ci_cells", "f1_ci_note", "wall h"}));
  ASSERT_EQ(m.rows.size(), 3U);
  EXPECT_EQ(std::get<double>(m.rows[0][3]), 0.9123456789);
  EXPECT_EQ(std::get<std::int64_t>(m.rows[0][5]), 3);
  EXPECT_TRUE(std::isnan(std::get<double>(m.rows[1][4])));  // the s.e.m. of one value
  EXPECT_EQ(std::get<std::string>(m.rows[1][9]), "no predictions");
}

TEST(Csv, FullPrecisionTypedAndQuoted) {
  const std::string csv = render(sample(), "csv");
  EXPECT_EQ(csv,
            "model,n,score,f1,f1_sem,f1_n,f1_ci_low,f1_ci_high,f1_ci_cells,f1_ci_note,wall h\n"
            "\"a,\"\"quoted\"\"\nname\",3,0.99913,0.9123456789,0.0123,3,0.85,0.95,120,,1234.5678\n"
            "b,-2,NaN,0.5,NaN,1,NaN,NaN,0,no predictions,inf\n"
            "c,,1e-20,NaN,NaN,0,,,,,0.0001234\n");
}

TEST(Json, NumbersAsNumbersNaNAsNullKeysInColumnOrder) {
  const std::string text = render(sample(), "json");
  const auto rows = nlohmann::ordered_json::parse(text);
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows[0].begin().key(), "model");
  EXPECT_TRUE(rows[0]["n"].is_number_integer());
  EXPECT_EQ(rows[0]["n"].get<std::int64_t>(), 3);
  EXPECT_TRUE(rows[0]["score"].is_number_float());
  EXPECT_EQ(rows[0]["score"].get<double>(), 0.99913);
  EXPECT_EQ(rows[0]["model"].get<std::string>(), "a,\"quoted\"\nname");
  EXPECT_TRUE(rows[1]["score"].is_null());    // NaN
  EXPECT_TRUE(rows[1]["wall h"].is_null());   // inf
  EXPECT_TRUE(rows[2]["n"].is_null());        // nothing there
  EXPECT_FALSE(rows[0].contains("summary"));  // display only
  EXPECT_EQ(text.find("\"0."), std::string::npos) << "a number written as a string:\n" << text;
}

TEST(Display, RoundsByDigitsAndBoldsTheBest) {
  const auto d = display_cells(sample(), 3);
  EXPECT_EQ(d.header[4], "f1 95% CI (cells)");
  EXPECT_EQ(d.rows[0][2], "0.999");
  EXPECT_EQ(d.rows[0][3], "0.912 \u00b1 0.012");
  EXPECT_EQ(d.rows[0][4], "[0.850, 0.950] (120 cells)");
  EXPECT_EQ(d.rows[0][5], "1.23e+03");  // significant digits
  EXPECT_EQ(d.rows[1][3], "0.500 (n=1)");
  EXPECT_EQ(d.rows[1][4], "NaN (no predictions)");
  EXPECT_EQ(d.rows[2][3], "");
  EXPECT_TRUE(d.bold[0][3]);
  EXPECT_FALSE(d.bold[1][3]);
  EXPECT_FALSE(d.bold[0][2]);  // not a score column
  EXPECT_EQ(display_cells(sample(), 6).rows[0][2], "0.999130");
}

TEST(Display, GoldenMarkdownAndText) {
  TableColumn f1{"f1", ColumnKind::kEstimate};
  f1.best_in_bold = true;
  Table t({TableColumn{"model", ColumnKind::kText}, TableColumn{"done", ColumnKind::kInt}, f1});
  t.add_row({std::string("logreg"), std::int64_t{2}, Estimate{0.95, 0.01, 2, 2}});
  t.add_row({std::string("a|b"), std::int64_t{1}, Estimate{0.5, kNaN, 1, 1}});
  EXPECT_EQ(render(t, "md"),
            "| model | done | f1 |\n"
            "|---|---:|---:|\n"
            "| logreg | 2 | **0.9500 \u00b1 0.0100** |\n"
            "| a\\|b | 1 | 0.5000 |\n");
  EXPECT_EQ(render(t, "text", {2}),
            "model   done  f1\n"
            "logreg  2     0.95 \u00b1 0.01\n"
            "a|b     1     0.50\n");
}

TEST(Writers, UnknownFormatAndDigitsAreConfigErrors) {
  EXPECT_THROW(render(sample(), "xlsx"), ConfigError);
  EXPECT_THROW(check_digits(-1), ConfigError);
  EXPECT_THROW(check_digits(18), ConfigError);
  EXPECT_TRUE(is_machine_format("csv"));
  EXPECT_TRUE(is_machine_format("json"));
  EXPECT_FALSE(is_machine_format("latex"));
}

TEST(Table, AValueOfTheWrongKindIsAProgrammingError) {
  Table t({TableColumn{"n", ColumnKind::kInt}});
  EXPECT_THROW(t.add_row({std::string("3")}), std::logic_error);
  EXPECT_THROW(t.add_row({std::int64_t{1}, std::int64_t{2}}), std::logic_error);
  t.add_row({std::int64_t{1}});
  EXPECT_THROW(t.add_column({"late", ColumnKind::kText}), std::logic_error);
  EXPECT_THROW(t.index("m"), std::out_of_range);
}

}  // namespace
}  // namespace sdm::orchestrator
