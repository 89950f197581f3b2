#pragma once
// Consolidation: every rank reads a contiguous slab of the committed records and all ranks write them into
// store.h5 together, through the MPI-IO driver with collective transfers (CONTRACTS §7). The file is written
// as store.h5.tmp and renamed, so a crash here never damages an earlier store.
#include <mpi.h>

#include <cstdint>
#include <string>

#include "orchestrator/store_files.h"

namespace sdm::orchestrator {

struct ConsolidateStats {
  std::int64_t cells = 0;
  std::int64_t predictions = 0;
  std::int64_t breakdown = 0;
  std::int64_t stale_records = 0;  ///< records of cells the current spec no longer has (kept, not consolidated)
  double seconds = 0;
  std::string io_mode;             ///< what HDF5 did for the last transfer (e.g. "contiguous-collective")
};

/// Collective over `comm`. Rank 0 decides the cell list (expected.json when present, else every record; cells
/// whose last journal event is `running` and that have no record become `interrupted` rows).
ConsolidateStats consolidate(const StorePaths& paths, MPI_Comm comm);

}  // namespace sdm::orchestrator
