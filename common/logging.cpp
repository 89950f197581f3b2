#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/text.h"

namespace sdm {
namespace {

spdlog::level::level_enum parse_level(const std::string& name) {
  static const std::array<std::string, 7> kNames{"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (name == kNames[i]) return static_cast<spdlog::level::level_enum>(i);
  throw ConfigError({"<cli>", "--log-level", name}, "unknown log level; " + suggest(name, kNames));
}

}  // namespace

std::string rank_tag(int rank, int size) {
  return "[r" + std::to_string(rank) + "/" + std::to_string(size) + "]";
}

std::string rank_log_path(const std::string& log_dir, int rank) {
  char name[32];
  std::snprintf(name, sizeof name, "rank-%04d.log", rank);
  return (std::filesystem::path(log_dir) / name).string();
}

void setup_logging(const LogOptions& options) {
  const auto level = parse_level(options.level);
  const std::string tag = rank_tag(options.rank, options.size);

  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^[%H:%M:%S.%e] " + tag + " %l%$: %v");
  const bool quiet_rank = options.rank != 0 && !options.console_all_ranks;
  console->set_level(quiet_rank ? std::max(level, spdlog::level::warn) : level);

  std::vector<spdlog::sink_ptr> sinks{console};
  if (!options.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.log_dir, ec);
    if (ec) throw IoError({options.log_dir, "--log-dir", ""}, "cannot create log directory: " + ec.message());
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(rank_log_path(options.log_dir, options.rank));
    file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] " + tag + " %l: %v");
    file->set_level(level);
    sinks.push_back(file);
  }

  auto logger = std::make_shared<spdlog::logger>("sdm", sinks.begin(), sinks.end());
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);  // a killed rank must not lose its last lines
  spdlog::set_default_logger(logger);
}

}  // namespace sdm
