#pragma once
// The model machinery: an Encoder turns cells into named input tensors (tokenize + collate, the original data
// pipeline) and those into a cell embedding (forward, the original network). Parameters live in a ParamSet under
// the original checkpoint's names, so a published state dict loads by name. One registry maps model names to
// factories; metadata (presets, LoRA targets, descriptions) is in jobs/models.h, shared with spec validation.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cell_matrix.h"
#include "worker/models/tokenizers.h"
#include "worker/models/transformer.h"

namespace sdm::worker {

using StateDict = std::map<std::string, torch::Tensor>;
/// Tensor shapes by name, as a checkpoint stores them.
using TensorShapes = std::map<std::string, std::vector<std::int64_t>>;

/// Reads a checkpoint: safetensors (our validated reader), or a PyTorch `torch.save` file (.pt/.bin zip
/// format) through LibTorch's unpickler, which only rebuilds tensors and containers (no arbitrary code).
/// A sharded checkpoint is read through its Hugging Face index (`*.index.json`, a `weight_map` of tensor -> shard
/// file) or a directory holding one (or a single model.safetensors). Floating tensors come back as float32, or,
/// with `mapped`, as that dtype: safetensors tensors already stored so are views of the file mapping
/// (copy-on-write, never copied; what an 8B model needs), others are converted once. Throws IoError naming the file.
StateDict read_state_dict(const std::string& path, std::optional<torch::ScalarType> mapped = std::nullopt);

/// The shapes of a checkpoint's tensors (any layout read_state_dict reads): safetensors headers only; a torch.save
/// file must be unpickled, and its float32 state dict is handed back in `*unpickled` (when given) for the load.
TensorShapes checkpoint_shapes(const std::string& path, StateDict* unpickled = nullptr);

struct LoadOptions {
  bool strict = false;  ///< unexpected names are errors, not skipped with a warning
};

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> skipped;  ///< unused by the embedding path (heads), or unexpected when not strict
};

/// Parameters by their original names. `load` checks the whole state dict first and fails once, listing every
/// missing, unexpected (strict) and mis-shaped name.
class ParamSet {
 public:
  torch::Tensor& add(const std::string& name, std::vector<std::int64_t> shape);
  torch::Tensor& at(const std::string& name);
  const std::vector<std::pair<std::string, torch::Tensor>>& items() const { return params_; }
  std::int64_t numel() const;

  /// `renames`: checkpoint name fragment -> ours (scGPT's flash-attention `self_attn.Wqkv.` -> `self_attn.in_proj_`).
  /// `unused_prefixes`: heads the embedding path does not use; reported and skipped even when strict.
  LoadReport load(const StateDict& dict, const std::string& source, const LoadOptions& options,
                  const std::vector<std::pair<std::string, std::string>>& renames,
                  const std::vector<std::string>& unused_prefixes);
  /// Seeded random init: weights ~ N(0, 0.02) as BERT/scGPT initialise, LayerNorm weight 1 and biases 0.
  void init_random(std::uint64_t seed);
  /// Moves every parameter to `device` (a CUDA build fine-tunes on the GPU).
  void to(const torch::Device& device);
  /// From now on `add` records names and shapes only; `load` then adopts the checkpoint's tensors (views of a
  /// mapped file) instead of copying into zeros, and `init_random` allocates in `dtype`. For LLM-size models.
  void defer_allocation(torch::ScalarType dtype);
  /// The dtype deferred parameters are kept in (float32 otherwise).
  torch::ScalarType dtype() const { return dtype_; }
  bool deferred() const { return deferred_; }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<std::vector<std::int64_t>> shapes_;
  bool deferred_ = false;
  torch::ScalarType dtype_ = torch::kFloat32;
  std::map<std::string, std::size_t> index_;
};

/// The forward's inputs, named as in the original model's forward signature.
using ModelInputs = std::map<std::string, torch::Tensor>;

struct EncoderOutput {
  torch::Tensor cell_embedding;  ///< [B, d] float32
  torch::Tensor token_states;    ///< [B, L, d] last layer, when asked for
};

/// LoRA hyperparameters (the study: r 8, alpha 8, dropout 0.05, model-specific targets).
struct LoraOptions {
  std::int64_t r = 8;
  double alpha = 8;
  double dropout = 0.05;
  std::vector<std::string> targets;  ///< original module-name suffixes, e.g. scGPT out_proj, Geneformer query
};

/// LoRA options from a cell config's strategy.options (r, alpha, dropout, targets).
LoraOptions lora_options(const nlohmann::json& strategy_options);

/// Where one target module of one layer sits in our layer.
struct LoraSite {
  Projection projection = Projection::kOutProj;
  std::int64_t offset = 0;  ///< its first output within the (possibly fused) projection
  std::int64_t rows = 0;    ///< its output features
  std::int64_t in = 0;      ///< its input features
  std::string weight;       ///< the parameter it merges into (all of that parameter's rows)
  std::string module;       ///< the original module path; adapters are saved as <module>.lora_A.weight / lora_B
  bool transposed = false;  ///< the weight is stored [in, out] (GPT-2's Conv1D): merging adds (B A)^T
};

/// The genes of a file as a model sees them.
struct GeneInputs {
  std::vector<std::string> symbols;
  std::vector<std::string> ensembl;
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual std::string name() const = 0;
  virtual std::int64_t dim() const = 0;
  /// Names of the forward's inputs (the datasets of a --tokenized file).
  virtual std::vector<std::string> input_names() const = 0;
  /// Cells -> token sequences. `X` holds raw counts (rows = cells); `seeds` one per cell (see cell_seed).
  virtual TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes,
                                  const std::vector<std::uint64_t>& seeds) const = 0;
  /// Right-padded input tensors for `rows` of `cells`.
  virtual ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const = 0;
  /// Checks a --tokenized file's tensors (names, dtypes, shapes, id ranges); throws DataError naming `source`.
  virtual void check_inputs(const ModelInputs& inputs, const std::string& source) const = 0;
  virtual EncoderOutput forward(const ModelInputs& inputs, bool want_states) = 0;

  ParamSet& params() { return params_; }
  /// Loads a checkpoint by name (model-specific renames and skipped heads).
  virtual LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) = 0;

  /// After a random init (no weights file): give buffers their proper values (Performer projections N(0, 1),
  /// UCE's sinusoidal positions), which the generic N(0, 0.02) would scramble.
  virtual void after_random_init(std::uint64_t /*seed*/) {}
  /// Models whose cells attend to each other (CellPLM) embed fixed groups of this many cells, in input order, so
  /// a cell's result does not depend on how a caller batches; 0 = every cell on its own (the others).
  virtual std::int64_t cells_per_forward() const { return 0; }

  // LoRA. Base parameters never require gradients; adapters do.
  virtual std::int64_t num_layers() const = 0;
  /// The site of `target` in `layer`; throws ConfigError listing this model's targets for an unknown one.
  virtual LoraSite lora_site(const std::string& target, std::int64_t layer) const = 0;
  /// Adds an adapter for every target in every layer: A kaiming-uniform from `seed` (PEFT's init), B zero, so
  /// the model's output is unchanged until training moves B. Returns the adapter tensors by name.
  std::vector<std::pair<std::string, torch::Tensor>> add_lora(const LoraOptions& options, std::uint64_t seed);
  /// W += scaling * B A for every adapter, then drops them: inference afterwards costs what the base model does.
  void merge_lora();
  std::size_t lora_count() const { return lora_.size(); }
  /// Training: adapter dropout on (attention becomes differentiable whenever projections carry gradients).
  void set_training(bool training) { training_ = training; }

 protected:
  /// Adds layer i's adapters to a layer a model has just assembled.
  void attach_lora(PostLnLayer& layer, std::int64_t i) const;
  ParamSet params_;

 private:
  struct Adapter {
    std::int64_t layer = 0;
    LoraSite site;
    LoraAdapter adapter;
  };
  std::vector<Adapter> lora_;
  bool training_ = false;
};

/// What a model needs besides its hyperparameters.
struct EncoderFiles {
  std::string weights;  ///< empty: random init from the config's init_seed
  std::string vocab;    ///< empty: hashed gene ids (tiny presets)
  LoadOptions load;
  /// Config keys the user set (jobs::pinned_keys): a checkpoint whose tables disagree with one is an error.
  std::vector<std::string> pinned{};
};

using EncoderFactory = std::function<std::unique_ptr<Encoder>(const nlohmann::json& config, const EncoderFiles& files)>;

/// A size a checkpoint says by the shape of one of its tensors: config `key` = dimension `axis` of `tensor` +
/// `offset` (scGPT: ntoken = rows of encoder.embedding.weight; scFoundation: seq_len = rows of pos_emb.weight - 1).
struct CheckpointSize {
  std::string key;
  std::string tensor;
  std::size_t axis = 0;
  std::int64_t offset = 0;
};

/// An implemented foundation model: its factory and the sizes (vocabulary, token and positional tables) it takes
/// from a checkpoint when the user did not pin them.
struct EncoderKind {
  EncoderFactory make;
  std::vector<CheckpointSize> sizes;
};

/// The implemented foundation models, by name (jobs/models.h lists them with their metadata).
const std::map<std::string, EncoderKind>& encoder_registry();

/// `config` with each of `model`'s checkpoint sizes set from `shapes` (a size whose tensor the checkpoint lacks
/// keeps the config's value). A key in `pinned` whose value disagrees is a ConfigError naming the key, both sizes
/// and `source`.
nlohmann::json size_from_checkpoint(const std::string& model, const nlohmann::json& config, const TensorShapes& shapes,
                                    const std::vector<std::string>& pinned, const std::string& source);

/// Builds `model` with its resolved config, sized by its checkpoint (size_from_checkpoint), and loads its weights
/// (or random init). Throws ConfigError for a name without a factory.
std::unique_ptr<Encoder> make_encoder(const std::string& model, const nlohmann::json& config, const EncoderFiles& files);

// Factories, one translation unit per model family.
std::unique_ptr<Encoder> make_scgpt(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_geneformer(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_scfoundation(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_uce(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_scbert(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_celllm(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_cellplm(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_tgpt(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_llama(const nlohmann::json& config, const EncoderFiles& files);
std::unique_ptr<Encoder> make_chatglm(const nlohmann::json& config, const EncoderFiles& files);

// torch.nn.TransformerEncoderLayer under its own parameter names (`<prefix>self_attn.in_proj_weight`, ...,
// `linear1`, `linear2`, `norm1`, `norm2`): scGPT, scFoundation and UCE all keep their layers that way.
/// Registers one such layer's parameters (d_model d, feed-forward d_hid).
void add_torch_layer_params(ParamSet& params, const std::string& prefix, std::int64_t d, std::int64_t d_hid);
/// Assembles it for post_ln_forward (post-LN, relu, eps).
PostLnLayer torch_layer(ParamSet& params, const std::string& prefix, std::int64_t heads, double eps);
/// Its LoRA sites: out_proj, the fused q/k/v projection (named `in_proj_target` after the module PEFT would see),
/// linear1, linear2; nullopt for another target.
std::optional<LoraSite> torch_layer_lora_site(const std::string& target, const std::string& prefix, std::int64_t d,
                                              std::int64_t d_hid, const std::string& in_proj_target);

/// Ids within [0, vocab) and a 2-D shape: shared input checks.
void check_ids(const torch::Tensor& ids, std::int64_t vocab, const std::string& name, const std::string& source);
void check_2d(const torch::Tensor& t, const std::string& name, const std::string& source, std::int64_t rows,
              std::int64_t cols);

}  // namespace sdm::worker
