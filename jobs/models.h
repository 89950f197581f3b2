#pragma once
// The one list of model and strategy names (CONTRACTS §2) that specs are validated against: which strategies
// each model supports, whether this build implements it yet, and its default hyperparameters.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sdm::jobs {

struct ModelInfo {
  std::string name;
  std::string kind;                      ///< baseline | foundation | llm | test
  std::string description;
  std::vector<std::string> strategies;  ///< the strategies that make sense for it
  bool implemented = false;             ///< false: named by the contract, not built yet
  nlohmann::json defaults;              ///< resolved hyperparameters before the spec's `config`
  double relative_cost = 1.0;           ///< per training cell, for longest-first scheduling
};

const std::vector<ModelInfo>& model_infos();
/// Throws ConfigError listing the known names (with a suggestion) for an unknown model.
const ModelInfo& model_info(const std::string& name, const std::string& field);

const std::vector<std::string>& strategy_names();
const std::vector<std::string>& protocol_names();

}  // namespace sdm::jobs
