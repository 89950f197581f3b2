#pragma once
// Shared by the fuzz targets (tests/fuzz/fuzz_*.cpp). Each target defines LLVMFuzzerTestOneInput; it is linked
// either with libFuzzer (clang, -DSDM_FUZZ=ON, tools/fuzz.sh) or with replay_main.cpp (the normal build, where
// CTest replays the seed corpus and every kept crasher as a regression test).
//
// The contract a target checks: any input either parses or is rejected with an sdm::Error (a clear message naming
// the file / field / value). Anything else — another exception type, a crash, a sanitizer report, a hang — is a
// finding, and the target aborts so the fuzzer keeps the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace sdm::fuzz {

/// Writes the input to one scratch file per process (in /dev/shm when there is one: the readers under test take
/// paths) and returns its path. `suffix` picks the format the reader expects ("x.h5ad").
std::string write_scratch(const std::uint8_t* data, std::size_t size, const std::string& suffix);

/// Runs `body`; returns normally for success or an sdm::Error, aborts with the message for anything else.
template <typename Body>
void expect_clean_rejection(const char* target, Body&& body) {
  try {
    body();
  } catch (const sdm::Error&) {
    // the documented way to refuse bad input
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: escaped as a %s, not an sdm::Error: %s\n", target, typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "%s: a non-std exception escaped\n", target);
    std::abort();
  }
}

/// Silences the library's logging (warnings on odd inputs would flood the fuzzer's output).
void quiet_logging();

}  // namespace sdm::fuzz
