#pragma once
// The one list of model and strategy names (CONTRACTS §2) that specs are validated against: which strategies
// each model supports, whether this build implements it yet, and its default hyperparameters.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sdm::jobs {

/// A named set of hyperparameters. Foundation models use their published config's own key names (scGPT's
/// args.json, Geneformer's Hugging Face config.json), so such a file can overlay a preset as is.
struct ModelPreset {
  std::string name;
  std::string description;
  nlohmann::json config;
};

struct ModelInfo {
  std::string name;
  std::string kind;                      ///< baseline | foundation | llm | test
  std::string description;
  std::vector<std::string> strategies;  ///< the strategies that make sense for it
  bool implemented = false;             ///< false: named by the contract, not built yet
  std::vector<ModelPreset> presets;     ///< the first is `default`
  std::vector<std::string> lora_targets;  ///< default LoRA target modules (original parameter-name fragments)
  double relative_cost = 1.0;           ///< per training cell, for longest-first scheduling
  /// Every LoRA target the implementation can adapt (original module-name suffixes); lora_targets is a subset.
  std::vector<std::string> lora_modules;
  int paper_finetune_batch = 0;          ///< the released FT script's batch size (scdrugmap-paper.md §3)
  int paper_finetune_epochs = 3;         ///< and its epochs

  /// Throws ConfigError listing the presets (with a suggestion) for an unknown name.
  const ModelPreset& preset(const std::string& name, const std::string& field) const;
  /// A neural encoder (foundation model or LLM) that embeds cells, as opposed to a baseline.
  bool has_encoder() const { return kind == "foundation" || kind == "llm"; }
};

/// Models whose cells attend to each other within a batch (CellPLM): never sharded over data-parallel ranks.
bool attends_across_cells(const std::string& model);

/// `preset`'s config overlaid with `overrides`. An override key the preset lacks is an error naming `source`,
/// unless `ignore_unknown` (a published config file carries training options an encoder does not use). A value
/// of another kind than the preset's (number, string, bool) is an error.
nlohmann::json resolve_model_config(const ModelInfo& info, const std::string& preset, const nlohmann::json& overrides,
                                    bool ignore_unknown, const std::string& source);

/// The keys of `overrides` that `config` has: what a user set explicitly (a spec's `config` map or a published
/// config file) rather than took from the preset. A checkpoint that disagrees with one of them is an error; the
/// others follow the checkpoint (worker::make_encoder).
std::vector<std::string> pinned_keys(const nlohmann::json& config, const nlohmann::json& overrides);

/// A model's own published config file (JSON object), e.g. scGPT's args.json or a Hugging Face config.json.
nlohmann::json read_published_config(const std::string& path);

const std::vector<ModelInfo>& model_infos();
/// Throws ConfigError listing the known names (with a suggestion) for an unknown model.
const ModelInfo& model_info(const std::string& name, const std::string& field);

const std::vector<std::string>& strategy_names();

/// Strategies that hold a dataset out and train on the others only: they need a cross-data protocol.
bool needs_held_out_dataset(const std::string& strategy);
const std::vector<std::string>& protocol_names();

}  // namespace sdm::jobs
