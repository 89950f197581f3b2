#pragma once
// Rank-aware logging. Library code just calls spdlog::info(...); only main() calls setup_logging().
// Every line carries the rank tag "[r1/4]" so interleaved output from many ranks stays readable.
#include <string>

namespace sdm {

struct LogOptions {
  int rank = 0;
  int size = 1;
  std::string level = "info";  ///< trace, debug, info, warn, error, critical, off
  /// When set, every rank also writes DIR/rank-<r>.log (created if missing) at `level` or finer.
  std::string log_dir;
  /// Ranks other than 0 print only warnings and errors to the console unless this is true.
  bool console_all_ranks = false;
};

/// "[r1/4]" for rank 1 of 4.
std::string rank_tag(int rank, int size);

/// Installs the default spdlog logger: console (stderr) on rank 0 at `level`, warnings+ on other ranks,
/// plus an optional per-rank file. Throws ConfigError for an unknown level name.
void setup_logging(const LogOptions& options);

/// Path of this rank's log file for a log directory: DIR/rank-0003.log.
std::string rank_log_path(const std::string& log_dir, int rank);

}  // namespace sdm
