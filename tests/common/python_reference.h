#pragma once
// Runs a Python reference script (tests/common/*.py, with Debian's /usr/bin/python3) and parses its JSON stdout.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace sdm::testing {

/// `script` and `args` are relative to tests/common; a failing script fails the calling test.
inline nlohmann::json python_json(const std::string& script, const std::string& args = "") {
  const std::string cmd = std::string(SDM_PYTHON) + " " + SDM_TEST_DIR + "/" + script + " " + args;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << cmd;
  if (!pipe) return nullptr;
  std::string text;
  char buf[65536];
  while (std::fgets(buf, sizeof buf, pipe)) text += buf;
  const int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << cmd;
  return rc == 0 ? nlohmann::json::parse(text) : nlohmann::json();
}

}  // namespace sdm::testing
