// Cell artifacts: the fitted parameters that leave training reproduce its scores, and the manifest is checked.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "worker/baselines.h"
#include "worker/predictor.h"

namespace sdm::worker {
namespace {

/// Two Gaussian classes in `dim` dimensions, shifted along every axis.
Features toy_features(std::int64_t dim, std::vector<std::int8_t>& y) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  Features f;
  f.dim = dim;
  for (int i = 0; i < 80; ++i) {
    const std::int8_t label = static_cast<std::int8_t>(i % 2);
    y.push_back(label);
    for (std::int64_t j = 0; j < dim; ++j) f.train.push_back(noise(rng) + (label ? 0.8f : -0.8f));
  }
  for (int i = 0; i < 30; ++i) {
    for (std::int64_t j = 0; j < dim; ++j) f.test.push_back(noise(rng) + (i % 3 == 0 ? 0.5f : -0.5f));
  }
  return f;
}

TEST(Predictor, FittedHeadsReproduceTheirScores) {
  std::vector<std::int8_t> y;
  const Features f = toy_features(6, y);
  HeadTraining head;
  head.layers = {16, 8};
  head.epochs = 5;
  head.batch_size = 16;
  head.lr = 1e-2;
  for (const std::string model : {"logreg", "mlp"}) {
    NamedArrays fitted;
    const auto scores = fit_predict(model, nlohmann::json::object(), head, f, y, 3, &fitted);
    ASSERT_FALSE(fitted.empty()) << model;
    const auto again = apply_head(model, fitted, f.test, f.dim);
    ASSERT_EQ(again.size(), scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) EXPECT_NEAR(again[i], scores[i], 1e-6) << model << " row " << i;
    // a different parameter set gives different scores: the comparison above can fail
    fitted.back().values[0] += 5.0f;
    EXPECT_GT(std::abs(apply_head(model, fitted, f.test, f.dim)[0] - scores[0]), 1e-4) << model;
  }
  EXPECT_THROW(apply_head("svm", {}, f.test, f.dim), ConfigError);
}

TEST(Predictor, PcaBasisProjectsNewRowsLikeTheTestRows) {
  CsrMatrix X;
  X.rows = 12;
  X.cols = 5;
  std::vector<float> dense_test;
  for (std::int64_t r = 0; r < X.rows; ++r) {
    for (std::int32_t c = 0; c < X.cols; ++c) {
      const float v = static_cast<float>((r * 7 + c * 3) % 11) + (c == r % 5 ? 2.0f : 0.0f);
      X.indices.push_back(c);
      X.data.push_back(v);
      if (r >= 8) dense_test.push_back(v);
    }
    X.indptr.push_back(static_cast<std::int64_t>(X.data.size()));
  }
  const Features f = pca_features(X, {0, 1, 2, 3, 4, 5, 6, 7}, {8, 9, 10, 11}, 3, 1);
  const auto projected = apply_pca(f.basis, dense_test, X.cols);
  ASSERT_EQ(projected.size(), f.test.size());
  for (std::size_t i = 0; i < projected.size(); ++i) EXPECT_NEAR(projected[i], f.test[i], 1e-5);
  EXPECT_THROW(apply_pca(f.basis, dense_test, 4), DataError);
}

TEST(Predictor, GenesCommonToTrainingAndTheirCoverage) {
  EXPECT_EQ(common_genes({{"A", "B", "C", "D"}, {"D", "B", "X"}, {"B", "D", "C"}}), (std::vector<std::string>{"B", "D"}));
  const std::vector<std::string> needed{"A", "B", "C", "D"};
  const GeneMatch m = match_genes(needed, {"D", "Z", "B"});
  EXPECT_EQ(m.column, (std::vector<std::int64_t>{-1, 2, -1, 0}));
  EXPECT_EQ(m.found, 2u);
  EXPECT_DOUBLE_EQ(m.coverage(), 0.5);
  EXPECT_EQ(m.missing(needed), (std::vector<std::string>{"A", "C"}));
}

TEST(Predictor, ManifestRoundTripAndChecks) {
  const auto dir = (std::filesystem::temp_directory_path() / "sdm_predictor_test").string();
  std::filesystem::remove_all(dir);
  EXPECT_THROW(read_predictor_manifest(dir), IoError);
  nlohmann::json m{{"cell_id", "abc"}, {"kind", "baseline"}, {"head", "logreg"}, {"genes", {"A", "B"}}};
  write_predictor(dir, m, {{"head.weight", {1, 2}, {0.5f, -1.0f}}, {"head.bias", {1}, {0.25f}}});
  const auto back = read_predictor_manifest(dir);
  EXPECT_EQ(back.at("parameters"), kPredictorTensors);
  EXPECT_EQ(back.at("version"), 1);
  const auto arrays = read_named_arrays(dir + "/" + kPredictorTensors);
  ASSERT_EQ(arrays.size(), 2u);
  const auto& w = arrays[0].name == "head.weight" ? arrays[0] : arrays[1];
  ASSERT_EQ(w.name, "head.weight");
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{1, 2}));
  ASSERT_EQ(w.values.size(), 2u);
  EXPECT_FLOAT_EQ(w.values[1], -1.0f);
  EXPECT_FALSE(std::filesystem::exists(dir + "/predictor.json.tmp"));
  for (const auto& [field, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"version", 2}, {"kind", "svm"}, {"head", "forest"}, {"format", "other"}}) {
    auto bad = back;
    bad[field] = value;
    std::ofstream(dir + "/predictor.json") << bad.dump();
    EXPECT_THROW(read_predictor_manifest(dir), DataError) << field;
  }
  std::ofstream(dir + "/predictor.json") << "{\"format\": \"sdm-predictor\", truncated";
  EXPECT_THROW(read_predictor_manifest(dir), DataError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sdm::worker
