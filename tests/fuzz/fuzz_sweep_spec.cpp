// The sweep spec parser: YAML syntax, unknown keys, wrong types, out-of-range values, the grid expansion's
// inputs. Every rejection must be a ConfigError naming the spec and the field.
#include "jobs/sweep_spec.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (sdm::fuzz::quiet_logging(), true);
  (void)quiet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  sdm::fuzz::expect_clean_rejection("fuzz_sweep_spec",
                                    [&] { (void)sdm::jobs::SweepSpec::parse(text, "fuzz.yaml"); });
  return 0;
}
