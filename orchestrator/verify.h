#pragma once
// `sdm verify`: is a store what its records and journal say it is? Checks the schema version, that every /cells,
// /predictions and /breakdown column is there with one length per group, unique well-formed cell ids, rows of
// predictions and breakdown that belong to a cell, prediction counts equal to n_test, and for every committed
// cell that its record exists, still hashes to what the journal recorded at commit, and agrees with the store row
// (status, n_test, metrics, predictions). Records the store lacks are reported (consolidate them).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "orchestrator/store_files.h"

namespace sdm::orchestrator {

struct VerifyReport {
  std::vector<std::string> problems;  ///< anything wrong; non-empty means `sdm verify` fails
  std::vector<std::string> notes;     ///< worth knowing, not wrong (pending cells, stale records)
  std::int64_t cells = 0, records = 0, predictions = 0, breakdown = 0;
  nlohmann::json to_json() const;
};

VerifyReport verify_store(const StorePaths& paths);

}  // namespace sdm::orchestrator
