#include "worker/models/encoder.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>

#include "common/error.h"
#include "common/safetensors.h"
#include "common/text.h"

namespace sdm::worker {

LoraOptions lora_options(const nlohmann::json& o) {
  LoraOptions lora;
  lora.r = o.at("r");
  lora.alpha = o.at("alpha");
  lora.dropout = o.at("dropout");
  lora.targets = o.at("targets").get<std::vector<std::string>>();
  return lora;
}

namespace {

torch::Tensor from_safetensors(const SafetensorsFile& file, const SafetensorsEntry& e,
                               std::optional<torch::ScalarType> mapped) {
  static const std::map<std::string, torch::ScalarType> kTypes{
      {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}, {"F64", torch::kFloat64},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},     {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  const auto it = kTypes.find(e.dtype);
  if (it == kTypes.end()) throw IoError({file.path(), e.name, e.dtype}, "dtype not supported for parameters");
  const auto bytes = file.bytes(e);
  const auto options = torch::TensorOptions().dtype(it->second);
  const bool aligned = reinterpret_cast<std::uintptr_t>(bytes.data()) % safetensors_dtype_size(e.dtype) == 0;
  if (mapped && it->second == *mapped && aligned && !bytes.empty()) {
    // A view of the (copy-on-write) mapping that keeps it alive: the weights are in memory once, as page cache.
    auto keep = file.mapping();
    return torch::from_blob(const_cast<std::byte*>(bytes.data()), e.shape, [keep](void*) {}, options);
  }
  // The mapping may be unaligned for the element type: copy the bytes out before viewing them.
  auto t = torch::empty(e.shape, options);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t.is_floating_point() ? t.to(mapped.value_or(torch::kFloat32)) : t;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

StateDict unpickle(const std::string& path, torch::ScalarType dtype) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(data);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    // LibTorch rebuilds plain dicts of tensors, but not OrderedDicts (module.state_dict()'s type).
    throw IoError({path, "", ""}, "LibTorch cannot unpickle this checkpoint (" + what.substr(0, what.find('\n')).substr(0, 120) +
                                  "); an OrderedDict state dict needs converting once: "
                                  "/usr/bin/python3 tools/convert_checkpoint.py weights " + path + " OUT.safetensors");
  }
  // Training checkpoints wrap the weights: {"state_dict": {...}} or {"model": {...}}.
  for (int depth = 0; depth < 2 && value.isGenericDict(); ++depth) {
    bool unwrapped = false;
    for (const auto& item : value.toGenericDict()) {
      const auto key = item.key().isString() ? item.key().toStringRef() : std::string();
      if ((key == "state_dict" || key == "model" || key == "model_state_dict") &&
          item.value().isGenericDict()) {
        const c10::IValue inner = item.value();
        value = inner;
        unwrapped = true;
        break;
      }
    }
    if (!unwrapped) break;
  }
  if (!value.isGenericDict()) throw IoError({path, "", ""}, "expected a dict of tensors (a state_dict)");
  StateDict dict;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) continue;  // e.g. _metadata entries
    auto t = item.value().toTensor();
    dict[item.key().toStringRef()] = t.is_floating_point() ? t.to(dtype).contiguous() : t;
  }
  return dict;
}

StateDict read_one_file(const std::string& path, std::optional<torch::ScalarType> mapped) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw IoError({path, "", ""}, "cannot open the weights file");
  char magic[4] = {};
  probe.read(magic, 4);
  if (SafetensorsFile::looks_like(path)) {
    const auto file = SafetensorsFile::open(path, /*copy_on_write=*/mapped.has_value());
    StateDict dict;
    for (const auto& e : file.entries()) dict[e.name] = from_safetensors(file, e, mapped);
    return dict;
  }
  if (probe.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) {
    return unpickle(path, mapped.value_or(torch::kFloat32));
  }
  throw IoError({path, "", ""}, "neither a safetensors file nor a torch.save (zip) file; legacy pre-1.6 pickles "
                                "must be re-saved or converted to safetensors");
}

/// A Hugging Face shard index: every tensor named by `weight_map` must come from the shard it names.
StateDict read_sharded(const std::string& index_path, std::optional<torch::ScalarType> mapped) {
  const auto shards = checkpoint_shards(index_path);  // validates the index first
  const auto index = nlohmann::json::parse(std::ifstream(index_path));
  StateDict dict;
  for (const auto& path : shards) {
    auto part = read_one_file(path, mapped);
    const auto shard = path.substr(path.rfind('/') + 1);
    for (const auto& [name, file] : index.at("weight_map").items()) {
      if (file != shard) continue;
      auto it = part.find(name);
      if (it == part.end()) throw IoError({path, name, ""}, "the shard index names this tensor, the shard lacks it");
      dict[name] = std::move(it->second);
    }
  }
  return dict;
}

std::string shape_text(c10::IntArrayRef shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string list_names(const std::vector<std::string>& names) {
  constexpr std::size_t kShown = 12;
  std::vector<std::string> shown(names.begin(), names.begin() + static_cast<long>(std::min(names.size(), kShown)));
  std::string text = join(shown, ", ");
  if (names.size() > kShown) text += ", ... (" + std::to_string(names.size()) + " in all)";
  return text;
}

}  // namespace

StateDict read_state_dict(const std::string& path, std::optional<torch::ScalarType> mapped) {
  const auto file = resolve_checkpoint_path(path);
  if (ends_with(file, ".index.json")) return read_sharded(file, mapped);
  return read_one_file(file, mapped);
}

TensorShapes checkpoint_shapes(const std::string& path, StateDict* unpickled) {
  const auto file = resolve_checkpoint_path(path);
  const bool sharded = ends_with(file, ".index.json");
  TensorShapes shapes;
  for (const auto& part : sharded ? checkpoint_shards(file) : std::vector<std::string>{file}) {
    if (SafetensorsFile::looks_like(part)) {
      const auto header = SafetensorsFile::open(part);
      for (const auto& e : header.entries()) shapes[e.name] = e.shape;
      continue;
    }
    StateDict dict = read_one_file(part, std::nullopt);
    for (const auto& [name, t] : dict) shapes[name] = t.sizes().vec();
    if (!sharded && unpickled) *unpickled = std::move(dict);
  }
  return shapes;
}

torch::Tensor& ParamSet::add(const std::string& name, std::vector<std::int64_t> shape) {
  index_[name] = params_.size();
  params_.emplace_back(name, deferred_ ? torch::Tensor() : torch::zeros(shape));
  shapes_.push_back(std::move(shape));
  return params_.back().second;
}

void ParamSet::defer_allocation(torch::ScalarType dtype) {
  deferred_ = true;
  dtype_ = dtype;
}

torch::Tensor& ParamSet::at(const std::string& name) { return params_.at(index_.at(name)).second; }

std::int64_t ParamSet::numel() const {
  std::int64_t n = 0;
  for (const auto& shape : shapes_) n += std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  return n;
}

LoadReport ParamSet::load(const StateDict& dict, const std::string& source, const LoadOptions& options,
                          const std::vector<std::pair<std::string, std::string>>& renames,
                          const std::vector<std::string>& unused_prefixes) {
  LoadReport report;
  std::vector<std::string> unexpected, misshaped, missing;
  std::map<std::string, const torch::Tensor*> found;
  for (const auto& [original, tensor] : dict) {
    std::string name = original;
    for (const auto& [from, to] : renames) {
      if (const auto pos = name.find(from); pos != std::string::npos) name.replace(pos, from.size(), to);
    }
    const auto it = index_.find(name);
    if (it == index_.end()) {
      bool unused = false;
      for (const auto& prefix : unused_prefixes) unused = unused || original.rfind(prefix, 0) == 0;
      if (unused || !options.strict) {
        report.skipped.push_back(original);
        if (!unused) unexpected.push_back(original);
      } else {
        unexpected.push_back(original);
      }
      continue;
    }
    const auto& shape = shapes_[it->second];
    if (!tensor.is_floating_point() || tensor.sizes() != c10::IntArrayRef(shape)) {
      misshaped.push_back(original + " " + shape_text(tensor.sizes()) + " (expected " + shape_text(shape) + ")");
      continue;
    }
    found[name] = &tensor;
  }
  for (const auto& [name, param] : params_) {
    if (!found.count(name)) missing.push_back(name);
  }
  std::string problems;
  if (!missing.empty()) problems += "\n  missing: " + list_names(missing);
  if (!misshaped.empty()) problems += "\n  mis-shaped: " + list_names(misshaped);
  if (options.strict && !unexpected.empty()) problems += "\n  unexpected: " + list_names(unexpected);
  if (!problems.empty()) throw IoError({source, "", ""}, "the checkpoint does not fit this model's config:" + problems);
  if (!unexpected.empty()) spdlog::warn("{}: skipping {} unexpected parameters (--strict makes this an error): {}", source,
                                        unexpected.size(), list_names(unexpected));
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : found) {
    auto& param = at(name);
    if (deferred_) {
      param = tensor->scalar_type() == dtype_ ? *tensor : tensor->to(dtype_);  // adopted, not copied
    } else {
      param.copy_(*tensor);
    }
    report.loaded.push_back(name);
  }
  return report;
}

void ParamSet::init_random(std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto& [name, t] = params_[i];
    if (!t.defined()) t = torch::empty(shapes_[i]);  // deferred: drawn in float32, then kept in dtype()
    const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (t.dim() >= 2) {
      t.normal_(0.0, 0.02, gen);
    } else if (is_bias) {
      t.zero_();
    } else {
      t.fill_(1.0);  // LayerNorm scale
    }
    if (deferred_ && t.scalar_type() != dtype_) t = t.to(dtype_);
  }
}

void ParamSet::to(const torch::Device& device) {
  for (auto& [name, t] : params_) t = t.to(device);
}

std::vector<std::pair<std::string, torch::Tensor>> Encoder::add_lora(const LoraOptions& options, std::uint64_t seed) {
  if (!lora_.empty()) throw ConfigError({"", "lora", name()}, "adapters are already attached");
  if (options.targets.empty()) throw ConfigError({"", "lora.targets", ""}, "no target module");
  auto gen = at::detail::createCPUGenerator(seed);
  const auto device = params_.items().front().second.device();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (std::int64_t i = 0; i < num_layers(); ++i) {
    for (const auto& target : options.targets) {
      Adapter a;
      a.layer = i;
      a.site = lora_site(target, i);
      // kaiming_uniform_(a=sqrt(5)) on [r, in], as nn.Linear and PEFT initialise lora_A: U(-1/sqrt(in), 1/sqrt(in))
      const double bound = 1.0 / std::sqrt(static_cast<double>(a.site.in));
      a.adapter.A = torch::empty({options.r, a.site.in}).uniform_(-bound, bound, gen).to(device).requires_grad_(true);
      a.adapter.B = torch::zeros({a.site.rows, options.r}, torch::TensorOptions().device(device)).requires_grad_(true);
      a.adapter.scaling = options.alpha / static_cast<double>(options.r);
      a.adapter.dropout = options.dropout;
      a.adapter.offset = a.site.offset;
      out.emplace_back(a.site.module + ".lora_A.weight", a.adapter.A);
      out.emplace_back(a.site.module + ".lora_B.weight", a.adapter.B);
      lora_.push_back(std::move(a));
    }
  }
  return out;
}

void Encoder::merge_lora() {
  torch::NoGradGuard no_grad;
  for (const auto& a : lora_) {
    auto& w = params_.at(a.site.weight);
    const auto delta = torch::mm(a.adapter.B, a.adapter.A).mul(a.adapter.scaling).to(w.scalar_type());
    w.add_(a.site.transposed ? delta.t() : delta);
  }
  lora_.clear();
}

void Encoder::attach_lora(PostLnLayer& layer, std::int64_t i) const {
  layer.training = training_;
  for (const auto& a : lora_) {
    if (a.layer == i) layer.lora.emplace_back(a.site.projection, &a.adapter);
  }
}

const std::map<std::string, EncoderKind>& encoder_registry() {
  // the sizes: each model's vocabulary / token table and positional table, under its own config key and the
  // original parameter name (reference/models.md)
  static const std::map<std::string, EncoderKind> kKinds{
      {"scgpt", {make_scgpt, {{"ntoken", "encoder.embedding.weight"}}}},
      {"geneformer",
       {make_geneformer,
        {{"vocab_size", "bert.embeddings.word_embeddings.weight"},
         {"max_position_embeddings", "bert.embeddings.position_embeddings.weight"},
         {"type_vocab_size", "bert.embeddings.token_type_embeddings.weight"}}}},
      {"scfoundation", {make_scfoundation, {{"bin_num", "token_emb.emb.weight"}, {"seq_len", "pos_emb.weight", 0, -1}}}},
      // UCE's positional table is a buffer of max_len rows (1,536 in the published model), not pad_length
      {"uce", {make_uce, {{"n_tokens", "pe_embedding.weight"}, {"max_len", "pos_encoder.pe"}}}},
      // scBERT: one position per panel gene plus the appended token
      {"scbert",
       {make_scbert,
        {{"num_tokens", "token_emb.weight"}, {"max_seq_len", "pos_emb.emb.weight"}, {"gene_num", "pos_emb.emb.weight", 0, -1}}}},
      {"celllm", {make_celllm, {{"num_tokens", "token_emb.weight"}, {"gene_num", "pos_emb.emb.weight", 0, -2}}}},
      {"cellplm", {make_cellplm, {{"gene_num", "embedder.feat_enc.emb"}}}},
      {"tgpt", {make_tgpt, {{"vocab_size", "transformer.wte.weight"}, {"n_positions", "transformer.wpe.weight"}}}},
      {"llama", {make_llama, {{"vocab_size", "model.embed_tokens.weight"}}}},
      {"chatglm", {make_chatglm, {{"padded_vocab_size", "transformer.embedding.word_embeddings.weight"}}}}};
  return kKinds;
}

nlohmann::json size_from_checkpoint(const std::string& model, const nlohmann::json& config, const TensorShapes& shapes,
                                    const std::vector<std::string>& pinned, const std::string& source) {
  nlohmann::json sized = config;
  const auto kind = encoder_registry().find(model);
  if (kind == encoder_registry().end()) return sized;
  for (const auto& size : kind->second.sizes) {
    const auto it = shapes.find(size.tensor);
    if (it == shapes.end() || it->second.size() <= size.axis) continue;  // e.g. a buffer some exports leave out
    const std::int64_t said = it->second[size.axis] + size.offset;
    const bool has = sized.contains(size.key) && sized[size.key].is_number_integer();
    if (has && sized[size.key].get<std::int64_t>() == said) continue;
    const std::string shape = shape_text(it->second);
    if (std::find(pinned.begin(), pinned.end(), size.key) != pinned.end()) {
      throw ConfigError({source, "config." + size.key, has ? sized[size.key].dump() : std::string()},
                        "the checkpoint's " + size.tensor + " " + shape + " says " + size.key + " = " +
                            std::to_string(said) + "; drop the setting or use a checkpoint of that size");
    }
    if (has) {
      spdlog::info("{}: {} = {} from the checkpoint ({} {}), not the preset's {}", model, size.key, said, size.tensor,
                   shape, sized[size.key].dump());
    }
    sized[size.key] = said;
  }
  return sized;
}

std::unique_ptr<Encoder> make_encoder(const std::string& model, const nlohmann::json& config, const EncoderFiles& files) {
  const auto& registry = encoder_registry();
  const auto it = registry.find(model);
  if (it == registry.end()) {
    std::vector<std::string> names;
    for (const auto& [name, unused] : registry) names.push_back(name);
    throw ConfigError({"", "model", model}, "no encoder in this build; " + suggest(model, names));
  }
  // sizes the user left to the checkpoint come from its tensors' shapes; a torch.save file read for them is kept
  StateDict dict;
  const nlohmann::json sized = files.weights.empty() ? config
                                                     : size_from_checkpoint(model, config, checkpoint_shapes(files.weights, &dict),
                                                                            files.pinned, files.weights);
  auto encoder = it->second.make(sized, files);
  if (files.weights.empty()) {
    encoder->params().init_random(config.value("init_seed", std::uint64_t{0}));
    encoder->after_random_init(config.value("init_seed", std::uint64_t{0}));
    spdlog::info("{}: random weights from init_seed {} ({} parameters)", model, config.value("init_seed", 0),
                 encoder->params().numel());
  } else {
    const auto& params = encoder->params();
    if (dict.empty() || params.deferred()) {
      dict = read_state_dict(files.weights, params.deferred() ? std::optional(params.dtype()) : std::nullopt);
    }
    const auto report = encoder->load_weights(dict, files.weights, files.load);
    spdlog::info("{}: loaded {} tensors from {} ({} skipped)", model, report.loaded.size(), files.weights,
                 report.skipped.size());
  }
  return encoder;
}

void add_torch_layer_params(ParamSet& params, const std::string& p, std::int64_t d, std::int64_t d_hid) {
  params.add(p + "self_attn.in_proj_weight", {3 * d, d});
  params.add(p + "self_attn.in_proj_bias", {3 * d});
  params.add(p + "self_attn.out_proj.weight", {d, d});
  params.add(p + "self_attn.out_proj.bias", {d});
  params.add(p + "linear1.weight", {d_hid, d});
  params.add(p + "linear1.bias", {d_hid});
  params.add(p + "linear2.weight", {d, d_hid});
  params.add(p + "linear2.bias", {d});
  for (const char* n : {"norm1", "norm2"}) {
    params.add(p + n + ".weight", {d});
    params.add(p + n + ".bias", {d});
  }
}

PostLnLayer torch_layer(ParamSet& params, const std::string& p, std::int64_t heads, double eps) {
  PostLnLayer l;
  l.in_w = params.at(p + "self_attn.in_proj_weight");
  l.in_b = params.at(p + "self_attn.in_proj_bias");
  l.out_w = params.at(p + "self_attn.out_proj.weight");
  l.out_b = params.at(p + "self_attn.out_proj.bias");
  l.ff1_w = params.at(p + "linear1.weight");
  l.ff1_b = params.at(p + "linear1.bias");
  l.ff2_w = params.at(p + "linear2.weight");
  l.ff2_b = params.at(p + "linear2.bias");
  l.ln1_w = params.at(p + "norm1.weight");
  l.ln1_b = params.at(p + "norm1.bias");
  l.ln2_w = params.at(p + "norm2.weight");
  l.ln2_b = params.at(p + "norm2.bias");
  l.heads = heads;
  l.eps = eps;
  return l;
}

std::optional<LoraSite> torch_layer_lora_site(const std::string& target, const std::string& p, std::int64_t d,
                                              std::int64_t d_hid, const std::string& in_proj_target) {
  if (target == "out_proj") return LoraSite{Projection::kOutProj, 0, d, d, p + "self_attn.out_proj.weight", p + "self_attn.out_proj"};
  if (target == in_proj_target) {
    return LoraSite{Projection::kInProj, 0, 3 * d, d, p + "self_attn.in_proj_weight", p + "self_attn." + in_proj_target};
  }
  if (target == "linear1") return LoraSite{Projection::kFf1, 0, d_hid, d, p + "linear1.weight", p + "linear1"};
  if (target == "linear2") return LoraSite{Projection::kFf2, 0, d, d_hid, p + "linear2.weight", p + "linear2"};
  return std::nullopt;
}

void check_2d(const torch::Tensor& t, const std::string& name, const std::string& source, std::int64_t rows,
              std::int64_t cols) {
  if (t.dim() != 2 || (rows >= 0 && t.size(0) != rows) || (cols >= 0 && t.size(1) != cols)) {
    throw DataError({source, name, shape_text(t.sizes())},
                    "expected a 2-D [batch, length] dataset" +
                        (rows >= 0 ? " of shape " + shape_text({rows, cols}) + " like the other inputs" : std::string()));
  }
}

void check_ids(const torch::Tensor& ids, std::int64_t vocab, const std::string& name, const std::string& source) {
  if (ids.numel() == 0) return;
  const auto lo = ids.min().item<std::int64_t>();
  const auto hi = ids.max().item<std::int64_t>();
  if (lo < 0 || hi >= vocab) {
    throw DataError({source, name, std::to_string(lo < 0 ? lo : hi)},
                    "token id outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
}

}  // namespace sdm::worker
