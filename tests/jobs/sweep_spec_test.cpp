// Sweep spec parsing and expansion: unknown keys with their path, model names, dropped combinations, cell-id
// stability (CONTRACTS §4-5), --only filters.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "jobs/expand.h"
#include "jobs/sweep_spec.h"

namespace sdm::jobs {
namespace {

namespace fs = std::filesystem;

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sdm_spec_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const char* name : {"a.h5ad", "b.h5ad", "c.h5ad"}) std::ofstream(dir_ / name) << "content of " << name;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string spec(const std::string& extra_models = "", const std::string& extra = "") const {
    return "name: t\nstore: " + (dir_ / "store.h5").string() + "\ndata:\n  root: " + dir_.string() +
           "\n  datasets: [a.h5ad, b.h5ad, c.h5ad]\nmodels:\n  - {name: logreg}\n" + extra_models +
           "strategies: [freeze, lora]\nprotocols:\n  - {name: pooled, folds: 3, split: cell}\n  - {name: cross-data}\n" + extra;
  }

  fs::path dir_;
};

TEST_F(SpecTest, ExpandsTheGridAndDropsNonsense) {
  const auto s = SweepSpec::parse(spec("  - {name: mlp}\n", "seeds: [0, 1]\n"), "t.yaml");
  auto inputs = resolve_inputs(s);
  ASSERT_EQ(inputs.size(), 3U);
  EXPECT_EQ(inputs[0].id, "a");
  hash_inputs(inputs, "");
  const Expansion e = expand(s, inputs);
  EXPECT_EQ(e.cells.size(), 2U * 2U * (3U + 3U));  // models x seeds x (folds + held-out datasets)
  ASSERT_EQ(e.dropped.size(), 2U);                 // lora x logreg, lora x mlp
  EXPECT_NE(e.dropped[0].find("lora x logreg"), std::string::npos) << e.dropped[0];
  EXPECT_EQ(filter_cells(e.cells, "model=mlp,protocol=cross-data").size(), 6U);
  EXPECT_EQ(filter_cells(e.cells, "seed=1,seed=0,test_group=b").size(), 4U);
  EXPECT_THROW(filter_cells(e.cells, "modle=mlp"), ConfigError);
}

TEST_F(SpecTest, CellIdsAreStableAndFollowContent) {
  const auto s = SweepSpec::parse(spec(), "t.yaml");
  auto inputs = resolve_inputs(s);
  hash_inputs(inputs, "");
  const auto first = expand(s, inputs);
  // Same content, different name/store/resources: same ids.
  const auto renamed = SweepSpec::parse(spec("", "resources: {max_attempts: 5}\n").replace(0, 7, "name: u"), "u.yaml");
  EXPECT_EQ(expand(renamed, inputs).cells.front().id, first.cells.front().id);
  // Different training parameters or a changed input file: new ids.
  const auto retrained = SweepSpec::parse(spec("", "train: {epochs: 3}\n"), "t.yaml");
  EXPECT_NE(expand(retrained, inputs).cells.front().id, first.cells.front().id);
  std::ofstream(dir_ / "a.h5ad") << "edited";
  auto edited = resolve_inputs(s);
  hash_inputs(edited, "");
  EXPECT_NE(expand(s, edited).cells.front().id, first.cells.front().id);
}

TEST_F(SpecTest, UnknownKeysNameTheirPath) {
  try {
    SweepSpec::parse(spec("", "train: {epochs: 3, learning_rate: 0.1}\n"), "t.yaml");
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sweep.train.learning_rate"), std::string::npos) << e.what();
  }
  try {
    SweepSpec::parse(spec("  - {name: logreg, confg: {}}\n"), "t.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'config'"), std::string::npos) << e.what();
  }
}

TEST_F(SpecTest, BadNamesAndValues) {
  EXPECT_THROW(SweepSpec::parse(spec("  - {name: logregg}\n"), "t.yaml"), ConfigError);
  EXPECT_THROW(SweepSpec::parse(spec("  - {name: logreg, config: {l3: 1}}\n"), "t.yaml"), ConfigError);
  EXPECT_THROW(SweepSpec::parse(spec("", "seeds: []\n"), "t.yaml"), ConfigError);
  auto s = spec();
  s.replace(s.find("split: cell"), 11, "split: donor");
  EXPECT_THROW(SweepSpec::parse(s, "t.yaml"), ConfigError);
  try {
    SweepSpec::parse(spec("  - {name: uce}\n"), "t.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not implemented in this build"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(SweepSpec::parse(spec("  - {name: scgpt, preset: tiny, config: {nlayers: 1}}\n"), "t.yaml"));
  EXPECT_THROW(SweepSpec::parse(spec("  - {name: scgpt, preset: huge}\n"), "t.yaml"), ConfigError);
  EXPECT_THROW(SweepSpec::parse(spec("  - {name: geneformer, config: {hidden_sise: 8}}\n"), "t.yaml"), ConfigError);
}

TEST_F(SpecTest, MissingFilesAreListed) {
  auto text = spec();
  text.replace(text.find("c.h5ad"), 6, "zz.h5ad");
  const auto s = SweepSpec::parse(text, "t.yaml");
  try {
    resolve_inputs(s);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("zz.h5ad"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdm::jobs

namespace sdm::jobs {
namespace {

TEST(SweepSchema, DocumentsExactlyTheKeysTheParserAccepts) {
  std::ifstream in(std::string(SDM_SOURCE_ROOT) + "/jobs/schema/sweep-v1.json");
  ASSERT_TRUE(in.good());
  const auto schema = nlohmann::json::parse(in);
  std::vector<std::string> documented;
  for (const auto& [key, unused] : schema.at("properties").items()) documented.push_back(key);
  std::vector<std::string> accepted = sweep_top_keys();
  std::sort(documented.begin(), documented.end());
  std::sort(accepted.begin(), accepted.end());
  EXPECT_EQ(documented, accepted);
}

}  // namespace
}  // namespace sdm::jobs
