#include "worker/models/text_tokenizers.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <unordered_map>

#include "common/error.h"

namespace sdm::worker {

namespace {

using nlohmann::json;

std::string utf8(std::uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

/// Splits UTF-8 text into its characters (each a string of 1-4 bytes).
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    n = std::min(n, s.size() - i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

/// A compiled PCRE2 pattern (RAII) that splits text the way tokenizers' Split(behavior=Isolated) does: every match
/// is a piece, and so is any text between matches.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& source) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &error,
                          &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw ConfigError({source, "pre_tokenizer.pattern", pattern.substr(0, 60)},
                        std::string("cannot compile the split regex: ") + reinterpret_cast<const char*>(message));
    }
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }

  std::vector<std::string> split(const std::string& text) const {
    std::vector<std::string> pieces;
    PCRE2_SIZE start = 0, last = 0;
    while (start < text.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0, data_, nullptr);
      if (rc < 0) break;
      const auto* ov = pcre2_get_ovector_pointer(data_);
      if (ov[0] > last) pieces.push_back(text.substr(last, ov[0] - last));
      if (ov[1] == ov[0]) {  // empty match: step one character
        start = ov[1] + utf8_chars(text.substr(ov[1], 4)).front().size();
        continue;
      }
      pieces.push_back(text.substr(ov[0], ov[1] - ov[0]));
      start = last = ov[1];
    }
    if (last < text.size()) pieces.push_back(text.substr(last));
    return pieces;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex = true).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class BpeTokenizer final : public TextTokenizer {
 public:
  explicit BpeTokenizer(const std::string& path) : path_(path) {
    std::ifstream in(path);
    if (!in) throw IoError({path, "", ""}, "cannot read the tokenizer file");
    json j;
    try {
      j = json::parse(in);
    } catch (const std::exception& e) {
      throw ConfigError({path, "", ""}, std::string("not a JSON tokenizer: ") + e.what());
    }
    const auto& model = j.value("model", json::object());
    if (model.value("type", std::string()) != "BPE") {
      throw ConfigError({path, "model.type", model.value("type", std::string("?"))}, "expected a byte-level BPE model");
    }
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
      throw ConfigError({path, "normalizer", j["normalizer"].value("type", std::string("?"))},
                        "normalizers are not supported (LLaMA-3 and GPT-2 have none)");
    }
    for (const auto& [token, id] : model.at("vocab").items()) {
      vocab_[token] = id.get<std::int64_t>();
      size_ = std::max(size_, id.get<std::int64_t>() + 1);
    }
    std::int64_t rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {  // "a b" (older files)
        const auto s = m.get<std::string>();
        const auto space = s.find(' ', 1);
        if (space == std::string::npos) throw ConfigError({path, "model.merges", s}, "a merge is two symbols");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else {  // ["a", "b"] (tokenizers >= 0.20)
        a = m.at(0).get<std::string>();
        b = m.at(1).get<std::string>();
      }
      merges_.emplace(a + '\x01' + b, rank++);
    }
    ignore_merges_ = model.value("ignore_merges", false);
    for (const auto& t : j.value("added_tokens", json::array())) {
      added_.emplace_back(t.at("content").get<std::string>(), t.at("id").get<std::int64_t>());
      size_ = std::max(size_, added_.back().second + 1);
    }
    std::sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
    read_pre_tokenizer(j.value("pre_tokenizer", json()));
    read_template(j.value("post_processor", json()));
  }

  std::int64_t vocab_size() const override { return size_; }
  std::string describe() const override { return "byte-level BPE " + path_; }

 protected:
  std::vector<std::int64_t> prefix() const override { return prefix_; }
  std::vector<std::int64_t> suffix() const override { return suffix_; }

  void append(const std::string& text, std::size_t limit, std::vector<std::int64_t>& ids) const override {
    std::size_t pos = 0;
    while (pos <= text.size() && ids.size() < limit) {  // added tokens in the text are atomic
      std::size_t next = std::string::npos;
      const std::pair<std::string, std::int64_t>* hit = nullptr;
      for (const auto& a : added_) {
        const auto at = text.find(a.first, pos);
        if (at != std::string::npos && (at < next || (at == next && hit && a.first.size() > hit->first.size()))) {
          next = at;
          hit = &a;
        }
      }
      encode_plain(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos), limit, ids);
      if (!hit) break;
      ids.push_back(hit->second);
      pos = next + hit->first.size();
    }
  }

 private:
  void read_pre_tokenizer(const json& p) {
    if (p.is_null()) throw ConfigError({path_, "pre_tokenizer", "null"}, "expected a ByteLevel (or Split + ByteLevel) pre-tokenizer");
    const auto type = p.value("type", std::string());
    if (type == "Sequence") {
      for (const auto& q : p.at("pretokenizers")) read_pre_tokenizer(q);
      return;
    }
    if (type == "Split") {
      const auto behavior = p.value("behavior", std::string("Isolated"));
      if (behavior != "Isolated" || p.value("invert", false)) {
        throw ConfigError({path_, "pre_tokenizer.behavior", behavior}, "only Split(behavior=Isolated, invert=false) is supported");
      }
      const auto& pattern = p.at("pattern");
      if (!pattern.contains("Regex")) throw ConfigError({path_, "pre_tokenizer.pattern", pattern.dump()}, "expected a Regex pattern");
      split_ = std::make_unique<Regex>(pattern.at("Regex").get<std::string>(), path_);
      return;
    }
    if (type == "ByteLevel") {
      byte_level_ = true;
      prefix_space_ = p.value("add_prefix_space", false);
      if (p.value("use_regex", true)) split_ = std::make_unique<Regex>(kGpt2Pattern, path_);
      return;
    }
    throw ConfigError({path_, "pre_tokenizer.type", type}, "unsupported pre-tokenizer (Split, ByteLevel, Sequence of them)");
  }

  void read_template(const json& p) {
    if (p.is_null()) return;
    if (p.value("type", std::string()) == "Sequence") {
      for (const auto& q : p.at("processors")) read_template(q);
      return;
    }
    if (p.value("type", std::string()) != "TemplateProcessing") return;  // ByteLevel post-processing: offsets only
    bool before = true;
    for (const auto& piece : p.at("single")) {
      if (piece.contains("Sequence")) {
        before = false;
        continue;
      }
      const auto name = piece.at("SpecialToken").at("id").get<std::string>();
      const auto& special = p.at("special_tokens").at(name);
      for (const auto& id : special.at("ids")) (before ? prefix_ : suffix_).push_back(id.get<std::int64_t>());
    }
  }

  void encode_plain(const std::string& text, std::size_t limit, std::vector<std::int64_t>& ids) const {
    if (text.empty()) return;
    const std::string input = prefix_space_ && text.front() != ' ' ? " " + text : text;
    const auto pieces = split_ ? split_->split(input) : std::vector<std::string>{input};
    const auto& alphabet = byte_level_alphabet();
    for (const auto& piece : pieces) {
      if (ids.size() >= limit) return;
      std::string mapped;
      for (unsigned char c : piece) mapped += byte_level_ ? alphabet[c] : std::string(1, static_cast<char>(c));
      if (ignore_merges_) {
        if (const auto it = vocab_.find(mapped); it != vocab_.end()) {
          ids.push_back(it->second);
          continue;
        }
      }
      for (const auto& symbol : merge(utf8_chars(mapped))) {
        const auto it = vocab_.find(symbol);
        if (it == vocab_.end()) throw DataError({path_, "model.vocab", symbol}, "a BPE symbol is not in the vocabulary");
        ids.push_back(it->second);
      }
    }
  }

  /// Repeatedly merges the adjacent pair of lowest rank (every occurrence, left to right), as BPE defines.
  std::vector<std::string> merge(std::vector<std::string> word) const {
    while (word.size() > 1) {
      std::int64_t best = std::numeric_limits<std::int64_t>::max();
      std::string best_key;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const auto key = word[i] + '\x01' + word[i + 1];
        const auto it = merges_.find(key);
        if (it != merges_.end() && it->second < best) {
          best = it->second;
          best_key = key;
        }
      }
      if (best_key.empty()) break;
      std::vector<std::string> out;
      for (std::size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] + '\x01' + word[i + 1] == best_key) {
          out.push_back(word[i] + word[i + 1]);
          ++i;
        } else {
          out.push_back(word[i]);
        }
      }
      word = std::move(out);
    }
    return word;
  }

  std::string path_;
  std::unordered_map<std::string, std::int64_t> vocab_;
  std::unordered_map<std::string, std::int64_t> merges_;
  std::vector<std::pair<std::string, std::int64_t>> added_;  ///< longest first
  std::unique_ptr<Regex> split_;
  bool byte_level_ = false, prefix_space_ = false, ignore_merges_ = false;
  std::vector<std::int64_t> prefix_, suffix_;
  std::int64_t size_ = 0;
};

/// Minimal protobuf wire-format reader: enough for sentencepiece_model.proto (varints, fixed32, length-delimited).
class WireReader {
 public:
  WireReader(std::string bytes, std::string source)
      : data_(std::move(bytes)), p_(data_.data()), end_(data_.data() + data_.size()), source_(std::move(source)) {}
  bool next(std::uint32_t& field, std::uint32_t& wire) {
    if (p_ >= end_) return false;
    const auto key = varint();
    field = static_cast<std::uint32_t>(key >> 3);
    wire = static_cast<std::uint32_t>(key & 7);
    return true;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail();
      const auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail();
  }
  std::string bytes() {
    const auto n = varint();
    if (n > static_cast<std::uint64_t>(end_ - p_)) fail();
    std::string s(p_, static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  float fixed32() {
    if (end_ - p_ < 4) fail();
    float f;
    std::memcpy(&f, p_, 4);  // little-endian, as x86 and aarch64
    p_ += 4;
    return f;
  }
  void skip(std::uint32_t wire) {
    if (wire == 0) {
      varint();
    } else if (wire == 1) {
      if (end_ - p_ < 8) fail();
      p_ += 8;
    } else if (wire == 2) {
      bytes();
    } else if (wire == 5) {
      fixed32();
    } else {
      fail();
    }
  }

 private:
  [[noreturn]] void fail() const { throw IoError({source_, "", ""}, "truncated or not a SentencePiece model (protobuf)"); }
  std::string data_;  ///< owned: nested messages are read from temporaries
  const char* p_;
  const char* end_;
  std::string source_;
};

/// A SentencePiece tokenizer.model read by our own protobuf reader and encoder (BPE: merge the adjacent pair whose
/// piece scores highest, leftmost on ties; unigram: Viterbi over piece scores; byte fallback; whitespace
/// normalization and the ▁ escape). Debian's libsentencepiece is not used: it carries its own copy of protobuf-lite
/// whose exported symbols collide with LibTorch's libprotobuf and crash the process while it loads. The model's
/// precompiled NFKC map is not applied, so text must be printable ASCII (cell sentences are), else a DataError.
class SentencePieceTokenizer final : public TextTokenizer {
 public:
  SentencePieceTokenizer(const std::string& path, bool chatglm) : path_(path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError({path, "", ""}, "cannot read the SentencePiece model");
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    WireReader model(data, path);
    std::uint32_t field = 0, wire = 0;
    while (model.next(field, wire)) {
      if (field == 1 && wire == 2) {
        WireReader piece(model.bytes(), path);
        Piece p;
        while (piece.next(field, wire)) {
          if (field == 1 && wire == 2) p.text = piece.bytes();
          else if (field == 2 && wire == 5) p.score = piece.fixed32();
          else if (field == 3 && wire == 0) p.type = static_cast<int>(piece.varint());
          else piece.skip(wire);
        }
        pieces_.push_back(p);
      } else if (field == 2 && wire == 2) {
        WireReader trainer(model.bytes(), path);
        while (trainer.next(field, wire)) {
          if (field == 3 && wire == 0) bpe_ = trainer.varint() == 2;
          else if (field == 35 && wire == 0) byte_fallback_ = trainer.varint() != 0;
          else if (field == 40 && wire == 0) unk_id_ = static_cast<std::int64_t>(trainer.varint());
          else if (field == 41 && wire == 0) bos_id_ = static_cast<std::int32_t>(trainer.varint());
          else trainer.skip(wire);
        }
      } else if (field == 3 && wire == 2) {
        WireReader normalizer(model.bytes(), path);
        while (normalizer.next(field, wire)) {
          if (field == 3 && wire == 0) dummy_prefix_ = normalizer.varint() != 0;
          else if (field == 4 && wire == 0) collapse_spaces_ = normalizer.varint() != 0;
          else if (field == 5 && wire == 0) escape_spaces_ = normalizer.varint() != 0;
          else normalizer.skip(wire);
        }
      } else {
        model.skip(wire);
      }
    }
    if (pieces_.empty()) throw IoError({path, "pieces", "0"}, "a SentencePiece model without pieces");
    float min_score = 0;
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      const auto& p = pieces_[i];
      if (p.type == kNormal || p.type == kUserDefined) ids_.emplace(p.text, static_cast<std::int64_t>(i));
      if (p.type == kUserDefined) user_defined_.push_back(p.text);
      if (p.type == kByte && p.text.size() == 6) bytes_[std::stoi(p.text.substr(3, 2), nullptr, 16)] = static_cast<std::int64_t>(i);
      if (p.type == kNormal) min_score = std::min(min_score, p.score);
      max_piece_chars_ = std::max(max_piece_chars_, utf8_chars(p.text).size());
    }
    unk_score_ = min_score - 10.0f;  // sentencepiece's kUnkPenalty
    size_ = static_cast<std::int64_t>(pieces_.size());
    if (chatglm) {
      // ChatGLM2/3's SPTokenizer: [MASK] [gMASK] [sMASK] sop eop get the ids after the pieces; inputs start [gMASK] sop.
      prefix_ = {size_ + 1, size_ + 3};
      size_ += 5;
    } else if (bos_id_ >= 0) {
      prefix_ = {bos_id_};
    }
  }

  std::int64_t vocab_size() const override { return size_; }
  std::string describe() const override { return std::string("SentencePiece ") + (bpe_ ? "BPE " : "unigram ") + path_; }

 protected:
  std::vector<std::int64_t> prefix() const override { return prefix_; }

  void append(const std::string& text, std::size_t limit, std::vector<std::int64_t>& ids) const override {
    // Word by word (a word starts at each ▁): with split_by_whitespace, the trainer's default, no piece spans two
    // words, so this equals encoding the whole text, costs O(word²) instead of O(text²), and can stop at `limit`.
    const auto normalized = normalize(text);
    const std::string space = "\u2581";
    for (std::size_t start = 0; start < normalized.size() && ids.size() < limit;) {
      auto end = normalized.find(space, start + space.size());
      if (end == std::string::npos) end = normalized.size();
      const auto word = normalized.substr(start, end - start);
      for (const auto& symbol : bpe_ ? bpe(word) : viterbi(word)) {
        const auto it = ids_.find(symbol);
        if (it != ids_.end()) {
          ids.push_back(it->second);
        } else if (byte_fallback_) {
          for (unsigned char c : symbol) ids.push_back(bytes_[c] >= 0 ? bytes_[c] : unk_id_);
        } else {
          ids.push_back(unk_id_);
        }
      }
      start = end;
    }
  }

 private:
  static constexpr int kNormal = 1, kUserDefined = 4, kByte = 6;
  struct Piece {
    std::string text;
    float score = 0;
    int type = kNormal;
  };

  std::string normalize(const std::string& text) const {
    std::string out;
    for (unsigned char c : text) {
      if (c < 0x20 || c >= 0x7F) {
        throw DataError({path_, "text", text.substr(0, 40)}, "only printable ASCII text is supported (the NFKC map is not applied)");
      }
      if (c == ' ' && collapse_spaces_ && (out.empty() || out.back() == ' ')) continue;
      out += static_cast<char>(c);
    }
    if (collapse_spaces_) {
      while (!out.empty() && out.back() == ' ') out.pop_back();
    }
    if (dummy_prefix_ && !out.empty()) out = " " + out;
    if (!escape_spaces_) return out;
    std::string escaped;
    for (char c : out) escaped += c == ' ' ? "\u2581" : std::string(1, c);
    return escaped;
  }

  /// Characters, with user-defined pieces kept whole.
  std::vector<std::string> initial_symbols(const std::string& text) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < text.size();) {
      std::size_t n = 0;
      for (const auto& u : user_defined_) {
        if (u.size() > n && text.compare(i, u.size(), u) == 0) n = u.size();
      }
      if (n == 0) n = utf8_chars(text.substr(i, 4)).front().size();
      out.push_back(text.substr(i, n));
      i += n;
    }
    return out;
  }

  float score_of(const std::string& piece) const {
    const auto it = ids_.find(piece);
    return it == ids_.end() ? std::numeric_limits<float>::quiet_NaN() : pieces_[static_cast<std::size_t>(it->second)].score;
  }

  std::vector<std::string> bpe(const std::string& text) const {
    auto symbols = initial_symbols(text);
    while (symbols.size() > 1) {
      std::size_t best = symbols.size();
      float best_score = 0;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        const float s = score_of(symbols[i] + symbols[i + 1]);
        if (!std::isnan(s) && (best == symbols.size() || s > best_score)) {
          best = i;
          best_score = s;
        }
      }
      if (best == symbols.size()) break;
      symbols[best] += symbols[best + 1];
      symbols.erase(symbols.begin() + static_cast<long>(best) + 1);
    }
    return symbols;
  }

  std::vector<std::string> viterbi(const std::string& text) const {
    const auto chars = initial_symbols(text);
    const auto n = chars.size();
    std::vector<float> best(n + 1, -std::numeric_limits<float>::infinity());
    std::vector<std::size_t> from(n + 1, 0);
    best[0] = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isinf(best[i])) continue;
      std::string piece;
      bool single_known = false;
      for (std::size_t j = i; j < n && j - i < max_piece_chars_; ++j) {
        piece += chars[j];
        const float s = score_of(piece);
        if (std::isnan(s)) continue;
        single_known = single_known || j == i;
        if (best[i] + s > best[j + 1]) {
          best[j + 1] = best[i] + s;
          from[j + 1] = i;
        }
      }
      if (!single_known && best[i] + unk_score_ > best[i + 1]) {  // an unknown character
        best[i + 1] = best[i] + unk_score_;
        from[i + 1] = i;
      }
    }
    std::vector<std::string> out;
    for (std::size_t end = n; end > 0; end = from[end]) {
      std::string piece;
      for (std::size_t k = from[end]; k < end; ++k) piece += chars[k];
      out.push_back(piece);
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  std::string path_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, std::int64_t> ids_;
  std::vector<std::string> user_defined_;
  std::array<std::int64_t, 256> bytes_ = filled_bytes();
  std::size_t max_piece_chars_ = 1;
  bool bpe_ = false, byte_fallback_ = false, dummy_prefix_ = true, collapse_spaces_ = true, escape_spaces_ = true;
  std::int64_t unk_id_ = 0;
  std::int32_t bos_id_ = 1;
  float unk_score_ = -10;
  std::vector<std::int64_t> prefix_;
  std::int64_t size_ = 0;

  static std::array<std::int64_t, 256> filled_bytes() {
    std::array<std::int64_t, 256> a{};
    a.fill(-1);
    return a;
  }
};

class ByteTokenizer final : public TextTokenizer {
 public:
  explicit ByteTokenizer(std::vector<std::int64_t> prefix) : prefix_(prefix.empty() ? std::vector<std::int64_t>{1} : std::move(prefix)) {}
  std::int64_t vocab_size() const override {
    return std::max<std::int64_t>(259, *std::max_element(prefix_.begin(), prefix_.end()) + 1);
  }
  std::string describe() const override { return "bytes (no tokenizer file)"; }

 protected:
  std::vector<std::int64_t> prefix() const override { return prefix_; }
  void append(const std::string& text, std::size_t limit, std::vector<std::int64_t>& ids) const override {
    for (std::size_t i = 0; i < text.size() && ids.size() < limit; ++i) ids.push_back(3 + static_cast<unsigned char>(text[i]));
  }

 private:
  std::vector<std::int64_t> prefix_;
};

std::string format_value(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

std::vector<std::int64_t> TextTokenizer::encode(const std::string& text, std::size_t max_tokens) const {
  auto ids = prefix();
  const auto tail = suffix();
  const std::size_t specials = ids.size() + tail.size();
  const std::size_t limit = max_tokens == 0 ? std::numeric_limits<std::size_t>::max()
                                            : std::max(ids.size(), max_tokens > specials ? max_tokens - tail.size() : ids.size());
  append(text, limit, ids);
  if (ids.size() > limit) ids.resize(limit);
  ids.insert(ids.end(), tail.begin(), tail.end());
  if (max_tokens > 0 && ids.size() > max_tokens) ids.resize(max_tokens);  // specials alone exceed the budget
  return ids;
}

const std::vector<std::string>& byte_level_alphabet() {
  static const std::vector<std::string> kAlphabet = [] {
    // Printable Latin-1 bytes map to themselves; the others to 256, 257, ... in byte order (GPT-2's bytes_to_unicode).
    std::vector<std::string> table(256);
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      table[b] = utf8(printable ? b : next++);
    }
    return table;
  }();
  return kAlphabet;
}

std::unique_ptr<TextTokenizer> load_bpe_tokenizer(const std::string& path) { return std::make_unique<BpeTokenizer>(path); }

std::unique_ptr<TextTokenizer> load_sentencepiece_tokenizer(const std::string& path, bool chatglm_specials) {
  return std::make_unique<SentencePieceTokenizer>(path, chatglm_specials);
}

std::unique_ptr<TextTokenizer> byte_tokenizer(std::vector<std::int64_t> prefix) {
  return std::make_unique<ByteTokenizer>(std::move(prefix));
}

std::unique_ptr<TextTokenizer> make_text_tokenizer(const std::string& flavor, const std::string& path) {
  if (flavor == "chatglm") return path.empty() ? byte_tokenizer({260, 262}) : load_sentencepiece_tokenizer(path, true);
  if (path.empty()) return byte_tokenizer();
  if (path.size() >= 6 && path.compare(path.size() - 6, 6, ".model") == 0) return load_sentencepiece_tokenizer(path, false);
  return load_bpe_tokenizer(path);
}

void CellSentenceOptions::validate() const {
  if (order != "rank" && order != "column") throw ConfigError({"", "sentence_order", order}, "expected rank or column");
  if (values != "none" && values != "raw" && values != "binned") {
    throw ConfigError({"", "sentence_values", values}, "expected none, raw or binned");
  }
  if (genes < 0) throw ConfigError({"", "sentence_genes", std::to_string(genes)}, "0 (all) or a positive count");
  if (values == "binned" && bins < 1) throw ConfigError({"", "sentence_bins", std::to_string(bins)}, "at least 1 bin");
  if (values != "none" && (item.find("{gene}") == std::string::npos || item.find("{value}") == std::string::npos)) {
    throw ConfigError({"", "sentence_item", item}, "must contain {gene} and {value}");
  }
}

std::string cell_sentence(const CsrMatrix& X, std::int64_t row, const std::vector<std::string>& symbols,
                          const CellSentenceOptions& o) {
  std::vector<double> dense;
  std::vector<std::int64_t> columns;
  const auto begin = X.indptr[static_cast<std::size_t>(row)], end = X.indptr[static_cast<std::size_t>(row) + 1];
  if (o.keep_zero_genes) {
    dense.assign(static_cast<std::size_t>(X.cols), 0.0);
    for (auto k = begin; k < end; ++k) dense[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(k)])] += X.data[static_cast<std::size_t>(k)];
    columns.resize(dense.size());
    std::iota(columns.begin(), columns.end(), std::int64_t{0});
  } else {
    std::map<std::int64_t, double> counts;  // column order, duplicates summed
    for (auto k = begin; k < end; ++k) {
      if (X.data[static_cast<std::size_t>(k)] != 0) counts[X.indices[static_cast<std::size_t>(k)]] += X.data[static_cast<std::size_t>(k)];
    }
    dense.assign(static_cast<std::size_t>(X.cols), 0.0);
    for (const auto& [c, v] : counts) {
      if (v == 0) continue;
      columns.push_back(c);
      dense[static_cast<std::size_t>(c)] = v;
    }
  }
  if (o.order == "rank") {
    std::stable_sort(columns.begin(), columns.end(), [&](auto a, auto b) { return dense[static_cast<std::size_t>(a)] > dense[static_cast<std::size_t>(b)]; });
  }
  if (o.genes > 0 && static_cast<std::int64_t>(columns.size()) > o.genes) columns.resize(static_cast<std::size_t>(o.genes));
  double top = 0;
  for (auto c : columns) top = std::max(top, dense[static_cast<std::size_t>(c)]);
  std::string text;
  for (auto c : columns) {
    const double v = dense[static_cast<std::size_t>(c)];
    std::string word = symbols[static_cast<std::size_t>(c)];
    if (o.values != "none") {
      std::string value = format_value(v);
      if (o.values == "binned") {
        // 1..bins on log1p within the cell (0 stays 0): comparable across cells of different depth
        const double b = top > 0 ? std::ceil(std::log1p(v) / std::log1p(top) * static_cast<double>(o.bins)) : 0.0;
        value = format_value(std::clamp(b, 0.0, static_cast<double>(o.bins)));
      }
      std::string item = o.item;
      item.replace(item.find("{gene}"), 6, word);
      item.replace(item.find("{value}"), 7, value);
      word = item;
    }
    if (!text.empty()) text += ' ';
    text += word;
  }
  return text;
}

}  // namespace sdm::worker
