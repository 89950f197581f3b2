#pragma once
// The LLM path's text side (reference/models.md §9): a cell becomes a "cell sentence" (gene symbols, optionally
// with their values), and a language model's own tokenizer turns it into ids. Torch-free.
//   - Hugging Face tokenizer.json with a byte-level BPE model (LLaMA-3, GPT-2 style): added tokens, the
//     pre-tokenizer's split regex (run by PCRE2 with Unicode properties, as the file writes it), the GPT-2
//     byte-to-unicode map, merges by rank, `ignore_merges`, and the post-processor's single template (BOS).
//   - SentencePiece tokenizer.model (ChatGLM2/3), read by our own protobuf reader and BPE / unigram encoder (not
//     libsentencepiece, whose private protobuf-lite clashes with LibTorch's libprotobuf), with ChatGLM's special
//     tokens after the piece vocabulary and its `[gMASK] sop` prefix.
//   - No tokenizer file (tiny presets): bytes as tokens (ids 3 + byte, BOS 1), so the path runs without downloads.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm::worker {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  /// Ids of `text` with the model's prefix (BOS or ChatGLM's [gMASK] sop) and suffix, no padding. `max_tokens` > 0
  /// truncates as Hugging Face's truncation does (specials kept, the text's tokens cut) and stops encoding there:
  /// the study's 20,000-gene sentences are never tokenized past the 4,096 tokens a model reads.
  std::vector<std::int64_t> encode(const std::string& text, std::size_t max_tokens = 0) const;
  /// One more than the largest id it can produce.
  virtual std::int64_t vocab_size() const = 0;
  virtual std::string describe() const = 0;

 protected:
  virtual std::vector<std::int64_t> prefix() const = 0;
  virtual std::vector<std::int64_t> suffix() const { return {}; }
  /// Appends the text's own ids to `ids`; may stop once `ids` holds `limit` ids.
  virtual void append(const std::string& text, std::size_t limit, std::vector<std::int64_t>& ids) const = 0;
};

/// Which tokenizer a model family uses when given a file (`flavor`: "llama" reads tokenizer.json, "chatglm" reads
/// tokenizer.model) or none (the byte tokenizer; `chatglm` starts with [gMASK] 260 and sop 262, its specials
/// following the 259 byte ids as they follow the pieces of a SentencePiece model).
std::unique_ptr<TextTokenizer> make_text_tokenizer(const std::string& flavor, const std::string& path);

/// A tokenizer.json (byte-level BPE). Throws ConfigError/IoError naming the file and field it cannot use.
std::unique_ptr<TextTokenizer> load_bpe_tokenizer(const std::string& path);
/// A SentencePiece model; `chatglm_specials`: [MASK] [gMASK] [sMASK] sop eop follow the pieces, prefix [gMASK] sop.
std::unique_ptr<TextTokenizer> load_sentencepiece_tokenizer(const std::string& path, bool chatglm_specials);
/// Bytes as tokens: <pad> 0, <bos> 1, <eos> 2, byte b = 3 + b; `prefix` replaces the BOS when not empty.
std::unique_ptr<TextTokenizer> byte_tokenizer(std::vector<std::int64_t> prefix = {});

/// GPT-2's reversible map from bytes to printable code points (what byte-level BPE vocabularies are written in).
const std::vector<std::string>& byte_level_alphabet();

/// How a cell becomes text. The study wrote every gene column as `GENE<value>` (zeros too, because a string was
/// compared with 0); the default fixes that and writes the top expressed genes, most expressed first.
struct CellSentenceOptions {
  std::string order = "rank";     ///< rank: by count descending (ties: column order) | column: file order
  std::int64_t genes = 100;       ///< at most this many genes (0 = all)
  std::string values = "none";    ///< none | raw (the count) | binned (1..bins, log1p scale within the cell)
  std::int64_t bins = 10;
  std::string item = "{gene} {value}";  ///< one gene's text when values are written
  bool keep_zero_genes = false;   ///< true reproduces the study's bug (unexpressed genes in the text)
  /// Throws ConfigError naming the bad field.
  void validate() const;
};

/// The sentence of row `row` of `X` (raw counts) over `symbols` (one per column); genes are separated by spaces.
std::string cell_sentence(const CsrMatrix& X, std::int64_t row, const std::vector<std::string>& symbols,
                          const CellSentenceOptions& options);

}  // namespace sdm::worker
