#include "orchestrator/sweep.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "cluster/environment.h"
#include "cluster/mpi.h"
#include "common/cell_record.h"
#include "common/error.h"
#include "common/hash.h"
#include "jobs/expand.h"
#include "orchestrator/consolidate.h"
#include "orchestrator/results_table.h"
#include "orchestrator/store_files.h"
#include "cluster/collective.h"
#include "worker/runtime.h"
#include "worker/task_runner.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

// The drain request: SIGUSR1 (Slurm's pre-timeout signal, forwarded by mpirun and srun), and SIGTERM (preemption)
// where the batch script asks for it (SDM_DRAIN_ON_TERM=1). Elsewhere SIGTERM keeps its meaning: mpirun sends it
// to end a job whose rank died, and the store lock is released on it. The handler only records the signal; rank 0
// acts on it between messages, workers finish their cell.
std::atomic<int> g_drain_signal{0};

extern "C" void request_drain(int sig) { g_drain_signal.store(sig); }

void install_drain_handlers() {
  struct sigaction action {};
  action.sa_handler = request_drain;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // MPI and file calls go on
  sigaction(SIGUSR1, &action, nullptr);
  const char* on_term = std::getenv("SDM_DRAIN_ON_TERM");
  if (on_term && std::string(on_term) == "1") sigaction(SIGTERM, &action, nullptr);
}

// Message tags of the scheduler protocol. A worker's request carries the result of its previous cell.
constexpr int kTagRequest = 11;  // worker -> 0: JSON {rank, result?}
constexpr int kTagTask = 12;     // 0 -> worker: JSON task
constexpr int kTagStop = 13;     // 0 -> worker: no more work

void send_json(const json& j, int dest, int tag, MPI_Comm comm) {
  const std::string text = j.dump();
  cluster::check_mpi(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, comm), "MPI_Send");
}

/// Receives one message, waiting without spinning (probe, then sleep with backoff up to `max_sleep`); calls
/// `idle` in between, so heartbeats and progress lines still happen while every worker is busy.
json receive(int source, int* from, int* tag, MPI_Comm comm, const std::function<void()>& idle = {},
             std::chrono::microseconds max_sleep = std::chrono::microseconds(500)) {
  MPI_Message message;
  MPI_Status status;
  int flag = 0;
  auto backoff = std::chrono::microseconds(20);
  while (true) {
    cluster::check_mpi(MPI_Improbe(source, MPI_ANY_TAG, comm, &flag, &message, &status), "MPI_Improbe");
    if (flag) break;
    if (idle) idle();
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, max_sleep);
  }
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::string text(static_cast<std::size_t>(count), '\0');
  cluster::check_mpi(MPI_Mrecv(text.data(), count, MPI_CHAR, &message, &status), "MPI_Mrecv");
  if (from) *from = status.MPI_SOURCE;
  if (tag) *tag = status.MPI_TAG;
  return text.empty() ? json::object() : json::parse(text);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

/// Stamps the run-time columns of a record (what execute() measures) and commits it.
std::string commit(CellRecord& record, const std::string& path, double wall_s, double cpu_s, int rank,
                   const std::string& started) {
  record.set("wall_s", wall_s);
  record.set("cpu_s", cpu_s);
  record.set("peak_rss_mb", peak_rss_mb());
  record.set("rank", std::int64_t{rank});
  record.set("host", cluster::host_name());
  record.set("started_utc", started);
  record.set("finished_utc", utc_now());
  return write_record(path, record);
}

/// Runs one task on this rank and commits its record; returns the result message for rank 0.
json execute(const json& task, worker::WorkerState& state, int rank) {
  if (task.value("kind", std::string()) == "embed") {
    json result = worker::run_embed(task, state);
    result["duration_kind"] = "embed:" + task.at("model").at("name").get<std::string>();  // for the time limit
    return result;
  }
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  const std::string started = utc_now();
  CellRecord record = worker::run_cell(task, state);
  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu_s = cpu_seconds() - cpu0;
  json result{{"cell_id", task.at("cell_id")}, {"attempt", task.at("attempt")}, {"status", record.text("status")},
              {"error", record.text("error")}};
  const auto c0 = Clock::now();
  try {
    result["record_sha256"] = commit(record, task.at("record_path"), wall_s, cpu_s, rank, started);
  } catch (const std::exception& e) {
    result["status"] = "failed";
    result["error"] = std::string("could not commit the record: ") + e.what();
    result["record_sha256"] = "";
  }
  result["commit_s"] = std::chrono::duration<double>(Clock::now() - c0).count();
  result["seconds"] = wall_s + result["commit_s"].get<double>();
  result["duration_kind"] = task.at("config").at("model").at("name").get<std::string>() + ":" +
                            task.at("config").at("strategy").at("name").get<std::string>();
  return result;
}

/// One dataset's embeddings under one frozen encoder, shared by every cell that needs them.
struct EmbedJob {
  std::string key;
  std::string dataset_id;
  json model;        ///< the cell config's model block
  json model_files;  ///< {weights, vocab}
  json data;         ///< reading options
  double cost = 1;
};

struct Prepared {
  StorePaths paths;
  std::vector<EmbedJob> embeds;  ///< not yet in the cache; run before the cells that need them
  std::string name;
  int max_attempts = 2;
  int ranks_per_task = 1;
  std::vector<jobs::Cell> todo;
  std::map<std::string, std::string> paths_by_id;
  std::size_t expected = 0;
  std::size_t already_done = 0;
  std::unique_ptr<StoreLock> lock;
};

void print_dry_run(const jobs::Expansion& expansion, const std::vector<jobs::Cell>& cells, bool as_json) {
  if (as_json) {
    json list = json::array();
    for (const auto& c : cells) {
      list.push_back({{"cell_id", c.id}, {"model", c.model}, {"preset", c.preset}, {"strategy", c.strategy},
                      {"protocol", c.protocol}, {"split", c.split}, {"fold", c.fold}, {"test_group", c.test_group},
                      {"seed", c.seed}, {"train_datasets", c.train_datasets}, {"test_datasets", c.test_datasets}});
    }
    std::cout << json{{"cells", list}, {"dropped", expansion.dropped}}.dump(1) << "\n";
    return;
  }
  std::cout << "cells: " << cells.size() << "\n";
  Table t;
  for (const char* name : {"#", "cell_id", "model", "preset", "strategy", "protocol", "split", "fold", "test_group", "seed"}) {
    t.add_column({name, ColumnKind::kText});
  }
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const auto& c = cells[i];
    t.add_row({std::to_string(i + 1), c.id.substr(0, 12), c.model, c.preset, c.strategy, c.protocol, c.split,
               c.fold < 0 ? std::string("-") : std::to_string(c.fold), c.test_group, std::to_string(c.seed)});
  }
  std::cout << render(t, "text");
  for (const auto& d : expansion.dropped) std::cout << "dropped: " << d << "\n";
}

/// Runs `step` (resolving or expanding a spec); an error that does not say which spec it came from gets the spec's
/// path in front, so a user with several specs knows which one to fix.
template <class Step>
auto in_spec(const std::string& spec_path, Step step) -> decltype(step()) {
  const auto name = [&](const Error& e) { return e.site().file == spec_path || std::string(e.what()).find(spec_path) != std::string::npos; };
  try {
    return step();
  } catch (const ConfigError& e) {
    if (name(e)) throw;
    throw ConfigError({spec_path, "", ""}, e.what());
  } catch (const IoError& e) {
    if (name(e)) throw;
    throw IoError({spec_path, "", ""}, e.what());
  }
}

/// Rank 0: everything before the first cell runs. Returns nullopt for a dry run.
std::unique_ptr<Prepared> prepare(const SweepOptions& options) {
  const auto spec = in_spec(options.spec, [&] { return jobs::SweepSpec::load(options.spec); });
  auto owned = std::make_unique<Prepared>();
  Prepared& p = *owned;
  p.paths = StorePaths::for_store(spec.store);
  p.name = spec.name;
  p.max_attempts = spec.resources.max_attempts;
  p.ranks_per_task = spec.resources.ranks_per_task;
  auto inputs = in_spec(options.spec, [&] { return jobs::resolve_inputs(spec); });
  std::error_code ec;
  const bool store_dir_exists = fs::exists(p.paths.dir, ec);
  jobs::hash_inputs(inputs, options.dry_run && !store_dir_exists ? std::string() : p.paths.hash_cache);
  const auto expansion = in_spec(options.spec, [&] { return jobs::expand(spec, inputs); });
  const auto selected = jobs::filter_cells(expansion.cells, options.only);
  if (options.dry_run) {
    print_dry_run(expansion, selected, options.json);
    return nullptr;
  }
  if (selected.empty()) throw ConfigError({"<cli>", "--only", options.only}, "selects no cell");
  p.paths.create_directories();
  p.lock = std::make_unique<StoreLock>(p.paths, options.force_unlock);
  for (const auto& d : inputs) p.paths_by_id[d.id] = fs::absolute(d.path).lexically_normal().string();

  // Resume: a committed record with the same id is a finished cell — if it is still the record the journal saw
  // committed (same SHA-256); a damaged or altered one is set aside and its cell runs again.
  std::size_t existing = 0;
  std::map<std::string, std::pair<std::string, std::int64_t>> prior;  // id -> (status, attempts)
  std::map<std::string, std::string> committed_sha;
  for (const auto& e : Journal::read(p.paths.journal)) {
    const std::string sha = e.value("record_sha256", std::string());
    if (!sha.empty()) committed_sha[e.value("cell_id", std::string())] = sha;
  }
  for (const auto& c : expansion.cells) {
    const auto record = p.paths.record(c.id);
    if (!fs::exists(record, ec)) continue;
    const auto sha = committed_sha.find(c.id);
    if (sha != committed_sha.end() && sha256_file_hex(record) != sha->second) {
      const std::string aside = record + ".damaged";
      fs::rename(record, aside, ec);
      spdlog::warn("record {} differs from the one committed (journal SHA-256); moved to {}, the cell runs again", record, aside);
      continue;
    }
    try {
      const CellRecord r = read_record(record, false);
      prior[c.id] = {r.text("status"), r.integer("attempts")};
      ++existing;
    } catch (const std::exception& e) {
      spdlog::warn("ignoring unreadable record {} ({}); the cell runs again", record, e.what());
    }
  }
  if (existing > 0 && !options.resume && !options.rerun_failed) {
    throw ConfigError({spec.store, "records", p.paths.records},
                      "the store already holds " + std::to_string(existing) +
                          " of this sweep's cells; use --resume to finish the rest (add --rerun-failed to redo failed "
                          "ones), or choose another store");
  }
  for (const auto& c : selected) {
    auto it = prior.find(c.id);
    if (it != prior.end() && (it->second.first == "done" || (it->second.first == "failed" && !options.rerun_failed))) {
      ++p.already_done;
      continue;
    }
    p.todo.push_back(c);
  }
  // Embeddings a cell needs and the cache does not have yet become embed tasks, each key once.
  std::set<std::string> queued;
  for (const auto& c : p.todo) {
    for (const auto& [id, key] : c.embed_keys) {
      if (queued.count(key) || fs::exists(p.paths.embedding(key), ec)) continue;
      queued.insert(key);
      p.embeds.push_back({key, id, c.config.at("model"), c.model_files, c.config.at("data"), c.expected_cost});
    }
  }
  std::stable_sort(p.embeds.begin(), p.embeds.end(), [](const auto& a, const auto& b) { return a.cost > b.cost; });
  // Longest expected first; equal-cost cells keep spec order.
  std::stable_sort(p.todo.begin(), p.todo.end(), [](const auto& a, const auto& b) { return a.expected_cost > b.expected_cost; });
  p.expected = expansion.cells.size();
  json ids = json::array();
  for (const auto& c : expansion.cells) ids.push_back(c.id);
  write_file_atomic(p.paths.expected, json{{"name", spec.name}, {"cells", ids}}.dump() + "\n");
  write_file_atomic(p.paths.sweep_yaml, spec.yaml_text);
  for (const auto& d : expansion.dropped) spdlog::info("dropped combination: {}", d);
  spdlog::info("sweep {}: {} cells in the spec, {} selected, {} already committed, {} to run{}", spec.name,
               expansion.cells.size(), selected.size(), p.already_done, p.todo.size(),
               p.embeds.empty() ? std::string() : " after " + std::to_string(p.embeds.size()) + " embedding tasks");
  return owned;
}

json make_task(const jobs::Cell& c, int attempt, const Prepared& p) {
  json paths = json::object();
  for (const auto& id : c.train_datasets) paths[id] = p.paths_by_id.at(id);
  for (const auto& id : c.test_datasets) paths[id] = p.paths_by_id.at(id);
  json embeddings = json::object();
  for (const auto& [id, key] : c.embed_keys) embeddings[id] = {{"key", key}, {"path", p.paths.embedding(key)}};
  json task{{"cell_id", c.id},
          {"attempt", attempt},
          {"config", c.config},
          {"paths", paths},
          {"feature_key", c.feature_key},
          {"record_path", p.paths.record(c.id)},
          {"artifact_dir", p.paths.artifacts + "/" + c.id},
          {"model_files", c.model_files},
          {"embeddings", embeddings}};
  if (embeddings.empty()) task.erase("embeddings");
  return task;
}

json make_embed_task(const EmbedJob& job, int attempt, const Prepared& p) {
  return {{"kind", "embed"},      {"key", job.key},     {"attempt", attempt},
          {"model", job.model},   {"model_files", job.model_files}, {"dataset_id", job.dataset_id},
          {"path", p.paths_by_id.at(job.dataset_id)}, {"data", job.data}, {"cache_path", p.paths.embedding(job.key)}};
}

std::string duration_text(double s) {
  if (!std::isfinite(s)) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  }
  return buf;
}

/// Rank 0's bookkeeping while tasks run: embed tasks first, then cells whose embeddings are all cached.
class Tracker {
 public:
  Tracker(Prepared& p, double progress_every) : p_(p), journal_(p.paths.journal), progress_every_(progress_every) {
    for (const auto& job : p.embeds) {
      embed_queue_.push_back({&job, 1});
      embed_state_[job.key] = kPending;
    }
    for (const auto& c : p.todo) queue_.push_back({&c, 1});
    total_ = queue_.size();
  }

  bool has_work() const { return !queue_.empty() || !embed_queue_.empty(); }
  std::size_t running() const { return running_.size(); }
  std::size_t left() const { return queue_.size() + embed_queue_.size(); }

  /// From now on a task starts only if its measured duration fits before `deadline`.
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }
  /// True once a task was held back because it would not finish before the deadline.
  bool out_of_time() const { return out_of_time_; }

  /// The next task for `rank`, or nothing while every queued cell waits for an embedding still running. Among
  /// ready cells: the longest, or one sharing the worker's last data and split when it is not much shorter (its
  /// features are still in that worker's memory).
  std::optional<json> next_for(int rank) {
    if (!embed_queue_.empty()) {
      if (!fits("embed:" + embed_queue_.front().first->model.at("name").get<std::string>())) return std::nullopt;
      auto item = embed_queue_.front();
      embed_queue_.erase(embed_queue_.begin());
      spdlog::info("embedding {} with {} on rank {}", item.first->dataset_id, item.first->model.at("name").get<std::string>(), rank);
      return make_embed_task(*item.first, item.second, p_);
    }
    std::optional<std::size_t> pick;
    const auto it = last_key_.find(rank);
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      if (!ready(*queue_[i].first)) continue;
      if (!pick) {
        pick = i;
        if (it == last_key_.end()) break;
      }
      if (it != last_key_.end() && queue_[i].first->feature_key == it->second &&
          queue_[i].first->expected_cost >= 0.25 * queue_[*pick].first->expected_cost) {
        pick = i;
        break;
      }
    }
    if (!pick || !fits(kind_of(*queue_[*pick].first))) return std::nullopt;
    auto item = queue_[*pick];
    queue_.erase(queue_.begin() + static_cast<long>(*pick));
    last_key_[rank] = item.first->feature_key;
    running_[item.first->id] = item;
    journal_.append({{"ts", utc_now()}, {"cell_id", item.first->id}, {"status", "running"}, {"attempt", item.second},
                     {"rank", rank}, {"record_sha256", ""}},
                    false);
    return make_task(*item.first, item.second, p_);
  }

  void finished(const json& result, int rank) {
    if (result.contains("seconds") && result.contains("duration_kind")) {
      auto& [sum, n] = durations_[result.at("duration_kind").get<std::string>()];
      sum += result.at("seconds").get<double>();
      ++n;
    }
    if (result.value("kind", std::string()) == "embed") return embed_finished(result);
    const auto t0 = Clock::now();
    const std::string id = result.at("cell_id");
    const std::string status = result.at("status");
    const int attempt = result.at("attempt");
    json event{{"ts", utc_now()},  {"cell_id", id}, {"status", status}, {"attempt", attempt}, {"rank", rank},
               {"record_sha256", result.value("record_sha256", std::string())}};
    if (status != "done") event["error"] = result.value("error", std::string());
    journal_.append(event, true);
    auto item = running_.at(id);
    running_.erase(id);
    commit_s_ += result.value("commit_s", 0.0);
    if (status == "done") {
      ++done_;
    } else if (attempt < p_.max_attempts) {
      spdlog::warn("cell {} failed (attempt {}/{}), retrying: {}", id.substr(0, 12), attempt, p_.max_attempts,
                   result.value("error", std::string()));
      queue_.push_back({item.first, attempt + 1});
    } else {
      ++failed_;
      spdlog::error("cell {} failed after {} attempt(s): {}", id.substr(0, 12), attempt, result.value("error", std::string()));
    }
    handling_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
    ++handled_;
  }

  void tick(bool force = false) {
    const auto now = Clock::now();
    if (now - last_heartbeat_ > std::chrono::seconds(30)) {
      p_.lock->heartbeat();
      last_heartbeat_ = now;
    }
    if (!force && std::chrono::duration<double>(now - last_progress_).count() < progress_every_) return;
    last_progress_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done_ + failed_) / elapsed * 60 : 0;
    const std::size_t left = total_ - done_ - failed_;
    const double eta = rate > 0 ? static_cast<double>(left) / rate * 60 : NAN;
    spdlog::info("progress: {}/{} done, {} failed, {} running, {} left | {:.1f} cells/min | ETA {}", done_, total_,
                 failed_, running_.size(), left - running_.size(), rate, duration_text(eta));
  }

  std::size_t done() const { return done_; }
  std::size_t failed() const { return failed_; }
  std::size_t total() const { return total_; }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double handling_ms() const { return handled_ ? 1e3 * handling_s_ / static_cast<double>(handled_) : 0; }
  double commit_ms() const { return handled_ ? 1e3 * commit_s_ / static_cast<double>(handled_) : 0; }

 private:
  enum EmbedState { kPending, kDone, kFailed };

  static std::string kind_of(const jobs::Cell& c) {
    return c.config.at("model").at("name").get<std::string>() + ":" + c.config.at("strategy").at("name").get<std::string>();
  }

  /// Whether a task of `kind` is expected to finish before the deadline (unknown durations are let through).
  bool fits(const std::string& kind) {
    if (!deadline_) return true;
    const auto it = durations_.find(kind);
    const double expected = it == durations_.end() ? 0.0 : it->second.first / static_cast<double>(it->second.second);
    const double left = std::chrono::duration<double>(*deadline_ - Clock::now()).count();
    if (expected <= left && left > 0) return true;
    if (!out_of_time_) {
      spdlog::warn("time limit: a {} task takes {:.1f} s here, {:.1f} s are left: no new tasks start", kind, expected, left);
    }
    out_of_time_ = true;
    return false;
  }

  bool ready(const jobs::Cell& c) const {
    for (const auto& [id, key] : c.embed_keys) {
      const auto it = embed_state_.find(key);
      if (it != embed_state_.end() && it->second != kDone) return false;
    }
    return true;
  }

  void embed_finished(const json& result) {
    const std::string key = result.at("key");
    const int attempt = result.at("attempt");
    const EmbedJob* job = nullptr;
    for (const auto& j : p_.embeds) job = j.key == key ? &j : job;
    if (result.at("status") == "done") {
      embed_state_[key] = kDone;
      return;
    }
    const std::string error = result.value("error", std::string());
    if (attempt < p_.max_attempts) {
      spdlog::warn("embedding {} failed (attempt {}/{}), retrying: {}", job->dataset_id, attempt, p_.max_attempts, error);
      embed_queue_.push_back({job, attempt + 1});
      return;
    }
    embed_state_[key] = kFailed;
    // Every cell that needs these embeddings fails with the reason, committed by rank 0 itself.
    const std::string reason = "embedding " + job->dataset_id + " with " + job->model.at("name").get<std::string>() +
                               " failed: " + error;
    for (auto it = queue_.begin(); it != queue_.end();) {
      bool blocked = false;
      for (const auto& [id, k] : it->first->embed_keys) blocked = blocked || k == key;
      if (!blocked) {
        ++it;
        continue;
      }
      const json task = make_task(*it->first, it->second, p_);
      CellRecord record = worker::failed_record(task, reason);
      std::string sha;
      try {
        sha = commit(record, task.at("record_path"), 0.0, 0.0, 0, utc_now());
      } catch (const std::exception& e) {
        spdlog::error("cannot commit the failed record of {}: {}", it->first->id.substr(0, 12), e.what());
      }
      journal_.append({{"ts", utc_now()}, {"cell_id", it->first->id}, {"status", "failed"}, {"attempt", it->second},
                       {"rank", 0}, {"record_sha256", sha}, {"error", reason}},
                      true);
      spdlog::error("cell {} failed: {}", it->first->id.substr(0, 12), reason);
      ++failed_;
      it = queue_.erase(it);
    }
  }

  Prepared& p_;
  Journal journal_;
  double progress_every_;
  std::vector<std::pair<const EmbedJob*, int>> embed_queue_;
  std::map<std::string, EmbedState> embed_state_;
  std::vector<std::pair<const jobs::Cell*, int>> queue_;
  std::map<std::string, std::pair<const jobs::Cell*, int>> running_;
  std::map<int, std::string> last_key_;
  std::map<std::string, std::pair<double, int>> durations_;  ///< model:strategy -> (seconds summed, count)
  std::optional<Clock::time_point> deadline_;
  bool out_of_time_ = false;
  std::size_t total_ = 0, done_ = 0, failed_ = 0, handled_ = 0;
  double handling_s_ = 0, commit_s_ = 0;
  Clock::time_point start_ = Clock::now(), last_progress_ = Clock::now(), last_heartbeat_ = Clock::now();
};

/// Drain state of rank 0: why it stopped handing out tasks, since when, and the grace for the running ones.
struct Drain {
  double grace_s = 300;
  std::optional<Clock::time_point> since;
  /// True when a signal arrived or the time limit held a task back; logs once.
  bool requested(const Tracker& tracker) {
    if (since) return true;
    const int sig = g_drain_signal.load();
    if (sig == 0 && !tracker.out_of_time()) return false;
    since = Clock::now();
    spdlog::warn("draining ({}): no new tasks; {} running task(s) get {:.0f} s to finish; {} left for --resume",
                 sig == SIGUSR1 ? "SIGUSR1" : sig == SIGTERM ? "SIGTERM" : "time limit", tracker.running(), grace_s,
                 tracker.left());
    return true;
  }
  bool expired() const { return since && std::chrono::duration<double>(Clock::now() - *since).count() > grace_s; }
};

/// The grace ran out with tasks still running: their cells stay `interrupted` (journal: running, no record) and
/// the next --resume runs them again. Consolidation needs every rank, so rank 0 ends the job instead.
[[noreturn]] void abort_drain(Tracker& tracker, Prepared& prepared, MPI_Comm comm) {
  spdlog::error("drain grace expired with {} task(s) running: they stay interrupted; committed cells are kept; "
                "run again with --resume", tracker.running());
  prepared.lock->release();
  spdlog::default_logger()->flush();
  MPI_Abort(comm, kExitDrained);
  std::abort();
}

void run_rank0(Tracker& tracker, Prepared& prepared, Drain& drain, int size, int group_size, MPI_Comm comm) {
  if (size == 1) {  // no workers: rank 0 runs the tasks itself
    worker::WorkerState state;
    while (tracker.has_work() && !drain.requested(tracker)) {
      const auto task = tracker.next_for(0);
      if (!task) {
        if (tracker.out_of_time()) continue;  // held back by the time limit: the loop drains
        break;  // cannot happen: nothing else is running to make a cell ready
      }
      tracker.finished(execute(*task, state, 0), 0);
      tracker.tick();
    }
    return;
  }
  int active = (size - 1) / group_size;  // one requester per group: its leader
  std::vector<int> waiting;  // workers whose request is unanswered: every ready cell waits for an embedding
  const auto stop = [&](int rank) {
    send_json(json::object(), rank, kTagStop, comm);
    --active;
  };
  while (active > 0) {
    int from = 0, tag = 0;
    const json msg = receive(MPI_ANY_SOURCE, &from, &tag, comm, [&] {
      tracker.tick();
      if (drain.requested(tracker)) {
        for (int rank : waiting) stop(rank);  // parked workers stop at once
        waiting.clear();
        if (drain.expired()) abort_drain(tracker, prepared, comm);
      }
    });
    if (msg.contains("result")) tracker.finished(msg.at("result"), from);
    tracker.tick();
    waiting.push_back(from);
    while (!waiting.empty()) {
      const int rank = waiting.front();
      if (drain.requested(tracker)) {
        stop(rank);
      } else if (tracker.has_work()) {
        auto task = tracker.next_for(rank);
        if (!task) {
          if (tracker.out_of_time()) continue;  // the time limit: drain (next round of this loop)
          break;  // answered when a running embed task reports back
        }
        send_json(*task, rank, kTagTask, comm);
      } else {
        // Another worker's failed cell may still come back for a retry; that worker asks again itself.
        stop(rank);
      }
      waiting.erase(waiting.begin());
    }
  }
}

/// A worker rank. Alone (ranks_per_task 1) it asks rank 0 for tasks and runs them. In a group, the group's rank
/// 0 (the leader) does the asking and hands each LoRA cell to the members too, so the group trains it together;
/// other tasks run on the leader alone.
void run_worker(int rank, MPI_Comm comm, MPI_Comm group_comm, cluster::Collective* group) {
  worker::WorkerState state;
  state.group = group;
  const bool member = group && group->rank() != 0;
  if (member) {
    while (true) {
      int tag = 0;
      const json task = receive(0, nullptr, &tag, group_comm, {}, std::chrono::microseconds(200));
      if (tag == kTagStop) return;
      worker::run_group_share(task, state);
    }
  }
  json request{{"rank", rank}};
  while (true) {
    send_json(request, 0, kTagRequest, comm);
    int tag = 0;
    const json task = receive(0, nullptr, &tag, comm, {}, std::chrono::microseconds(100));
    if (tag == kTagStop) break;
    if (group && worker::uses_group(task)) {
      for (int r = 1; r < group->size(); ++r) send_json(task, r, kTagTask, group_comm);
    }
    request = {{"rank", rank}, {"result", execute(task, state, rank)}};
  }
  if (group) {
    for (int r = 1; r < group->size(); ++r) send_json(json::object(), r, kTagStop, group_comm);
  }
}

}  // namespace

int run_sweep(const SweepOptions& options, MPI_Comm comm) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  worker::set_torch_threads(std::max(1, options.threads));
  if (const int gpu = worker::bind_gpu(); gpu >= 0) spdlog::info("rank {}: GPU {} (node-local rank mod visible GPUs)", rank, gpu);
  worker::keep_freed_memory();  // transformer activations are re-allocated layer after layer (see runtime.h)

  // Rank 0 prepares; the others learn whether to go on (1), stop quietly (0, dry run) or fail (-1; -2 = bad input).
  std::unique_ptr<Prepared> prepared;
  int go = 1;
  std::string error;
  if (rank == 0) {
    try {
      prepared = prepare(options);
      go = prepared ? 1 : 0;
      const int k = prepared ? prepared->ranks_per_task : 1;
      if (prepared && k > 1 && (size < 1 + k || (size - 1) % k != 0)) {
        throw ConfigError({options.spec, "sweep.resources.ranks_per_task", std::to_string(k)},
                          "needs 1 + a multiple of " + std::to_string(k) + " ranks (rank 0 orchestrates; workers form groups of " +
                              std::to_string(k) + "); this run has " + std::to_string(size));
      }
    } catch (const ConfigError& e) {
      error = e.what();
      go = -2;
    } catch (const std::exception& e) {
      error = e.what();
      go = -1;
    }
  }
  cluster::check_mpi(MPI_Bcast(&go, 1, MPI_INT, 0, comm), "MPI_Bcast");
  if (go == 0) return 0;
  if (go < 0) {
    if (rank == 0) std::cerr << "sdm sweep: error: " << error << std::endl;
    return go == -2 ? 2 : 1;  // every rank exits with the same code, so mpirun reports it
  }

  int group_size = rank == 0 ? prepared->ranks_per_task : 1;
  cluster::check_mpi(MPI_Bcast(&group_size, 1, MPI_INT, 0, comm), "MPI_Bcast");
  // Data-parallel groups of workers: ranks 1..k, k+1..2k, ...; rank 0 belongs to none.
  cluster::MpiComm group_comm;
  std::unique_ptr<cluster::Collective> group;
  if (group_size > 1) {
    group_comm = cluster::MpiComm::split(comm, rank == 0 ? MPI_UNDEFINED : (rank - 1) / group_size, rank);
    if (rank != 0) group = worker::make_group_collective(group_comm.get());
  }

  install_drain_handlers();  // after the store lock, whose SIGTERM handler this may replace during the run
  std::optional<Tracker> tracker;
  Drain drain;
  drain.grace_s = options.drain_grace_s;
  if (rank == 0) {
    tracker.emplace(*prepared, options.progress_every_s);
    if (options.time_left_s > 0) {
      tracker->set_deadline(Clock::now() + std::chrono::milliseconds(static_cast<long long>(options.time_left_s * 1e3)));
    }
    if (group_size > 1) spdlog::info("{} worker groups of {} ranks (LoRA cells train data-parallel)", (size - 1) / group_size, group_size);
    run_rank0(*tracker, *prepared, drain, size, group_size, comm);
  } else {
    run_worker(rank, comm, group_comm.get(), group.get());
  }
  group.reset();

  std::string store = rank == 0 ? prepared->paths.store : std::string();
  long long n = static_cast<long long>(store.size());
  cluster::check_mpi(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  store.resize(static_cast<std::size_t>(n));
  cluster::check_mpi(MPI_Bcast(store.data(), static_cast<int>(n), MPI_CHAR, 0, comm), "MPI_Bcast");
  const ConsolidateStats stats = consolidate(StorePaths::for_store(store), comm);
  if (rank != 0) return 0;

  tracker->tick(true);
  const double elapsed = tracker->elapsed();
  spdlog::info("sweep {}: {} done, {} failed of {} run ({} committed before) in {} | {:.2f} cells/s | rank-0 "
               "handling {:.3f} ms/cell, record commit {:.3f} ms/cell",
               prepared->name, tracker->done(), tracker->failed(), tracker->total(), prepared->already_done,
               duration_text(elapsed), elapsed > 0 ? static_cast<double>(tracker->total()) / elapsed : 0.0,
               tracker->handling_ms(), tracker->commit_ms());
  spdlog::info("store {}: {} cells, {} predictions, {} breakdown rows, consolidated by {} ranks in {:.2f} s ({})",
               store, stats.cells, stats.predictions, stats.breakdown, size, stats.seconds, stats.io_mode);
  if (stats.stale_records > 0) {
    spdlog::warn("{} records in {} belong to cells this spec no longer has; they are not in the store",
                 stats.stale_records, prepared->paths.records);
  }
  const auto cells = read_store_cells(store);
  std::cout << render(summary_table(cells), "text") << std::flush;
  if (const auto leakage = leakage_table(cells); !leakage.empty()) {
    std::cout << "\ncell split vs sample split on the same data (gap = cell - sample):\n" << render(leakage, "text") << std::flush;
  }
  prepared->lock->release();
  if (drain.since && (tracker->has_work() || tracker->running() > 0)) {
    spdlog::warn("drained: {} task(s) not run; exit {} so a requeued job (or `sdm sweep --resume`) goes on", tracker->left(),
                 kExitDrained);
    return kExitDrained;
  }
  return tracker->failed() > 0 ? kExitCellsFailed : 0;
}

}  // namespace sdm::orchestrator
