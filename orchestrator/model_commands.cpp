// `sdm models` (the model registry) and `sdm embed` (one encoder over one file: the seam for parity checks with
// the original code, and a tool on its own).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/dataset_io.h"
#include "common/error.h"
#include "common/hdf5.h"
#include "common/preprocess.h"
#include "common/text.h"
#include "jobs/models.h"
#include "orchestrator/command.h"
#include "orchestrator/results_table.h"
#include "orchestrator/version.h"
#include "worker/embedding.h"
#include "worker/runtime.h"

namespace sdm::orchestrator {
namespace {

using nlohmann::json;

class ModelsCommand final : public Command {
 public:
  const char* name() const override { return "models"; }
  const char* summary() const override { return "List the models: kind, strategies, presets, default LoRA targets"; }
  void configure(CLI::App& app) override { app.add_flag("--json", json_, "Print JSON (with each preset's config)"); }
  int run(const RunContext&) override {
    if (json_) {
      json list = json::array();
      for (const auto& m : jobs::model_infos()) {
        json presets = json::array();
        for (const auto& p : m.presets) presets.push_back({{"name", p.name}, {"description", p.description}, {"config", p.config}});
        list.push_back({{"name", m.name}, {"kind", m.kind}, {"description", m.description}, {"implemented", m.implemented},
                        {"strategies", m.strategies}, {"presets", presets}, {"lora_targets", m.lora_targets}, {"lora_modules", m.lora_modules}});
      }
      std::cout << list.dump(1) << std::endl;
      return 0;
    }
    Table t;
    for (const char* name : {"model", "kind", "built", "strategies", "presets", "lora targets", "description"}) {
      t.add_column({name, ColumnKind::kText});
    }
    for (const auto& m : jobs::model_infos()) {
      std::vector<std::string> presets;
      for (const auto& p : m.presets) presets.push_back(p.name);
      t.add_row({m.name, m.kind, std::string(m.implemented ? "yes" : "not yet"), join(m.strategies, ","),
                 join(presets, ","), join(m.lora_targets, ","), m.description});
    }
    std::cout << render(t, "text");
    return 0;
  }

 private:
  bool json_ = false;
};

class EmbedCommand final : public Command {
 public:
  const char* name() const override { return "embed"; }
  const char* summary() const override { return "Embed cells with a foundation model (from .h5ad or a tokenized file)"; }
  void configure(CLI::App& app) override {
    app.add_option("--model", model_, "Model name (sdm models)")->required();
    app.add_option("--preset", preset_, "Preset (sdm models); default: default");
    app.add_option("--config", config_, "The model's own published config (scGPT args.json, HF config.json)");
    app.add_option("--weights", weights_,
                   "Checkpoint: .safetensors, a torch.save .pt/.bin state dict, or a sharded one (*.index.json or its directory)");
    app.add_option("--vocab", vocab_,
                   "Gene vocabulary (scGPT vocab.json, Geneformer token dictionary, a gene panel TSV/JSON, CellPLM config.json, "
                   "tGPT tokenizer.json) or an LLM's tokenizer (LLaMA-3 tokenizer.json, ChatGLM tokenizer.model)");
    auto* input = app.add_option("--input", input_, "Cells: .h5ad, 10x .h5, .loom or .tsv (raw counts)");
    auto* tokenized = app.add_option("--tokenized", tokenized_, "HDF5 file of the forward's inputs, used as given");
    input->excludes(tokenized);
    tokenized->excludes(input);
    app.add_option("--matrix", matrix_, "With --input: X, raw or layer:<name>");
    app.add_option("--out", out_, "Output HDF5 file")->required();
    app.add_option("--batch-size", batch_size_, "Cells per forward pass")->check(CLI::PositiveNumber);
    app.add_flag("--states", states_, "With --tokenized: also write the last layer's token_states [B, L, d]");
    app.add_flag("--strict", strict_, "Unexpected checkpoint parameters are an error");
    app.add_option("--threads", threads_, "Compute threads")->check(CLI::PositiveNumber);
  }

  int run(const RunContext&) override {
    if (input_.empty() == tokenized_.empty()) throw ConfigError({"<cli>", "--input/--tokenized", ""}, "give exactly one of them");
    if (states_ && tokenized_.empty()) {
      throw ConfigError({"<cli>", "--states", ""}, "needs --tokenized (with --input, cells are batched by length)");
    }
    const auto& info = jobs::model_info(model_, "--model");
    if (!info.has_encoder() || !info.implemented) {
      throw ConfigError({"<cli>", "--model", model_}, "not a foundation model or LLM with an encoder in this build");
    }
    const json overrides = config_.empty() ? json() : jobs::read_published_config(config_);
    const json config = jobs::resolve_model_config(info, preset_, overrides, true, config_);
    worker::set_torch_threads(threads_);
    worker::keep_freed_memory();
    const auto model = worker::LoadedModel::load(model_, config, weights_, vocab_, strict_, jobs::pinned_keys(config, overrides));
    std::vector<std::string> obs_names;
    worker::Embeddings e;
    if (!tokenized_.empty()) {
      e = worker::embed_tokenized(model, tokenized_, batch_size_, states_, obs_names);
    } else {
      ReadOptions read;
      read.matrix = matrix_;
      const CellMatrix cells = read_cells(input_, read);
      check_values(cells.X, model_ == "geneformer" ? ValueKind::kCounts : ValueKind::kLog1p, input_, matrix_);
      if (cells.X.rows == 0) throw DataError({input_, "obs", "0"}, "the file has no cells");
      const GeneKeys keys = gene_keys(cells.var);
      check_unique_genes(keys.symbols.empty() ? keys.ensembl : keys.symbols, input_);
      obs_names = cells.obs.index;
      e = worker::embed_cells(model, cells.X, keys.symbols, keys.ensembl, obs_names, batch_size_,
                              config.value("tokenizer_seed", std::uint64_t{0}));
      worker::check_vocabulary_overlap(e.cells_without_genes, static_cast<std::size_t>(e.n), input_, model.name);
    }
    write(e, obs_names, config);
    const double rate = e.forward_s > 0 ? static_cast<double>(e.n) / e.forward_s : 0;
    spdlog::info("{}: {} cells x {} dims -> {} ({:.2f} s in forward passes, {:.1f} cells/s)", model_, e.n, e.d, out_,
                 e.forward_s, rate);
    std::printf("cells=%lld dim=%lld tokens=%zu forward_s=%.4f cells_per_s=%.3f\n", static_cast<long long>(e.n),
                static_cast<long long>(e.d), e.tokens, e.forward_s, rate);
    return 0;
  }

 private:
  void write(const worker::Embeddings& e, const std::vector<std::string>& obs_names, const json& config) const {
    const std::string tmp = out_ + ".tmp";
    {
      auto file = h5::File::create(tmp);
      file.write<float>("cell_embedding", std::span<const float>(e.values), {static_cast<hsize_t>(e.n), static_cast<hsize_t>(e.d)});
      file.write_strings("obs_names", obs_names);
      if (!e.states.empty()) {
        std::vector<hsize_t> dims(e.state_shape.begin(), e.state_shape.end());
        file.write<float>("token_states", std::span<const float>(e.states), dims);
      }
      file.set_attr("model", model_);
      file.set_attr("preset", preset_);
      file.set_attr("config_json", config.dump());
      file.set_attr("weights", weights_);
      file.set_attr("sdm_version", version_string());
    }
    std::filesystem::rename(tmp, out_);
  }

  std::string model_, preset_ = "default", config_, weights_, vocab_, input_, tokenized_, matrix_ = "X", out_;
  std::int64_t batch_size_ = 32;
  bool states_ = false, strict_ = false;
  int threads_ = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
};

}  // namespace

std::unique_ptr<Command> make_models_command() { return std::make_unique<ModelsCommand>(); }
std::unique_ptr<Command> make_embed_command() { return std::make_unique<EmbedCommand>(); }

}  // namespace sdm::orchestrator
