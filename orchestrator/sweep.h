#pragma once
// `sdm sweep`: rank 0 expands the spec and hands cells to worker ranks over MPI point-to-point (dynamic,
// longest expected first, same-data cells to the same worker); workers run them and commit each record
// themselves; rank 0 journals every event; at the end all ranks consolidate the store together.
#include <mpi.h>

#include <string>

namespace sdm::orchestrator {

struct SweepOptions {
  std::string spec;
  bool dry_run = false;
  bool json = false;
  std::string only;
  bool resume = false;
  bool rerun_failed = false;
  bool force_unlock = false;
  double progress_every_s = 10;
  int threads = 1;  ///< compute threads per rank
};

/// Exit codes: 0 all cells done, 3 some cells failed (their records say why), 1/2 on errors before any cell ran.
inline constexpr int kExitCellsFailed = 3;

int run_sweep(const SweepOptions& options, MPI_Comm comm);

}  // namespace sdm::orchestrator
