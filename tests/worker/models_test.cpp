// Tokenizers on hand-computed examples, the safetensors reader's validation, and checkpoint loading errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "common/error.h"
#include "common/safetensors.h"
#include "jobs/models.h"
#include "worker/finetune.h"
#include "worker/models/encoder.h"
#include "worker/models/transformer.h"

namespace sdm::worker {
namespace {

namespace fs = std::filesystem;

CsrMatrix one_row(const std::vector<std::int32_t>& cols, const std::vector<float>& values, std::int64_t n_cols) {
  CsrMatrix X;
  X.rows = 1;
  X.cols = n_cols;
  X.indptr = {0, static_cast<std::int64_t>(cols.size())};
  for (auto c : cols) X.indices.push_back(c);
  for (auto v : values) X.data.push_back(v);
  return X;
}

TEST(ScgptTokenizer, BinsDistinctValuesByRank) {
  // 3 distinct values, n_bins 5 -> 4 edges at quantiles 0, 1/3, 2/3, 1 of {1, 2, 4} = 1, 1.667, 2.333(7), 4.
  // digitize: 1 -> left 1, right 0 -> 1; 2 -> 2; 4 -> left 4, right 3 -> 4 (no tie: u does not matter).
  ScgptTokenizer t;
  t.n_bins = 5;
  SplitMix64 rng{7};
  EXPECT_EQ(t.bin({4, 1, 2}, rng), (std::vector<float>{4, 1, 2}));
}

TEST(ScgptTokenizer, TiesSpanTheirEdgesAtRandom) {
  // {5,5,5,5}: every edge equals 5, so left = n_edges and right = 0: a tie lands anywhere in 1..n_edges.
  ScgptTokenizer t;
  t.n_bins = 51;
  std::set<float> seen;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    SplitMix64 rng{seed};
    for (float b : t.bin({5, 5, 5, 5}, rng)) {
      EXPECT_GE(b, 1);
      EXPECT_LE(b, 50);
      seen.insert(b);
    }
  }
  EXPECT_GT(seen.size(), 10u);
  SplitMix64 a{3}, b{3};
  EXPECT_EQ(t.bin({5, 5, 5}, a), t.bin({5, 5, 5}, b)) << "seeded: the same seed gives the same bins";
}

TEST(ScgptTokenizer, ClsFirstZerosAndUnknownGenesDropped) {
  ScgptTokenizer t;
  t.n_bins = 5;
  t.cls_id = 99;
  t.pad_value = -2;
  // columns 0..3; column 2 is not in the vocabulary; column 1 has an explicit zero
  const auto X = one_row({0, 1, 2, 3}, {3, 0, 7, 1}, 4);
  const auto out = t.tokenize(X, {10, 11, -1, 13}, {42});
  EXPECT_EQ(out.ids[0], (std::vector<std::int64_t>{99, 10, 13}));
  EXPECT_EQ(out.values[0], (std::vector<float>{-2, 4, 1}));  // {3, 1}: edges 1, 1.667, 2.333, 3
}

TEST(ScgptTokenizer, LongCellsAreSubsampledWithClsKept) {
  ScgptTokenizer t;
  t.max_seq_len = 4;
  t.cls_id = 0;
  std::vector<std::int32_t> cols;
  std::vector<float> vals;
  for (int i = 0; i < 10; ++i) {
    cols.push_back(i);
    vals.push_back(static_cast<float>(i + 1));
  }
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(100 + i);
  const auto out = t.tokenize(one_row(cols, vals, 10), ids, {1});
  ASSERT_EQ(out.ids[0].size(), 4u);
  EXPECT_EQ(out.ids[0][0], 0);
  std::set<std::int64_t> unique(out.ids[0].begin() + 1, out.ids[0].end());
  EXPECT_EQ(unique.size(), 3u);
}

TEST(GeneformerTokenizer, RankValueEncoding) {
  // counts {a: 10, b: 30, c: 5}, total 50 (another gene not in the dictionary adds 5), medians {a: 0.1, b: 10, c: 1}:
  // a = 10/50e4/0.1 = 20000, b = 30/50e4/10 = 600, c = 5/50e4/1 = 1000 -> order a, c, b.
  std::ofstream f("/tmp/sdm_gf_vocab.json");
  f << R"({"token_dictionary": {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3, "ENSG00000000001": 4, "ENSG00000000002": 5, "ENSG00000000003": 6},
          "gene_median": {"ENSG00000000001": 0.1, "ENSG00000000002": 10, "ENSG00000000003": 1}})";
  f.close();
  const auto vocab = GeneVocab::load("/tmp/sdm_gf_vocab.json");
  const auto ids = map_genes({"ENSG00000000001", "ENSG00000000002.4", "ENSG00000000003", "ENSG00000000009"}, vocab);  // version suffix ignored
  EXPECT_EQ(ids, (std::vector<std::int64_t>{4, 5, 6, -1}));
  const auto X = one_row({0, 1, 2, 3}, {10, 30, 5, 5}, 4);
  GeneformerTokenizer t;
  EXPECT_EQ(t.tokenize(X, ids, vocab, {50}).ids[0], (std::vector<std::int64_t>{4, 6, 5}));
  t.special_tokens = true;
  t.input_size = 4;  // <cls> + 2 genes + <eos>
  EXPECT_EQ(t.tokenize(X, ids, vocab, {50}).ids[0], (std::vector<std::int64_t>{2, 4, 6, 3}));
}

TEST(GeneformerTokenizer, GenesMappedToOneTokenAreSummed) {
  const auto vocab = GeneVocab::hashed(100, 2);
  GeneformerTokenizer t;
  // columns 0 and 1 share token 7; 2 + 2 = 4 beats column 2's 3
  const auto X = one_row({0, 1, 2}, {2, 2, 3}, 3);
  EXPECT_EQ(t.tokenize(X, {7, 7, 9}, vocab, {7}).ids[0], (std::vector<std::int64_t>{7, 9}));
}

std::string write_bytes(const std::string& name, const std::string& bytes) {
  const auto path = (fs::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string header_file(const std::string& name, const std::string& header, std::size_t data_bytes) {
  std::string s(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return write_bytes(name, s + header + std::string(data_bytes, '\0'));
}

TEST(Safetensors, RoundTripAndValidation) {
  const std::vector<float> w{1, 2, 3, 4, 5, 6};
  const auto path = (fs::temp_directory_path() / "sdm_ok.safetensors").string();
  write_safetensors(path, {{"a.weight", "F32", {2, 3}, std::as_bytes(std::span<const float>(w))}});
  const auto f = SafetensorsFile::open(path);
  ASSERT_EQ(f.entries().size(), 1u);
  EXPECT_EQ(f.entries()[0].shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f.bytes(f.entries()[0]).data(), w.data(), 24), 0);

  EXPECT_THROW(SafetensorsFile::open(write_bytes("sdm_short.safetensors", "abc")), IoError);
  // offsets past the end (a truncated file)
  EXPECT_THROW(SafetensorsFile::open(header_file("sdm_trunc.safetensors",
                                                 R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)),
               IoError);
  // byte count does not match the shape
  EXPECT_THROW(SafetensorsFile::open(header_file("sdm_shape.safetensors",
                                                 R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16)),
               IoError);
  EXPECT_THROW(SafetensorsFile::open(header_file("sdm_dtype.safetensors",
                                                 R"({"x":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", 16)),
               IoError);
  EXPECT_THROW(SafetensorsFile::open(header_file("sdm_overlap.safetensors",
                                                 R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                 R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 16)),
               IoError);
  std::string huge(8, '\xff');
  EXPECT_THROW(SafetensorsFile::open(write_bytes("sdm_len.safetensors", huge + "{}")), IoError);
}

nlohmann::json tiny_scgpt() {
  auto c = jobs::resolve_model_config(jobs::model_info("scgpt", ""), "tiny", nlohmann::json::object(), false, "");
  c["ntoken"] = 40;
  c["embsize"] = 8;
  c["nheads"] = 2;
  c["d_hid"] = 8;
  c["nlayers"] = 1;
  return c;
}

/// Saves every parameter of `encoder` (renamed/edited by `edit`) as safetensors.
std::string save(Encoder& encoder, const std::string& name,
                 const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& edit) {
  auto items = encoder.params().items();
  edit(items);
  std::vector<SafetensorsTensor> tensors;
  for (auto& [n, t] : items) {
    t = t.contiguous();
    tensors.push_back({n, "F32", t.sizes().vec(),
                       std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), static_cast<std::size_t>(t.nbytes()))});
  }
  const auto path = (fs::temp_directory_path() / name).string();
  write_safetensors(path, tensors);
  return path;
}

std::string load_error(const std::string& path, bool strict) {
  EncoderFiles files;
  files.weights = path;
  files.load.strict = strict;
  try {
    make_encoder("scgpt", tiny_scgpt(), files);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, LoadsByOriginalNamesAndListsEveryProblem) {
  auto base = make_encoder("scgpt", tiny_scgpt(), {});
  // the published flash-attention names and an unused decoder head load fine, even when strict
  const auto flash = save(*base, "sdm_flash.safetensors", [](auto& items) {
    for (auto& [n, t] : items) {
      if (const auto p = n.find("self_attn.in_proj_"); p != std::string::npos) n.replace(p, 18, "self_attn.Wqkv.");
    }
    items.emplace_back("decoder.fc.0.weight", torch::ones({8, 8}));
  });
  EXPECT_EQ(load_error(flash, true), "");
  EncoderFiles files;
  files.weights = flash;
  auto loaded = make_encoder("scgpt", tiny_scgpt(), files);
  EXPECT_TRUE(torch::equal(loaded->params().at("transformer_encoder.layers.0.self_attn.in_proj_weight"),
                           base->params().at("transformer_encoder.layers.0.self_attn.in_proj_weight")));

  const auto missing = save(*base, "sdm_missing.safetensors", [](auto& items) { items.erase(items.begin() + 3); });
  EXPECT_NE(load_error(missing, false).find("missing: value_encoder.linear1.weight"), std::string::npos) << load_error(missing, false);

  const auto shaped = save(*base, "sdm_shaped.safetensors", [](auto& items) { items[1].second = torch::zeros({9}); });
  EXPECT_NE(load_error(shaped, false).find("mis-shaped: encoder.enc_norm.weight [9] (expected [8])"), std::string::npos)
      << load_error(shaped, false);

  const auto extra = save(*base, "sdm_extra.safetensors", [](auto& items) { items.emplace_back("mystery.weight", torch::zeros({2})); });
  EXPECT_EQ(load_error(extra, false), "") << "unexpected names are skipped with a warning unless strict";
  EXPECT_NE(load_error(extra, true).find("unexpected: mystery.weight"), std::string::npos);
}

TEST(Checkpoint, PublishedConfigOverlaysThePreset) {
  const auto& info = jobs::model_info("geneformer", "");
  const auto c = jobs::resolve_model_config(info, "default", {{"hidden_size", 256}, {"architectures", {"BertForMaskedLM"}}},
                                            true, "config.json");
  EXPECT_EQ(c.at("hidden_size"), 256);
  EXPECT_FALSE(c.contains("architectures"));
  EXPECT_THROW(jobs::resolve_model_config(info, "default", {{"hidden_sise", 256}}, false, "spec"), ConfigError);
  EXPECT_THROW(jobs::resolve_model_config(info, "default", {{"hidden_size", "big"}}, true, "spec"), ConfigError);
  EXPECT_THROW(jobs::resolve_model_config(info, "v3", nlohmann::json::object(), true, "spec"), ConfigError);
}

TEST(Registry, EveryImplementedFoundationModelHasAFactory) {
  for (const auto& m : jobs::model_infos()) {
    if (!m.has_encoder()) continue;
    EXPECT_EQ(encoder_registry().count(m.name) == 1, m.implemented) << m.name;
  }
}

/// A few random cells through a tiny model's own tokenizer and collate.
ModelInputs random_inputs(Encoder& encoder, std::int64_t genes, std::uint64_t seed) {
  CsrMatrix X;
  X.rows = 6;
  X.cols = genes;
  SplitMix64 rng{seed};
  for (std::int64_t r = 0; r < X.rows; ++r) {
    for (std::int64_t g = 0; g < genes; ++g) {
      if (rng.uniform() < 0.4) {
        X.indices.push_back(static_cast<std::int32_t>(g));
        X.data.push_back(static_cast<float>(1 + static_cast<int>(rng.uniform() * 20)));
      }
    }
    X.indptr.push_back(static_cast<std::int64_t>(X.indices.size()));
  }
  std::vector<std::string> symbols;
  for (std::int64_t g = 0; g < genes; ++g) symbols.push_back("GENE" + std::to_string(g));
  const auto cells = encoder.tokenize(X, {symbols, {}}, std::vector<std::uint64_t>(6, seed));
  return encoder.collate(cells, {0, 1, 2, 3, 4, 5});
}

/// Every adapter's B moved off zero, as training would.
void perturb(std::vector<std::pair<std::string, torch::Tensor>>& adapters) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(3);
  for (auto& [name, t] : adapters) {
    if (name.find("lora_B") != std::string::npos) t.normal_(0.0, 0.3, gen);
  }
}

TEST(Lora, FreshAdaptersChangeNothingAndMergedEqualsUnmerged) {
  for (const std::string model : {"scgpt", "geneformer", "cellplm", "tgpt", "llama", "chatglm"}) {
    auto c = model == "scgpt" ? tiny_scgpt()
                              : jobs::resolve_model_config(jobs::model_info(model, ""), "tiny", nlohmann::json::object(), false, "");
    auto encoder = make_encoder(model, c, {});
    const auto inputs = random_inputs(*encoder, 30, 5);
    torch::Tensor base;
    {
      torch::NoGradGuard no_grad;
      base = encoder->forward(inputs, false).cell_embedding.clone();
    }
    // Every site this model offers, so fused q/k/v offsets, out_proj and the feed-forward are all exercised.
    LoraOptions options;
    options.r = 2;
    options.alpha = 4;
    options.dropout = 0;
    options.targets = jobs::model_info(model, "").lora_modules;
    auto adapters = encoder->add_lora(options, 11);
    EXPECT_EQ(adapters.size(), 2 * options.targets.size() * static_cast<std::size_t>(encoder->num_layers())) << model;
    const auto fresh = encoder->forward(inputs, false).cell_embedding;  // grad on: the differentiable attention
    EXPECT_TRUE(fresh.requires_grad()) << model;
    EXPECT_TRUE(torch::allclose(fresh, base, 1e-5, 1e-6)) << model << ": B = 0 must leave the output unchanged";

    perturb(adapters);
    encoder->set_training(true);
    const auto unmerged = encoder->forward(inputs, false).cell_embedding.detach();
    EXPECT_FALSE(torch::allclose(unmerged, base, 1e-3, 1e-4)) << model << ": adapters must change the output";
    // Gradients reach the adapters that feed the embedding.
    encoder->forward(inputs, false).cell_embedding.pow(2).sum().backward();
    std::size_t with_grad = 0;
    for (const auto& [name, t] : adapters) with_grad += t.grad().defined() && t.grad().abs().sum().item<double>() > 0;
    EXPECT_GT(with_grad, adapters.size() / 4) << model;

    encoder->merge_lora();
    EXPECT_EQ(encoder->lora_count(), 0U);
    torch::NoGradGuard no_grad;
    const auto merged = encoder->forward(inputs, false).cell_embedding;  // the blocked inference attention
    EXPECT_TRUE(torch::allclose(merged, unmerged, 1e-4, 1e-5)) << model << ": merged " << (merged - unmerged).abs().max();
  }
}

TEST(Lora, UnknownTargetsAreRefusedByName) {
  auto encoder = make_encoder("scgpt", tiny_scgpt(), {});
  LoraOptions options;
  options.targets = {"query"};
  try {
    encoder->add_lora(options, 0);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("out_proj"), std::string::npos) << e.what();
  }
}

/// A LoRA cell config as expansion writes it, for a tiny scGPT.
nlohmann::json lora_cell(const nlohmann::json& train) {
  return {{"model", {{"name", "scgpt"}}},
          {"seed", 3},
          {"strategy", {{"name", "lora"}, {"options", {{"r", 4}, {"alpha", 8.0}, {"dropout", 0.0}, {"targets", {"out_proj", "Wqkv"}}}}}},
          {"head", {{"layers", {16}}}},
          {"train", train}};
}

/// Cells whose genes say the label, so a trained model can tell them apart.
TokenizedCells signal_cells(int n, std::vector<std::int8_t>& y) {
  TokenizedCells cells;
  SplitMix64 rng{9};
  for (int i = 0; i < n; ++i) {
    const auto label = static_cast<std::int8_t>(i % 2);
    y.push_back(label);
    const int len = 3 + static_cast<int>(rng.uniform() * 6);
    std::vector<std::int64_t> ids{38};  // <cls> of the 40-token tiny vocabulary
    std::vector<float> values{-2};
    for (int j = 1; j < len; ++j) {
      // label 0 expresses genes 1-16, label 1 genes 17-32
      ids.push_back(1 + 16 * label + static_cast<std::int64_t>(rng.uniform() * 16));
      values.push_back(static_cast<float>(1 + static_cast<int>(rng.uniform() * 50)));
    }
    cells.ids.push_back(ids);
    cells.values.push_back(values);
  }
  return cells;
}

TEST(Finetune, LearnsIsSeededAndStopsEarly) {
  std::vector<std::int8_t> y;
  const TokenizedCells cells = signal_cells(96, y);
  FineTuneInput input;
  input.cells = &cells;
  for (std::size_t i = 0; i < 64; ++i) {
    input.train.push_back(i);
    input.y_train.push_back(y[i]);
  }
  for (std::size_t i = 64; i < 96; ++i) input.test.push_back(i);
  const nlohmann::json train{{"epochs", 12}, {"batch_size", 16}, {"lr", 1e-2}, {"weight_decay", 0.01},
                             {"clip_norm", 1.0}, {"schedule", "cosine"}, {"warmup", 0.1}};
  auto config = jobs::resolve_model_config(jobs::model_info("scgpt", ""), "tiny", nlohmann::json::object(), false, "");
  config["ntoken"] = 40;
  auto run = [&](const nlohmann::json& t) {
    auto model = LoadedModel::load("scgpt", config, "", "", false);
    return finetune_lora(model, lora_cell(t), input, nullptr, "");
  };
  const auto a = run(train);
  const auto b = run(train);
  EXPECT_EQ(a.test_scores, b.test_scores) << "same seed, same CPU run";
  EXPECT_EQ(a.log.at("step_loss"), b.log.at("step_loss"));
  const auto& epochs = a.log.at("epoch_loss");
  ASSERT_EQ(epochs.size(), 12U);
  EXPECT_LT(epochs.back().get<double>(), 0.7 * epochs.front().get<double>()) << epochs.dump();
  double correct = 0;
  for (std::size_t i = 0; i < input.test.size(); ++i) correct += (a.test_scores[i] >= 0.5) == (y[input.test[i]] == 1);
  EXPECT_GE(correct / static_cast<double>(input.test.size()), 0.9) << "the label token is learnable through the adapters";
  EXPECT_EQ(a.log.at("shards").at("samples_per_rank"), nlohmann::json::array({64}));
  EXPECT_EQ(a.log.at("adapters"), 4);  // out_proj and Wqkv of both layers
  // A validation share picks the best epoch; patience stops when it stops improving.
  auto early = train;
  early["validation"] = 0.25;
  early["patience"] = 1;
  early["lr"] = 0.1;  // too high on purpose: validation loss turns up quickly
  const auto c = run(early);
  EXPECT_EQ(c.log.at("n_validation"), 16);
  EXPECT_EQ(c.log.at("n_train"), 48);
  const auto& val = c.log.at("validation_loss");
  ASSERT_FALSE(val.empty());
  const auto best = c.log.at("best_epoch").get<std::size_t>();
  for (const auto& v : val) EXPECT_GE(v.get<double>(), val[best - 1].get<double>());
  EXPECT_EQ(c.log.at("early_stopped").get<bool>(), c.log.at("epochs_run").get<int>() < 12);
}

/// One cell per row of (column, count) pairs.
CsrMatrix cells_of(std::int64_t cols, const std::vector<std::vector<std::pair<std::int32_t, float>>>& rows) {
  CsrMatrix X;
  X.rows = static_cast<std::int64_t>(rows.size());
  X.cols = cols;
  for (const auto& row : rows) {
    for (const auto& [c, v] : row) {
      X.indices.push_back(c);
      X.data.push_back(v);
    }
    X.indptr.push_back(static_cast<std::int64_t>(X.indices.size()));
  }
  return X;
}

std::string write_text(const std::string& name, const std::string& text) {
  const auto path = (fs::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

nlohmann::json tiny(const std::string& model) {
  return jobs::resolve_model_config(jobs::model_info(model, ""), "tiny", nlohmann::json::object(), false, "");
}

TEST(ScFoundationTokenizer, PanelOrderLog1pAndTheTwoDepthTokens) {
  // panel: A at 5, B at 2, C at 9; D is not in the panel (dropped, and not part of the total)
  EncoderFiles files;
  files.vocab = write_text("sdm_scf_panel.tsv", "gene_name\tindex\nA\t5\nB\t2\nC\t9\n");
  const auto enc = make_encoder("scfoundation", tiny("scfoundation"), files);
  const auto X = cells_of(4, {{{0, 3}, {1, 1}, {3, 50}}, {{2, 4}}});
  const auto t = enc->tokenize(X, {{"A", "B", "C", "D"}, {}}, {0, 0});
  ASSERT_EQ(t.size(), 2U);
  // cell 0: total 4 over the panel; B (2) before A (5); then T at 128, S at 129 (tiny panel = 128 genes)
  EXPECT_EQ(t.ids[0], (std::vector<std::int64_t>{2, 5, 128, 129}));
  EXPECT_NEAR(t.values[0][0], std::log1p(1.0 / 4 * 1e4), 1e-4);
  EXPECT_NEAR(t.values[0][1], std::log1p(3.0 / 4 * 1e4), 1e-4);
  EXPECT_FLOAT_EQ(t.values[0][2], 4.0f);                       // tgthighres t4
  EXPECT_NEAR(t.values[0][3], std::log10(4.0), 1e-6);          // S = log10(total)
  EXPECT_EQ(t.ids[1], (std::vector<std::int64_t>{9, 128, 129}));
  // the study's FT cut: the first max_tokens tokens
  auto cut = tiny("scfoundation");
  cut["max_tokens"] = 2;
  cut["tgthighres"] = "a5";
  const auto t2 = make_encoder("scfoundation", cut, files)->tokenize(X, {{"A", "B", "C", "D"}, {}}, {0, 0});
  EXPECT_EQ(t2.ids[0], (std::vector<std::int64_t>{2, 5}));
  EXPECT_NEAR(make_encoder("scfoundation", [&] { auto c = tiny("scfoundation"); c["tgthighres"] = "a5"; return c; }(), files)
                  ->tokenize(X, {{"A", "B", "C", "D"}, {}}, {0, 0}).values[1][1], std::log10(4.0) + 5, 1e-5);
  const auto in = enc->collate(t, {0, 1});
  EXPECT_EQ(in.at("x_padding")[1][3].item<int>(), 1);          // cell 1 is one token shorter
  EXPECT_EQ(in.at("position_gene_ids")[1][3].item<std::int64_t>(), 130);  // pad position = seq_len
  EXPECT_FLOAT_EQ(in.at("x")[1][3].item<float>(), 103.0f);
}

TEST(UceTokenizer, ChromosomeGroupedSeededSentences) {
  // gene<TAB>token<TAB>chromosome<TAB>start: A and B on chromosome 1 (B first by start), C on chromosome 0
  EncoderFiles files;
  files.vocab = write_text("sdm_uce_genes.tsv", "gene\ttoken\tchromosome\tstart\nA\t10\t1\t500\nB\t11\t1\t100\nC\t12\t0\t7\n");
  auto c = tiny("uce");
  c["sample_size"] = 40;
  const auto enc = make_encoder("uce", c, files);
  const auto X = cells_of(4, {{{0, 5}, {1, 2}, {2, 9}, {3, 100}}, {{0, 1}}});
  const auto a = enc->tokenize(X, {{"A", "B", "C", "UNKNOWN"}, {}}, {7, 7});
  const auto& s = a.ids[0];
  ASSERT_GE(s.size(), 3U);
  EXPECT_EQ(s.front(), 3);  // <cls>
  std::size_t genes = 0;
  std::int64_t open = -1;
  std::vector<std::int64_t> in_chrom;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] >= 2024) {
      open = s[i] - 2024;
      in_chrom.clear();
    } else if (s[i] == 2) {
      open = -1;
    } else {
      ASSERT_GE(open, 0) << "a gene outside a chromosome";
      EXPECT_EQ(open, s[i] == 12 ? 0 : 1) << s[i];
      if (!in_chrom.empty() && open == 1) {
        EXPECT_FALSE(in_chrom.back() == 10 && s[i] == 11) << "sorted by start";
      }
      in_chrom.push_back(s[i]);
      ++genes;
    }
  }
  EXPECT_EQ(genes, 40U);  // sample_size genes, with replacement; the unknown gene never appears
  EXPECT_EQ(a.ids[1], (std::vector<std::int64_t>{3, 2025, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
                                                  10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
                                                  10, 10, 10, 10, 10, 10, 2}));
  EXPECT_EQ(enc->tokenize(X, {{"A", "B", "C", "UNKNOWN"}, {}}, {7, 7}).ids, a.ids) << "same seed, same sentence";
  EXPECT_NE(enc->tokenize(X, {{"A", "B", "C", "UNKNOWN"}, {}}, {8, 7}).ids[0], s) << "another seed, another sample";
  const auto in = enc->collate(a, {1});
  EXPECT_EQ(in.at("batch_sentences").size(1), 128);  // padded to pad_length, whatever the batch
  EXPECT_EQ(in.at("mask").sum().item<double>(), 43.0);
}

TEST(PerformerTokenizers, ScbertBinsEveryPanelGeneCellLmKeepsNonzeroAfterCls) {
  EncoderFiles files;
  files.vocab = write_text("sdm_perf_panel.tsv", "gene\tindex\nA\t0\nB\t3\nC\t7\n");
  // counts 1, 1, 998 over a total of 1000: log2(1 + 10) = 3.46 -> 3; log2(1 + 9980) -> clamped to 5
  const auto X = cells_of(3, {{{0, 1}, {1, 1}, {2, 998}}});
  const auto bert = make_encoder("scbert", tiny("scbert"), files);
  const auto t = bert->tokenize(X, {{"A", "B", "C"}, {}}, {0});
  const auto x = bert->collate(t, {0}).at("x");
  ASSERT_EQ(x.size(1), 201);  // every panel gene + the appended 0
  EXPECT_EQ(x[0][0].item<std::int64_t>(), 3);
  EXPECT_EQ(x[0][3].item<std::int64_t>(), 3);
  EXPECT_EQ(x[0][7].item<std::int64_t>(), 5);
  EXPECT_EQ(x.sum().item<std::int64_t>(), 11);
  const auto lm = make_encoder("celllm", tiny("celllm"), files);
  const auto in = lm->collate(lm->tokenize(X, {{"A", "B", "C"}, {}}, {0}), {0});
  EXPECT_EQ(in.at("x").size(1), 128);  // fixed max_seq_len
  auto first5 = [](const torch::Tensor& row) {
    const auto c = row[0].narrow(0, 0, 5).contiguous();
    return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + 5);
  };
  EXPECT_EQ(first5(in.at("x")), (std::vector<std::int64_t>{6, 3, 3, 5, 7}));  // <cls>, bins, <pad>
  EXPECT_EQ(first5(in.at("gene_pos")), (std::vector<std::int64_t>{200, 0, 3, 7, 201}));
  EXPECT_EQ(in.at("mask").sum().item<std::int64_t>(), 4);
}

TEST(NewEncoders, BatchingDoesNotChangeACell) {
  // scFoundation pools each cell over its own tokens; UCE and CellLM pad to a fixed length; the causal models pad
  // on the right, after every real token. (CellPLM attends across cells: tests/worker/models3_test.cpp.)
  for (const std::string model : {"scfoundation", "uce", "scbert", "celllm", "tgpt", "llama", "chatglm"}) {
    auto enc = make_encoder(model, tiny(model), {});
    CsrMatrix X;
    X.rows = 5;
    X.cols = 60;
    SplitMix64 rng{4};
    for (std::int64_t r = 0; r < X.rows; ++r) {
      for (std::int32_t g = 0; g < 60; ++g) {
        if (rng.uniform() < 0.15 * static_cast<double>(r + 1)) {
          X.indices.push_back(g);
          X.data.push_back(static_cast<float>(1 + static_cast<int>(rng.uniform() * 30)));
        }
      }
      X.indptr.push_back(static_cast<std::int64_t>(X.indices.size()));
    }
    std::vector<std::string> symbols;
    for (int g = 0; g < 60; ++g) symbols.push_back("G" + std::to_string(g));
    const auto t = enc->tokenize(X, {symbols, {}}, {1, 2, 3, 4, 5});
    torch::NoGradGuard no_grad;
    const auto together = enc->forward(enc->collate(t, {0, 1, 2, 3, 4}), false).cell_embedding;
    for (std::size_t r = 0; r < 5; ++r) {
      const auto alone = enc->forward(enc->collate(t, {r}), false).cell_embedding[0];
      EXPECT_TRUE(torch::allclose(alone, together[static_cast<std::int64_t>(r)], 1e-4, 1e-5)) << model << " cell " << r;
    }
  }
}

TEST(Transformer, FirstPositionOnlyEqualsTheFullLayer) {
  // the <cls>-only last layer (scGPT, UCE embeddings) against the whole layer at position 0, for right padding
  // (a full, a short and an empty cell), an additive bias mask, relu and gelu
  torch::manual_seed(7);
  const std::int64_t d = 16, B = 3, L = 7;
  PostLnLayer layer;
  layer.heads = 4;
  const auto randn = [](std::vector<std::int64_t> shape) { return torch::randn(shape) * 0.3; };
  layer.in_w = randn({3 * d, d}), layer.in_b = randn({3 * d});
  layer.out_w = randn({d, d}), layer.out_b = randn({d});
  layer.ff1_w = randn({2 * d, d}), layer.ff1_b = randn({2 * d});
  layer.ff2_w = randn({d, 2 * d}), layer.ff2_b = randn({d});
  layer.ln1_w = 1 + randn({d}), layer.ln1_b = randn({d}), layer.ln2_w = 1 + randn({d}), layer.ln2_b = randn({d});
  const auto x = torch::randn({B, L, d});
  KeyMask padded;
  padded.lengths = {L, 3, 0};
  KeyMask biased;
  biased.lengths = {L, L, L};
  biased.bias = torch::zeros({B, L});
  biased.bias.index_put_({1, torch::indexing::Slice(4, L)}, -std::numeric_limits<float>::infinity());
  biased.bias[2] = torch::linspace(0, 1, L);
  for (const bool gelu : {false, true}) {
    layer.gelu = gelu;
    for (const auto* mask : {&padded, &biased}) {
      ASSERT_TRUE(first_position_suffices(x, layer));
      const auto full = post_ln_forward(x, layer, *mask).select(1, 0);
      const auto first = post_ln_forward_first(x, layer, *mask);
      for (std::int64_t b = 0; b < B; ++b) {
        if (mask == &padded && b == 2) continue;  // no tokens: position 0 carries no meaning on either path
        EXPECT_TRUE(torch::allclose(first[b], full[b], 1e-5, 1e-6)) << "cell " << b << " gelu " << gelu;
      }
    }
  }
  LoraAdapter adapter{torch::zeros({2, d}), torch::zeros({3 * d, 2})};
  layer.lora.emplace_back(Projection::kInProj, &adapter);
  EXPECT_FALSE(first_position_suffices(x, layer)) << "unmerged adapters need the full layer";
}

}  // namespace
}  // namespace sdm::worker
