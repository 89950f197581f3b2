// Cost accounting on fixed cells: hours, throughput and metric per device-hour worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "orchestrator/cost_summary.h"

namespace sdm::orchestrator {
namespace {

CellRecord cell(const std::string& model, const std::string& status, double wall, double cpu, double gpu, double f1, int rank,
                const std::string& start, const std::string& end) {
  CellRecord c;
  c.set("model", model);
  c.set("status", status);
  c.set("wall_s", wall);
  c.set("cpu_s", cpu);
  c.set("gpu_s", gpu);
  c.set("peak_rss_mb", 100.0 * rank);
  c.set("f1", f1);
  c.set("rank", std::int64_t{rank});
  c.set("started_utc", start);
  c.set("finished_utc", end);
  return c;
}

TEST(CostSummary, PerModelHoursAndMetricPerDeviceHour) {
  const std::vector<CellRecord> cells{
      cell("a", "done", 1800, 3600, std::nan(""), 0.8, 1, "2026-11-24T10:00:00.000Z", "2026-11-24T10:30:00.000Z"),
      cell("a", "done", 1800, 3600, std::nan(""), 0.6, 2, "2026-11-24T10:00:00.000Z", "2026-11-24T10:30:00.000Z"),
      cell("b", "done", 360, 360, 720, 0.9, 1, "2026-11-24T10:30:00.000Z", "2026-11-24T10:36:00.000Z"),
      cell("b", "failed", 360, 360, 720, std::nan(""), 2, "2026-11-24T10:30:00.000Z", "2026-11-24T10:36:00.000Z"),
      cell("c", "interrupted", 0, 0, 0, std::nan(""), 1, "", "")};
  const Table table = cost_summary_table(cells, "f1");
  ASSERT_EQ(table.size(), 3u);
  // as display formats show it: 4 significant digits where hours are shown
  const DisplayTable t = display_cells(table, 4);
  const auto col = [&](const std::string& name) { return table.index(name); };
  // a: 2 cells, 1 wall-hour, 2 CPU-hours; mean f1 0.7 over 1 CPU-hour per cell
  EXPECT_EQ(t.rows[0][col("done")], "2");
  EXPECT_EQ(t.rows[0][col("wall h")], "1");
  EXPECT_EQ(t.rows[0][col("CPU h")], "2");
  EXPECT_EQ(t.rows[0][col("cells / wall h")], "2");
  EXPECT_EQ(t.rows[0][col("f1 per device-h")], "0.7");
  EXPECT_EQ(t.rows[0][col("device")], "cpu");
  // b used a GPU: 0.4 GPU-hours over 2 attempts = 0.2 per cell; mean f1 0.9 (done cells only) -> 4.5 per GPU-hour
  EXPECT_EQ(t.rows[1][col("failed")], "1");
  EXPECT_EQ(t.rows[1][col("GPU h")], "0.4");
  EXPECT_EQ(t.rows[1][col("device")], "gpu");
  EXPECT_EQ(t.rows[1][col("f1 per device-h")], "4.5");
  // c never ran: no hours, no metric
  EXPECT_EQ(t.rows[2][col("f1 per device-h")], "NaN");
  // and as machine formats hold it: numbers, not text
  EXPECT_EQ(std::get<std::int64_t>(table.at(0, "done")), 2);
  EXPECT_DOUBLE_EQ(std::get<double>(table.at(1, "f1 per device-h")), 4.5);
  EXPECT_TRUE(std::isnan(std::get<double>(table.at(2, "f1 per device-h"))));

  const SweepSpan s = sweep_span(cells);
  EXPECT_EQ(s.cells, 4);
  EXPECT_EQ(s.ranks, 2);
  EXPECT_DOUBLE_EQ(s.span_s, 36 * 60.0);
  EXPECT_DOUBLE_EQ(s.busy_s, 4320.0);
  EXPECT_DOUBLE_EQ(s.busy_share, 4320.0 / (2160.0 * 2));
}

TEST(CostSummary, ParsesUtcStamps) {
  EXPECT_DOUBLE_EQ(parse_utc("1970-01-02T00:00:01.500Z"), 86401.5);
  EXPECT_TRUE(std::isnan(parse_utc("2026-11-24 10:00:00")));
  EXPECT_TRUE(std::isnan(parse_utc("")));
}

}  // namespace
}  // namespace sdm::orchestrator
