#pragma once
// The files beside a store (CONTRACTS §7): records/, journal.jsonl, the lock, artifacts/, plus expected.json
// (the cell ids of the spec last run on it) and sweep.yaml (its text). Rank 0 owns the journal and the lock.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace sdm::orchestrator {

struct StorePaths {
  std::string store;      ///< runs/x/store.h5
  std::string dir;        ///< runs/x
  std::string records;    ///< runs/x/records
  std::string journal;    ///< runs/x/journal.jsonl
  std::string lock;       ///< runs/x/store.h5.lock
  std::string artifacts;  ///< runs/x/artifacts
  std::string expected;   ///< runs/x/expected.json
  std::string sweep_yaml; ///< runs/x/sweep.yaml
  std::string hash_cache; ///< runs/x/input-hashes.json
  std::string embeddings; ///< runs/x/cache/embeddings: frozen-encoder outputs by content key

  static StorePaths for_store(const std::string& store);
  std::string record(const std::string& cell_id) const { return records + "/" + cell_id + ".h5"; }
  std::string embedding(const std::string& key) const { return embeddings + "/" + key + ".h5"; }
  void create_directories() const;
};

/// "2026-11-24T10:11:12.345Z"
std::string utc_now();

/// The store lock: created exclusively, refreshed by heartbeat(), removed by release() (and on SIGTERM/SIGINT).
class StoreLock {
 public:
  /// Throws ConfigError describing the holder when the store is locked. A stale lock (dead pid on this host, or
  /// no heartbeat for `stale_after_s`) is reported and broken only with `force`.
  StoreLock(const StorePaths& paths, bool force, double stale_after_s = 600);
  ~StoreLock();
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  void heartbeat();
  void release();

 private:
  std::string path_;
  bool held_ = false;
};

/// Append-only event log; each line {ts, cell_id, status, attempt, rank, record_sha256} (+ error when failed).
class Journal {
 public:
  explicit Journal(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  /// Appends one line with a single write(); `durable` also fdatasyncs it.
  void append(const nlohmann::json& event, bool durable);
  static std::vector<nlohmann::json> read(const std::string& path);

 private:
  std::string path_;
  int fd_ = -1;
};

/// Writes text to `path` through a temporary file and rename.
void write_file_atomic(const std::string& path, const std::string& text);
std::string read_text_file(const std::string& path);

}  // namespace sdm::orchestrator
