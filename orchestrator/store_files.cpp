#include "orchestrator/store_files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cluster/environment.h"
#include "common/cell_record.h"
#include "common/error.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;

StorePaths StorePaths::for_store(const std::string& store) {
  StorePaths p;
  p.store = store;
  const fs::path parent = fs::path(store).parent_path();
  p.dir = parent.empty() ? "." : parent.string();
  p.records = p.dir + "/records";
  p.journal = p.dir + "/journal.jsonl";
  p.lock = store + ".lock";
  p.artifacts = p.dir + "/artifacts";
  p.expected = p.dir + "/expected.json";
  p.sweep_yaml = p.dir + "/sweep.yaml";
  p.hash_cache = p.dir + "/input-hashes.json";
  p.embeddings = p.dir + "/cache/embeddings";
  return p;
}

void StorePaths::create_directories() const {
  std::error_code ec;
  for (const auto& d : {records, embeddings}) {
    fs::create_directories(d, ec);
    if (ec) throw IoError({d, "", ""}, "cannot create the store directory: " + ec.message());
  }
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

namespace {

char g_lock_path[4096];  // for the signal handler: unlink() is async-signal-safe, std::string is not

extern "C" void release_lock_on_signal(int sig) {
  if (g_lock_path[0]) ::unlink(g_lock_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

StoreLock::StoreLock(const StorePaths& paths, bool force, double stale_after_s) : path_(paths.lock) {
  const std::string host = cluster::host_name();
  const nlohmann::json me{{"host", host},
                          {"pid", static_cast<long>(::getpid())},
                          {"job_id", std::getenv("SLURM_JOB_ID") ? std::getenv("SLURM_JOB_ID") : ""},
                          {"started_utc", utc_now()}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const std::string text = me.dump() + "\n";
      const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
      ::close(fd);
      if (!ok) throw IoError({path_, "", ""}, "cannot write the store lock");
      held_ = true;
      std::snprintf(g_lock_path, sizeof g_lock_path, "%s", path_.c_str());
      std::signal(SIGTERM, release_lock_on_signal);
      std::signal(SIGINT, release_lock_on_signal);
      return;
    }
    if (errno != EEXIST) throw IoError({path_, "", ""}, std::string("cannot create the store lock: ") + std::strerror(errno));
    nlohmann::json holder;
    try {
      holder = nlohmann::json::parse(read_text_file(path_));
    } catch (const std::exception&) {
      holder = nlohmann::json::object();
    }
    const std::string h = holder.value("host", std::string("?"));
    const long pid = holder.value("pid", 0L);
    std::error_code ec;
    const auto age = std::chrono::duration<double>(fs::file_time_type::clock::now() - fs::last_write_time(path_, ec)).count();
    const bool dead_here = h == host && pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    // A requeued Slurm job finds the lock its own earlier run left (killed at the limit): that run is over.
    const char* job = std::getenv("SLURM_JOB_ID");
    const char* restarts = std::getenv("SLURM_RESTART_COUNT");
    const bool own_requeue = job && *job && holder.value("job_id", std::string()) == job && restarts && std::atoi(restarts) > 0;
    const bool silent = !ec && age > stale_after_s;
    const std::string who = "host " + h + ", pid " + std::to_string(pid) +
                            (holder.value("job_id", std::string()).empty() ? "" : ", job " + holder.value("job_id", std::string())) +
                            ", since " + holder.value("started_utc", std::string("?"));
    if (!dead_here && !silent && !own_requeue) {
      throw ConfigError({paths.store, "lock", path_}, "the store is locked by a running sweep (" + who +
                                                          "); wait for it, or use another store");
    }
    const std::string why = own_requeue ? "this job's run before its requeue"
                            : dead_here ? "its process is gone"
                                        : "no heartbeat for " + std::to_string(static_cast<int>(age)) + " s";
    if (!force && !own_requeue) {
      throw ConfigError({paths.store, "lock", path_}, "stale lock from a sweep that did not finish (" + who + "; " + why +
                                                          "); rerun with --force-unlock to break it");
    }
    std::fprintf(stderr, "sdm: breaking stale store lock (%s; %s)\n", who.c_str(), why.c_str());
    fs::remove(path_, ec);
  }
  throw ConfigError({paths.store, "lock", path_}, "could not take the store lock");
}

StoreLock::~StoreLock() { release(); }

void StoreLock::heartbeat() {
  if (!held_) return;
  std::error_code ec;
  fs::last_write_time(path_, fs::file_time_type::clock::now(), ec);
}

void StoreLock::release() {
  if (!held_) return;
  g_lock_path[0] = '\0';
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  ::unlink(path_.c_str());
  held_ = false;
}

Journal::Journal(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError({path, "", ""}, std::string("cannot open the journal: ") + std::strerror(errno));
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const nlohmann::json& event, bool durable) {
  const std::string line = event.dump() + "\n";
  if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throw IoError({path_, "", ""}, std::string("cannot append to the journal: ") + std::strerror(errno));
  }
  if (durable && ::fdatasync(fd_) != 0) throw IoError({path_, "", ""}, std::string("fdatasync failed: ") + std::strerror(errno));
}

std::vector<nlohmann::json> Journal::read(const std::string& path) {
  std::vector<nlohmann::json> events;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      events.push_back(nlohmann::json::parse(line));
    } catch (const std::exception&) {
      // A torn last line (crash mid-write) is skipped; records are the source of truth.
    }
  }
  return events;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw IoError({tmp, "", ""}, "cannot write");
  }
  fsync_path(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw IoError({path, "", ""}, "cannot rename into place: " + ec.message());
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError({path, "", ""}, "cannot read");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace sdm::orchestrator
