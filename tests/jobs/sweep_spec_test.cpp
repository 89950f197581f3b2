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
  // all ten models of the study are built: the last four included
  for (const char* m : {"cellplm", "tgpt", "llama", "chatglm"}) {
    EXPECT_NO_THROW(SweepSpec::parse(spec(std::string("  - {name: ") + m + ", preset: tiny}\n"), "t.yaml")) << m;
  }
  EXPECT_NO_THROW(SweepSpec::parse(spec("  - {name: scgpt, preset: tiny, config: {nlayers: 1}}\n"), "t.yaml"));
  // what the spec set itself is pinned (a checkpoint must agree with it); the preset's values are not
  const auto pinned = SweepSpec::parse(spec("  - {name: scgpt, preset: tiny, config: {nlayers: 1, ntoken: 99}}\n"), "t.yaml");
  EXPECT_EQ(pinned.models.back().pinned, (std::vector<std::string>{"nlayers", "ntoken"}));
  EXPECT_TRUE(SweepSpec::parse(spec("  - {name: scgpt, preset: tiny}\n"), "t.yaml").models.back().pinned.empty());
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

TEST_F(SpecTest, StrategiesMeetProtocolsAsDocumented) {
  const auto s = SweepSpec::parse(
      spec("  - {name: scgpt, preset: tiny}\n  - {name: geneformer, preset: tiny}\n",
           "strategy_options: {few-shot: {k: 3}, lora: {r: 4}}\n"),
      "t.yaml");
  auto spec2 = s;
  spec2.strategies = {"freeze", "lora", "zero-shot", "few-shot"};
  ProtocolSpec paper;
  paper.name = "paper";
  spec2.protocols.push_back(paper);
  auto inputs = resolve_inputs(spec2);
  hash_inputs(inputs, "");
  const auto e = expand(spec2, inputs);
  // zero-shot / few-shot only under cross-data; lora never for a baseline.
  for (const auto& c : e.cells) {
    if (c.strategy == "zero-shot" || c.strategy == "few-shot") {
      EXPECT_EQ(c.protocol, "cross-data") << c.id;
    }
    if (c.strategy == "lora") {
      EXPECT_NE(c.model, "logreg");
    }
  }
  auto dropped_has = [&](const std::string& text) {
    return std::any_of(e.dropped.begin(), e.dropped.end(), [&](const auto& d) { return d.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(dropped_has("zero-shot x pooled")) << ::testing::PrintToString(e.dropped);
  EXPECT_TRUE(dropped_has("few-shot x paper"));
  EXPECT_TRUE(dropped_has("lora x logreg"));
  // Every model x strategy x protocol that makes sense is there: 3 datasets held out, 3 folds, 1 paper split.
  EXPECT_EQ(filter_cells(e.cells, "model=logreg,strategy=few-shot").size(), 3U);
  EXPECT_EQ(filter_cells(e.cells, "model=scgpt,strategy=lora").size(), 3U + 3U + 1U);
  EXPECT_EQ(filter_cells(e.cells, "model=geneformer,strategy=zero-shot").size(), 3U);
  for (const auto& c : e.cells) {
    const auto& strategy = c.config.at("strategy");
    if (c.strategy == "lora") {
      // Defaults resolved into the hashed config: the spec's r, the study's alpha/dropout, the model's targets.
      EXPECT_EQ(strategy.at("options").at("r"), 4);
      EXPECT_EQ(strategy.at("options").at("alpha"), 8.0);
      const auto targets = strategy.at("options").at("targets").get<std::vector<std::string>>();
      const std::vector<std::string> expected =
          c.model == "scgpt" ? std::vector<std::string>{"out_proj"} : std::vector<std::string>{"query", "key", "value"};
      EXPECT_EQ(targets, expected);
      if (c.protocol == "paper") {
        EXPECT_EQ(c.config.at("train").at("epochs"), 3);
        EXPECT_EQ(c.config.at("train").at("batch_size"), c.model == "scgpt" ? 256 : 10);
      }
      EXPECT_TRUE(c.embed_keys.empty());
    }
    if (c.strategy == "few-shot") {
      EXPECT_EQ(strategy.at("options").at("k"), 3);
    }
    if (c.model != "logreg" && c.strategy != "lora") {
      EXPECT_FALSE(c.embed_keys.empty()) << c.strategy;
    }
  }
  // A target the model cannot adapt is an error naming the allowed ones.
  spec2.strategy_options = {{"lora", {{"targets", {"to_q"}}}}};
  EXPECT_THROW(expand(spec2, inputs), ConfigError);
}

TEST_F(SpecTest, TrainingOptionsAreValidated) {
  auto parse = [&](const std::string& extra) { return SweepSpec::parse(spec("", extra), "t.yaml"); };
  const auto ok = parse("train: {clip_norm: 1.0, schedule: cosine, warmup: 0.1, validation: 0.2, patience: 2}\n"
                        "resources: {ranks_per_task: 2}\n");
  EXPECT_EQ(ok.train.schedule, "cosine");
  EXPECT_EQ(ok.resources.ranks_per_task, 2);
  EXPECT_EQ(ok.train.to_json().at("patience"), 2);
  EXPECT_FALSE(TrainSpec{}.to_json().contains("schedule"));  // study defaults keep older cell ids
  EXPECT_THROW(parse("train: {schedule: step}\n"), ConfigError);
  EXPECT_THROW(parse("train: {patience: 2}\n"), ConfigError);  // early stopping without validation cells
  EXPECT_THROW(parse("train: {validation: 0.7}\n"), ConfigError);
  EXPECT_THROW(parse("strategy_options: {lora: {r: 0}}\n"), ConfigError);
  EXPECT_THROW(parse("strategy_options: {lora: {dropout: 1.5}}\n"), ConfigError);
  EXPECT_THROW(parse("strategy_options: {few-shot: {k: 0}}\n"), ConfigError);
  EXPECT_THROW(parse("resources: {ranks_per_task: 0}\n"), ConfigError);
}

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
