#include "common/yaml.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace sdm {
namespace {

const std::vector<std::string> kModelKeys{"name", "preset", "config", "weights", "vocab"};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(Yaml, UnknownKeyNamesFullPathAndSuggests) {
  auto doc = YamlView::load_string(
      "models:\n  - {name: logreg}\n  - {name: mlp}\n  - {name: scgpt, presett: tiny}\n", "sweep", "spec.yaml");
  auto models = doc["models"];
  models.at(0).expect_keys(kModelKeys);
  const std::string msg = error_of([&] { models.at(2).expect_keys(kModelKeys); });
  EXPECT_NE(msg.find("sweep.models[2].presett: unknown key; did you mean 'preset'?"), std::string::npos) << msg;
  EXPECT_NE(msg.find("spec.yaml:4"), std::string::npos) << msg;
}

TEST(Yaml, DuplicateKeysAreRejected) {
  auto doc = YamlView::load_string("name: a\nname: b\n", "sweep", "spec.yaml");
  const std::string msg = error_of([&] { doc.expect_keys({"name"}); });
  EXPECT_NE(msg.find("sweep.name: duplicate key"), std::string::npos) << msg;
}

TEST(Yaml, TypedAccessReportsPathAndValue) {
  auto doc = YamlView::load_string("train: {epochs: ten, lr: 1.0e-4, shuffle: yes}\n", "sweep", "s.yaml");
  auto train = doc["train"];
  EXPECT_DOUBLE_EQ(train["lr"].as<double>(), 1.0e-4);
  EXPECT_TRUE(train["shuffle"].as<bool>());
  EXPECT_EQ(train.get<std::int64_t>("batch_size", 128), 128);
  const std::string msg = error_of([&] { train["epochs"].as<int>(); });
  EXPECT_NE(msg.find("sweep.train.epochs = 'ten': expected an integer"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { train["lr"].as<std::int64_t>(); }).find("expected an integer"), std::string::npos);
  EXPECT_NE(error_of([&] { doc["train"].as<std::string>(); }).find("expected a string, got a map"), std::string::npos);
}

TEST(Yaml, RequiredKeyAndLists) {
  auto doc = YamlView::load_string("seeds: [0, 1, 2]\nsingle: 7\n", "sweep", "s.yaml");
  EXPECT_EQ(doc["seeds"].as<std::vector<std::int64_t>>(), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(doc["single"].as<std::vector<std::int64_t>>(), (std::vector<std::int64_t>{7}));
  EXPECT_FALSE(doc["missing"].defined());
  EXPECT_EQ(doc["missing"].path(), "sweep.missing");
  const std::string msg = error_of([&] { doc.require("store"); });
  EXPECT_NE(msg.find("sweep.store: required key is missing"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { doc["seeds"].at(5); }).find("sweep.seeds: index 5 out of range"), std::string::npos);
}

TEST(Yaml, SyntaxErrorAndMissingFileNameTheFile) {
  const std::string bad = error_of([] { YamlView::load_string("a: [1, 2\nb: 3\n", "x", "broken.yaml"); });
  EXPECT_NE(bad.find("broken.yaml:"), std::string::npos) << bad;
  EXPECT_NE(bad.find("invalid YAML"), std::string::npos) << bad;
  // a Latin-1 byte (in a comment, even): the line, the byte and the column
  const std::string latin1 = error_of([] { YamlView::load_string("a: 1\n# caf\xE9\n", "x", "latin1.yaml"); });
  EXPECT_EQ(latin1, "latin1.yaml:2: '0xE9': not valid UTF-8 (column 6); save the file as UTF-8 text");
  const std::string missing = error_of([] { YamlView::load_file("/nonexistent/spec.yaml", "sweep"); });
  EXPECT_EQ(missing, "/nonexistent/spec.yaml: no such file");
}

TEST(Yaml, LoadsFromFile) {
  const auto path = std::filesystem::temp_directory_path() / "sdm_yaml_test.yaml";
  std::ofstream(path) << "name: demo\nstore: runs/demo/store.h5\n";
  auto doc = YamlView::load_file(path.string(), "sweep");
  doc.expect_keys({"name", "store"});
  EXPECT_EQ(doc["name"].as<std::string>(), "demo");
  EXPECT_EQ(doc["store"].line(), 2);
  std::filesystem::remove(path);
}

}  // namespace sdm
