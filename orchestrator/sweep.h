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
  /// Drain (SIGUSR1, SIGTERM when SDM_DRAIN_ON_TERM=1, or the time limit): seconds running cells get to finish before rank 0 gives up on
  /// them (they stay `interrupted` for the next --resume) and aborts the job.
  double drain_grace_s = 300;
  /// Seconds this run may use (0 = no limit): a cell whose measured duration (same model and strategy, this run)
  /// does not fit in the time left is not started; the sweep drains instead.
  double time_left_s = 0;
};

/// Exit codes: 0 all cells done, 3 some cells failed (their records say why), 1/2 on errors before any cell ran,
/// 75 (EX_TEMPFAIL) drained before the end: committed cells are kept and `--resume` (a requeued job) goes on.
inline constexpr int kExitCellsFailed = 3;
inline constexpr int kExitDrained = 75;

int run_sweep(const SweepOptions& options, MPI_Comm comm);

}  // namespace sdm::orchestrator
