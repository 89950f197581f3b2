#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace sdm {

TEST(Logging, RankTag) { EXPECT_EQ(rank_tag(1, 4), "[r1/4]"); }

TEST(Logging, PerRankFileCarriesTheRankTag) {
  const auto dir = std::filesystem::temp_directory_path() / "sdm_logging_test";
  std::filesystem::remove_all(dir);
  setup_logging({3, 8, "debug", dir.string(), false});
  spdlog::debug("hello from {}", "rank three");
  spdlog::default_logger()->flush();
  const std::string path = rank_log_path(dir.string(), 3);
  EXPECT_EQ(std::filesystem::path(path).filename(), "rank-0003.log");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("[r3/8] debug: hello from rank three"), std::string::npos) << text.str();
  setup_logging({});
  std::filesystem::remove_all(dir);
}

TEST(Logging, UnknownLevelIsAConfigError) {
  try {
    setup_logging({0, 1, "verbose", "", false});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--log-level = 'verbose': unknown log level"), std::string::npos) << e.what();
  }
}

}  // namespace sdm
