#pragma once
// LoRA fine-tuning of an encoder with the study's MLP head, on one rank or data-parallel over a group of ranks.
// Torch stays behind this header (the task runner that calls it is torch-free).
//
// Data parallel, as DDP does it: parameters are broadcast from the group's rank 0; every rank walks the same
// seeded order of the training cells, takes a disjoint contiguous shard of each global batch, scales its loss
// by the global batch size, and the gradients are summed over the group in buckets (cluster::allreduce_bucketed).
// Every rank then applies the same AdamW step, so the parameters stay identical without further traffic, and
// k ranks follow the 1-rank loss curve up to floating-point summation order. Adapter dropout draws from each
// rank's own generator, so runs with dropout > 0 agree in distribution, not bit for bit.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "worker/embedding.h"
#include "worker/models/tokenizers.h"

namespace sdm::cluster {
class Collective;
}

namespace sdm::worker {

struct FineTuneInput {
  const TokenizedCells* cells = nullptr;  ///< every cell of the pool, tokenized
  std::vector<std::size_t> train;         ///< rows of `cells`
  std::vector<std::int8_t> y_train;
  std::vector<std::size_t> test;
};

struct FineTuneResult {
  std::vector<double> test_scores;  ///< probability of sensitive per test row (group rank 0 only)
  nlohmann::json log;               ///< losses per step and epoch, shards, all-reduced bytes, best epoch
};

/// Trains adapters (config.strategy.options: r, alpha, dropout, targets) and the head (config.head.layers) with
/// config.train (epochs, batch_size, lr, weight_decay, clip_norm, schedule, warmup, validation, patience), then
/// merges the adapters and scores the test rows. With a group, every member must call this with the same input.
/// `artifact_dir` (group rank 0, may be empty): adapters.safetensors (LoRA A/B by original module name + head)
/// and train_log.json.
/// True when `ok` holds on every rank of the group (collective); a rank that failed to prepare its data makes
/// the whole group give the cell up instead of leaving the others waiting in an all-reduce.
bool all_ranks_ok(cluster::Collective* group, bool ok);

FineTuneResult finetune_lora(LoadedModel& model, const nlohmann::json& config, const FineTuneInput& input,
                             cluster::Collective* group, const std::string& artifact_dir);

}  // namespace sdm::worker
