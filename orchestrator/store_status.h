#pragma once
// `sdm status` as data, for the command and the report.
#include <nlohmann/json.hpp>

#include "orchestrator/store_files.h"

namespace sdm::orchestrator {

/// CONTRACTS §8: {schema_version, expected, counts: {done, failed, interrupted, pending, running}, failed: [{cell_id,
/// error, attempts}], locked, consolidated}, from records + journal: valid before consolidation and while a sweep
/// runs. No store directory is an IoError.
nlohmann::json store_status(const StorePaths& paths);

}  // namespace sdm::orchestrator
