// Foundation models III: the LLM path's tokenizers (byte-level BPE on hand-checked merges, SentencePiece against
// the python sentencepiece package), cell sentences, tGPT's ranked gene sentences, CellPLM's batch groups, and the
// memory-mapped sharded loader.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/safetensors.h"
#include "jobs/models.h"
#include "worker/embedding.h"
#include "worker/models/encoder.h"
#include "worker/models/text_tokenizers.h"

namespace sdm::worker {
namespace {

namespace fs = std::filesystem;

nlohmann::json tiny(const std::string& model) {
  return jobs::resolve_model_config(jobs::model_info(model, ""), "tiny", nlohmann::json::object(), false, "");
}

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = (fs::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

CsrMatrix rows_of(const std::vector<std::vector<float>>& dense) {
  CsrMatrix X;
  X.rows = static_cast<std::int64_t>(dense.size());
  X.cols = static_cast<std::int64_t>(dense.front().size());
  for (const auto& row : dense) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (row[c] != 0) {
        X.indices.push_back(static_cast<std::int32_t>(c));
        X.data.push_back(row[c]);
      }
    }
    X.indptr.push_back(static_cast<std::int64_t>(X.indices.size()));
  }
  return X;
}

// ------------------------------------------------------------------------------------------------ byte-level BPE

TEST(ByteLevel, AlphabetIsGpt2s) {
  const auto& a = byte_level_alphabet();
  EXPECT_EQ(a['!'], "!");
  EXPECT_EQ(a[' '], "\u0120");   // Ġ: the space of every GPT-2 / LLaMA-3 vocabulary
  EXPECT_EQ(a['\n'], "\u010A");  // Ċ
  EXPECT_EQ(a[0], "\u0100");
  EXPECT_EQ(a[0xAD], "\u0143");  // the 68th unprintable byte: 256 + 33 + 34
  EXPECT_EQ(a[0xE9], "\u00E9");
}

// vocabulary a b c Ġ bc ab Ġab; merges by rank: "b c" (0) before "a b" (1), then "Ġ ab" (2)
const char* kBpeJson = R"({
  "version": "1.0", "normalizer": null,
  "added_tokens": [{"id": 7, "content": "<|begin_of_text|>", "special": true}],
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [7], "tokens": ["<|begin_of_text|>"]}}},
  "model": {"type": "BPE", "ignore_merges": false,
    "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "bc": 4, "ab": 5, "\u0120ab": 6},
    "merges": ["b c", "a b", ["\u0120", "ab"]]}
})";

TEST(BpeTokenizer, MergesByRankWithBosAndAddedTokens) {
  const auto tok = load_bpe_tokenizer(write_file("sdm_bpe.json", kBpeJson));
  // "abc" -> a b c -> (b c) first -> [a, bc]; " ab" -> Ġ a b -> Ġ ab -> Ġab
  EXPECT_EQ(tok->encode("abc ab"), (std::vector<std::int64_t>{7, 0, 4, 6}));
  EXPECT_EQ(tok->encode("abab"), (std::vector<std::int64_t>{7, 5, 5}));  // both pairs merge, ab ab has no merge
  EXPECT_EQ(tok->encode("cab"), (std::vector<std::int64_t>{7, 2, 5}));
  // an added token inside the text is one id, never split
  EXPECT_EQ(tok->encode("ab<|begin_of_text|>c"), (std::vector<std::int64_t>{7, 5, 7, 2}));
  EXPECT_EQ(tok->vocab_size(), 8);
  // truncation keeps BOS and cuts the text's tokens (and stops encoding there)
  EXPECT_EQ(tok->encode("abc ab abc", 3), (std::vector<std::int64_t>{7, 0, 4}));
  EXPECT_EQ(byte_tokenizer()->encode("abc", 2), (std::vector<std::int64_t>{1, 3 + 'a'}));
  EXPECT_THROW(tok->encode("abd"), DataError);  // 'd' is no symbol of this vocabulary
}

TEST(BpeTokenizer, Llama3SplitRegexAndIgnoreMerges) {
  // LLaMA-3's tokenizer.json pre-tokenizer, verbatim: digits in groups of three, a letter run with one leading
  // non-letter, punctuation runs, whitespace.
  const std::string pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  nlohmann::json j = nlohmann::json::parse(kBpeJson);
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["model"]["ignore_merges"] = true;
  j["model"]["merges"] = nlohmann::json::array();
  j["model"]["vocab"] = {{"123", 0}, {"45", 1}, {"\u0120TP", 2}, {"53", 3}, {"-", 4}, {"HLA", 5}, {"\u0120", 6}};
  const auto tok = load_bpe_tokenizer(write_file("sdm_bpe_llama3.json", j.dump()));
  // "12345" -> 123 | 45 (digits in threes); " TP" keeps its space; "53"
  EXPECT_EQ(tok->encode("12345 TP53"), (std::vector<std::int64_t>{7, 0, 1, 2, 3}));
  j["model"]["vocab"]["-HLA"] = 8;
  const auto tok2 = load_bpe_tokenizer(write_file("sdm_bpe_llama3b.json", j.dump()));
  // one non-letter directly before letters joins them ([^\r\n\p{L}\p{N}]?\p{L}+)
  EXPECT_EQ(tok2->encode("-HLA"), (std::vector<std::int64_t>{7, 8}));
  // an unsupported pre-tokenizer is named
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  try {
    load_bpe_tokenizer(write_file("sdm_bpe_bad.json", j.dump()));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Metaspace"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------------------------ SentencePiece

TEST(SentencePiece, MatchesThePythonPackageOnBpeAndUnigramModels) {
  const auto dir = fs::temp_directory_path() / "sdm_spm";
  fs::create_directories(dir);
  // The reference: python sentencepiece trains two small models and encodes the probe texts.
  const auto script = write_file("sdm_spm.py", R"(
import json, sys, sentencepiece as spm
d = sys.argv[1]
genes = "TP53 EGFR MYC KRAS BRCA1 BRCA2 CD19 CD3E GAPDH ACTB MT_CO1 RPL13A HLA_DRA CD74 MALAT1 S100A9 LYZ".split()
lines = [" ".join(genes[i:] + genes[:i]) + " " + " ".join(str(i * k % 97) for k in range(5)) for i in range(len(genes))]
open(d + "/corpus.txt", "w").write("\n".join(lines * 20))
texts = ["TP53 EGFR MYC", "  CD74 12   MALAT1 40 ", "BRCA1 BRCA2 zq xyzzy", "LYZ", "S100A9 7 GAPDH 130"]
out = {}
for kind in ["bpe", "unigram"]:
    spm.SentencePieceTrainer.train(input=d + "/corpus.txt", model_prefix=d + "/" + kind, vocab_size=300, hard_vocab_limit=False,
                                   model_type=kind, byte_fallback=True, character_coverage=1.0, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=d + "/" + kind + ".model")
    out[kind] = {"texts": texts, "ids": [sp.encode(t) for t in texts], "size": sp.get_piece_size(), "bos": sp.bos_id()}
json.dump(out, open(d + "/expected.json", "w"))
)");
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + dir.string()).c_str()), 0) << "python3-sentencepiece is needed";
  const auto expected = nlohmann::json::parse(std::ifstream(dir / "expected.json"));
  for (const std::string kind : {"bpe", "unigram"}) {
    const auto& e = expected.at(kind);
    const auto tok = load_sentencepiece_tokenizer((dir / (kind + ".model")).string(), false);
    const auto glm = load_sentencepiece_tokenizer((dir / (kind + ".model")).string(), true);
    const std::int64_t size = e.at("size");
    EXPECT_EQ(tok->vocab_size(), size);
    EXPECT_EQ(glm->vocab_size(), size + 5);  // ChatGLM's five special tokens follow the pieces
    for (std::size_t i = 0; i < e.at("texts").size(); ++i) {
      const std::string text = e.at("texts")[i];
      auto want = e.at("ids")[i].get<std::vector<std::int64_t>>();
      want.insert(want.begin(), e.at("bos").get<std::int64_t>());
      EXPECT_EQ(tok->encode(text), want) << kind << ": '" << text << "'";
      if (want.size() > 3) {
        EXPECT_EQ(tok->encode(text, 3), std::vector<std::int64_t>(want.begin(), want.begin() + 3)) << kind << " truncated";
      }
      auto glm_want = e.at("ids")[i].get<std::vector<std::int64_t>>();
      glm_want.insert(glm_want.begin(), {size + 1, size + 3});  // [gMASK] sop
      EXPECT_EQ(glm->encode(text), glm_want) << kind;
    }
  }
  EXPECT_THROW(load_sentencepiece_tokenizer(write_file("sdm_bad.model", "\x0a\xff\xff"), false), IoError);
}

// ------------------------------------------------------------------------------------------------ cell sentences

TEST(CellSentence, RankTopKValuesAndTheStudysZeroBug) {
  const auto X = rows_of({{0, 5, 1, 5, 0, 9}});
  const std::vector<std::string> genes{"A", "B", "C", "D", "E", "F"};
  CellSentenceOptions o;
  o.genes = 3;
  EXPECT_EQ(cell_sentence(X, 0, genes, o), "F B D");  // descending, ties in column order, top 3
  o.values = "raw";
  EXPECT_EQ(cell_sentence(X, 0, genes, o), "F 9 B 5 D 5");
  o.values = "binned";
  o.bins = 4;  // ceil(log1p(v) / log1p(9) * 4): 9 -> 4, 5 -> 4 (3.11 -> 4), 1 -> 2
  o.genes = 0;
  EXPECT_EQ(cell_sentence(X, 0, genes, o), "F 4 B 4 D 4 C 2");
  // the study: every column in file order as GENE<value>, zeros included
  CellSentenceOptions study;
  study.order = "column";
  study.genes = 0;
  study.values = "raw";
  study.item = "{gene}{value}";
  study.keep_zero_genes = true;
  EXPECT_EQ(cell_sentence(X, 0, genes, study), "A0 B5 C1 D5 E0 F9");
  study.keep_zero_genes = false;  // the fix
  EXPECT_EQ(cell_sentence(X, 0, genes, study), "B5 C1 D5 F9");
  o.item = "{gene}";
  EXPECT_THROW(o.validate(), ConfigError);
}

// ------------------------------------------------------------------------------------------------ tGPT

TEST(TgptTokenizer, RankedSymbolsBetweenBosAndEos) {
  auto vocab = write_file("sdm_tgpt_vocab.json", R"({"model": {"type": "WordLevel", "unk_token": "<unk>", "vocab":
      {"<pad>": 0, "</b>": 1, "</s>": 2, "<unk>": 3, "HLA_DRA": 4, "CD74": 5, "MT_CO1": 6, "ACTB": 7}}})");
  auto c = tiny("tgpt");
  c["max_length"] = 5;  // BOS + 3 genes + EOS
  auto enc = make_encoder("tgpt", c, {"", vocab, {}});
  const auto X = rows_of({{3, 9, 0, 1, 4}, {0, 0, 0, 0, 0}});
  const auto t = enc->tokenize(X, {{"CD74", "HLA-DRA", "ACTB", "XIST", "MT.CO1"}, {}}, {0, 0});
  // HLA-DRA (9) -> HLA_DRA, MT.CO1 (4) -> MT_CO1, CD74 (3); XIST (1) is cut; '-' and '.' read as '_'
  EXPECT_EQ(t.ids[0], (std::vector<std::int64_t>{1, 4, 6, 5, 2}));
  EXPECT_EQ(t.ids[1], (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(t.cells_without_genes, 1U);
  const auto u = enc->tokenize(rows_of({{0, 0, 0, 7, 0}}), {{"CD74", "HLA-DRA", "ACTB", "XIST", "MT.CO1"}, {}}, {0});
  EXPECT_EQ(u.ids[0], (std::vector<std::int64_t>{1, 3, 2}));  // XIST is not in the vocabulary: <unk>
}

// ------------------------------------------------------------------------------------------------ CellPLM

TEST(Cellplm, CellsAttendAcrossTheirGroupAndGroupsAreFixed) {
  auto c = tiny("cellplm");
  c["batch_cells"] = 4;
  const auto model = LoadedModel::load("cellplm", c, "", "", false);
  std::vector<std::vector<float>> dense;
  for (int r = 0; r < 10; ++r) {
    std::vector<float> row(40, 0);
    for (int g = 0; g < 40; ++g) row[static_cast<std::size_t>(g)] = static_cast<float>((r * 7 + g * 3) % 11 > 6 ? (r + g) % 9 : 0);
    dense.push_back(row);
  }
  const auto X = rows_of(dense);
  std::vector<std::string> genes, obs;
  for (int g = 0; g < 40; ++g) genes.push_back("G" + std::to_string(g));
  for (int r = 0; r < 10; ++r) obs.push_back("c" + std::to_string(r));
  const auto a = embed_cells(model, X, genes, {}, obs, 1, 0);
  const auto b = embed_cells(model, X, genes, {}, obs, 7, 0);
  EXPECT_EQ(a.values, b.values) << "the caller's batch size must not change CellPLM's groups";
  // a cell's embedding depends on its group: change cell 1, and cells 0, 2, 3 move while cells 4.. do not
  dense[1][0] += 50;
  const auto changed = embed_cells(model, rows_of(dense), genes, {}, obs, 1, 0);
  const auto row_differs = [&](std::size_t r) {
    for (std::int64_t k = 0; k < a.d; ++k) {
      if (std::abs(a.values[r * static_cast<std::size_t>(a.d) + static_cast<std::size_t>(k)] -
                   changed.values[r * static_cast<std::size_t>(a.d) + static_cast<std::size_t>(k)]) > 1e-6) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(row_differs(0));
  EXPECT_TRUE(row_differs(3));
  for (std::size_t r = 4; r < 10; ++r) EXPECT_FALSE(row_differs(r)) << r;
  EXPECT_TRUE(jobs::attends_across_cells("cellplm"));
  EXPECT_FALSE(jobs::attends_across_cells("scgpt"));
}

// ------------------------------------------------------------------------------------------------ sharded loading

/// The address ranges /proc/self/maps shows for files whose path contains `fragment`.
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> mappings_of(const std::string& fragment) {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(fragment) == std::string::npos) continue;
    std::uintptr_t lo = 0, hi = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi);
    out.emplace_back(lo, hi);
  }
  return out;
}

TEST(ShardedLoader, LlmWeightsAreViewsOfTheMappedShards) {
  auto c = tiny("llama");
  c["hidden_size"] = 128;
  c["intermediate_size"] = 256;
  const auto original = make_encoder("llama", c, {});
  const auto dir = fs::temp_directory_path() / "sdm_sharded_llama";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // three shards, tensors dealt round-robin, plus the Hugging Face index
  std::vector<std::vector<SafetensorsTensor>> shards(3);
  nlohmann::json weight_map;
  std::size_t i = 0;
  for (const auto& [name, t] : original->params().items()) {
    const auto shard = "model-0000" + std::to_string(i % 3 + 1) + "-of-00003.safetensors";
    shards[i % 3].push_back({name, "F32", t.sizes().vec(),
                             {static_cast<const std::byte*>(t.data_ptr()), static_cast<std::size_t>(t.nbytes())}});
    weight_map[name] = shard;
    ++i;
  }
  for (std::size_t s = 0; s < 3; ++s) {
    write_safetensors((dir / ("model-0000" + std::to_string(s + 1) + "-of-00003.safetensors")).string(), shards[s]);
  }
  std::ofstream(dir / "model.safetensors.index.json") << nlohmann::json{{"metadata", {}}, {"weight_map", weight_map}}.dump();

  const auto loaded = make_encoder("llama", c, {dir.string(), "", {}});  // the directory: sdm finds the index
  const auto ranges = mappings_of("sdm_sharded_llama/model-0000");
  ASSERT_FALSE(ranges.empty());
  for (const auto& [name, t] : loaded->params().items()) {
    const auto p = reinterpret_cast<std::uintptr_t>(t.data_ptr());
    bool inside = false;
    for (const auto& [lo, hi] : ranges) inside = inside || (p >= lo && p + static_cast<std::uintptr_t>(t.nbytes()) <= hi);
    EXPECT_TRUE(inside) << name << " was copied instead of mapped";
  }
  for (std::size_t k = 0; k < loaded->params().items().size(); ++k) {
    EXPECT_TRUE(torch::equal(loaded->params().items()[k].second, original->params().items()[k].second)) << k;
  }
  // LoRA merges write into the copy-on-write mapping, never into the file
  LoraOptions lora;
  lora.targets = {"q_proj"};
  auto adapters = loaded->add_lora(lora, 1);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : adapters) t.fill_(0.5);
  }
  loaded->merge_lora();
  const auto reread = make_encoder("llama", c, {dir.string(), "", {}});
  EXPECT_TRUE(torch::equal(reread->params().at("model.layers.0.self_attn.q_proj.weight"),
                           original->params().at("model.layers.0.self_attn.q_proj.weight")));
  EXPECT_FALSE(torch::equal(loaded->params().at("model.layers.0.self_attn.q_proj.weight"),
                            original->params().at("model.layers.0.self_attn.q_proj.weight")));
  // cell ids hash every shard: the directory and its index hash alike, and a changed shard changes the hash
  const auto hash = checkpoint_content_hash(dir.string());
  EXPECT_EQ(hash, checkpoint_content_hash((dir / "model.safetensors.index.json").string()));
  std::ofstream(dir / "model-00003-of-00003.safetensors", std::ios::app) << " ";
  EXPECT_NE(hash, checkpoint_content_hash(dir.string()));
  // a shard the index names but the directory lacks is one clear error naming it
  fs::remove(dir / "model-00002-of-00003.safetensors");
  try {
    make_encoder("llama", c, {dir.string(), "", {}});
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("model-00002-of-00003.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdm::worker
