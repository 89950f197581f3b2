// `sdm verify STORE`: the store checked against its records and journal; exit 1 when anything is wrong.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "orchestrator/command.h"
#include "orchestrator/verify.h"

namespace sdm::orchestrator {
namespace {

class VerifyCommand final : public Command {
 public:
  const char* name() const override { return "verify"; }
  const char* summary() const override {
    return "Check a store against its records and journal (schema, ids, checksums, row counts, metrics); exit 1 on any problem";
  }
  void configure(CLI::App& app) override {
    app.add_option("store", store_, "The store.h5 (or its directory)")->required();
    app.add_flag("--json", json_, "Print {ok, problems, notes, cells, records, predictions, breakdown}");
  }
  int run(const RunContext&) override {
    std::error_code ec;
    const std::string store = std::filesystem::is_directory(store_, ec) ? store_ + "/store.h5" : store_;
    const VerifyReport r = verify_store(StorePaths::for_store(store));
    if (json_) {
      std::cout << r.to_json().dump(1) << "\n";
    } else {
      for (const auto& p : r.problems) std::cout << "FAIL  " << p << "\n";
      for (const auto& n : r.notes) std::cout << "note  " << n << "\n";
      std::cout << "verify: " << (r.problems.empty() ? "OK" : std::to_string(r.problems.size()) + " problem(s)") << " ("
                << r.cells << " cells, " << r.records << " records, " << r.predictions << " predictions, " << r.breakdown
                << " breakdown rows)\n";
    }
    return r.problems.empty() ? 0 : 1;
  }

 private:
  std::string store_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_verify_command() { return std::make_unique<VerifyCommand>(); }

}  // namespace sdm::orchestrator
