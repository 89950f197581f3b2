// Checkpoints size themselves (issue 22): every model family loads a checkpoint whose vocabulary, token table and
// positional table are not its preset's, sized from the checkpoint's own tensors; a size the user pinned that the
// checkpoint contradicts is one error naming both.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/safetensors.h"
#include "common/splitmix.h"
#include "jobs/models.h"
#include "worker/models/encoder.h"

namespace sdm::worker {
namespace {

namespace fs = std::filesystem;

nlohmann::json tiny(const std::string& model) {
  return jobs::resolve_model_config(jobs::model_info(model, ""), "tiny", nlohmann::json::object(), false, "");
}

std::string save_safetensors(Encoder& encoder, const std::string& name) {
  std::vector<torch::Tensor> keep;
  std::vector<SafetensorsTensor> tensors;
  for (const auto& [n, t] : encoder.params().items()) {
    keep.push_back(t.to(torch::kFloat32).contiguous());
    const auto& c = keep.back();
    tensors.push_back({n, "F32", c.sizes().vec(),
                       std::span<const std::byte>(static_cast<const std::byte*>(c.data_ptr()), static_cast<std::size_t>(c.nbytes()))});
  }
  const auto path = (fs::temp_directory_path() / name).string();
  write_safetensors(path, tensors);
  return path;
}

std::string save_pt(Encoder& encoder, const std::string& name) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [n, t] : encoder.params().items()) dict.insert(n, t.to(torch::kFloat32).contiguous());
  const auto bytes = torch::pickle_save(c10::IValue(dict));
  const auto path = (fs::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

/// A few cells through a model's own tokenizer and collate.
ModelInputs some_cells(Encoder& encoder) {
  CsrMatrix X;
  X.rows = 4;
  X.cols = 50;
  SplitMix64 rng{9};
  for (std::int64_t r = 0; r < X.rows; ++r) {
    for (std::int32_t g = 0; g < 50; ++g) {
      if (rng.uniform() < 0.3) {
        X.indices.push_back(g);
        X.data.push_back(static_cast<float>(1 + static_cast<int>(rng.uniform() * 20)));
      }
    }
    X.indptr.push_back(static_cast<std::int64_t>(X.indices.size()));
  }
  std::vector<std::string> symbols;
  for (int g = 0; g < 50; ++g) symbols.push_back("G" + std::to_string(g));
  return encoder.collate(encoder.tokenize(X, {symbols, {}}, {1, 2, 3, 4}), {0, 1, 2, 3});
}

std::int64_t size_in(Encoder& encoder, const CheckpointSize& size) {
  for (const auto& [n, t] : encoder.params().items()) {
    if (n == size.tensor) return t.size(static_cast<std::int64_t>(size.axis)) + size.offset;
  }
  return -1;
}

TEST(CheckpointSizes, EveryModelLoadsACheckpointOfOtherSizesAndAPinnedContradictionNamesBoth) {
  for (const auto& [model, kind] : encoder_registry()) {
    ASSERT_FALSE(kind.sizes.empty()) << model;
    const auto preset = tiny(model);
    // the "published" checkpoint: every table a few rows larger than the preset's
    auto other = preset;
    for (const auto& size : kind.sizes) {
      auto base = make_encoder(model, preset, {});
      other[size.key] = size_in(*base, size) + 5;
    }
    auto published = make_encoder(model, other, {});
    const auto path = save_safetensors(*published, "sdm_sizes_" + model + ".safetensors");

    EncoderFiles files;
    files.weights = path;
    std::unique_ptr<Encoder> loaded;
    ASSERT_NO_THROW(loaded = make_encoder(model, preset, files)) << model;  // the preset's sizes, not pinned
    for (const auto& size : kind.sizes) {
      EXPECT_EQ(size_in(*loaded, size), other[size.key].get<std::int64_t>()) << model << " " << size.key;
    }
    torch::NoGradGuard no_grad;
    const auto inputs = some_cells(*loaded);
    EXPECT_TRUE(torch::allclose(loaded->forward(inputs, false).cell_embedding,
                                published->forward(inputs, false).cell_embedding, 1e-5, 1e-6))
        << model << ": the loaded model is the published one";

    for (const auto& size : kind.sizes) {
      if (!preset.contains(size.key)) continue;  // not a user setting (UCE's max_len)
      files.pinned = {size.key};
      try {
        make_encoder(model, preset, files);
        ADD_FAILURE() << model << ": a pinned " << size.key << " the checkpoint contradicts loaded";
      } catch (const ConfigError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("config." + size.key + " = '" + preset[size.key].dump() + "'"), std::string::npos) << what;
        EXPECT_NE(what.find(size.key + " = " + other[size.key].dump()), std::string::npos) << what;
        EXPECT_NE(what.find(size.tensor), std::string::npos) << what;
      }
    }
    // a pinned size that agrees is fine
    files.pinned.clear();
    for (const auto& size : kind.sizes) {
      if (preset.contains(size.key)) files.pinned.push_back(size.key);
    }
    EXPECT_NO_THROW(make_encoder(model, other, files)) << model;
  }
}

TEST(CheckpointSizes, ScgptTorchSaveFileOfAnotherVocabularyTakesTokenizedIdsOfItsSize) {
  auto config = tiny("scgpt");
  auto other = config;
  other["ntoken"] = 100;  // not the preset's vocabulary
  auto published = make_encoder("scgpt", other, {});
  EncoderFiles files;
  files.weights = save_pt(*published, "sdm_sizes_scgpt.pt");
  auto loaded = make_encoder("scgpt", config, files);
  EXPECT_EQ(loaded->params().at("encoder.embedding.weight").size(0), 100);
  // ids up to 99 are the checkpoint's vocabulary; 100 is outside it
  const auto ids = torch::tensor({{97, 5, 99}}, torch::kInt64);
  const ModelInputs ok{{"src", ids}, {"values", torch::ones({1, 3})}, {"src_key_padding_mask", torch::zeros({1, 3}, torch::kUInt8)}};
  EXPECT_NO_THROW(loaded->check_inputs(ok, "t.h5"));
  ModelInputs bad = ok;
  bad["src"] = torch::tensor({{100, 5, 1}}, torch::kInt64);
  EXPECT_THROW(loaded->check_inputs(bad, "t.h5"), DataError);
}

TEST(CheckpointSizes, UcePositionalTableIsTheCheckpointsNotPadLength) {
  auto config = tiny("uce");
  const auto pad = config.at("pad_length").get<std::int64_t>();
  // the published model keeps 1,536 positions whatever a user pads to
  auto published = make_encoder("uce", config, {});
  EXPECT_EQ(published->params().at("pos_encoder.pe").size(0), std::max<std::int64_t>(1536, pad));
  EncoderFiles files;
  files.weights = save_safetensors(*published, "sdm_sizes_uce.safetensors");
  auto shorter = config;
  shorter["pad_length"] = pad / 2;  // evaluating with a shorter pad_length loads the same table
  EXPECT_NO_THROW(make_encoder("uce", shorter, files));
  auto longer = config;
  longer["pad_length"] = 4000;
  try {
    make_encoder("uce", longer, files);
    ADD_FAILURE() << "pad_length beyond the positional table";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("4000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(std::max<std::int64_t>(1536, pad))), std::string::npos) << e.what();
  }
}

TEST(CheckpointSizes, PinnedKeysAreWhatTheUserSet) {
  const auto c = tiny("geneformer");
  EXPECT_EQ(jobs::pinned_keys(c, {{"vocab_size", 10}, {"architectures", {"x"}}}), std::vector<std::string>{"vocab_size"});
  EXPECT_TRUE(jobs::pinned_keys(c, nullptr).empty());
}

}  // namespace
}  // namespace sdm::worker
