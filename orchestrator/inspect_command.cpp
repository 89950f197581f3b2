#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/dataset_io.h"
#include "orchestrator/command.h"

namespace sdm::orchestrator {
namespace {

class InspectCommand final : public Command {
 public:
  const char* name() const override { return "inspect"; }
  const char* summary() const override {
    return "Describe a .h5ad, 10x .h5, .loom or scDrugMap .tsv[.gz] file: shape, X encoding, columns; exits 1 "
           "naming what is wrong when a reading command would refuse it";
  }
  void configure(CLI::App& app) override {
    app.add_option("file", file_, "The data file")->required();
    app.add_flag("--json", json_, "Print JSON (keys as in CONTRACTS §3, and `problems`: a list, empty for a sound file)");
  }
  int run(const RunContext&) override {
    const FileInfo info = inspect_file(file_);
    // a structural problem is the file's, not inspect's: the description still prints, the exit status says it
    const int status = info.problems.empty() ? 0 : 1;
    for (const auto& p : info.problems) std::cerr << "sdm inspect: " << file_ << ": " << p << "\n";
    if (json_) {
      std::cout << to_json(info).dump(2) << std::endl;
      return status;
    }
    std::printf("%s\n  format      %s (encoding %s)\n  shape       %lld cells x %lld genes\n", file_.c_str(),
                info.format.c_str(), info.encoding_version.value_or("-").c_str(), static_cast<long long>(info.n_obs),
                static_cast<long long>(info.n_vars));
    std::printf("  X           %s, %s, %lld nonzeros\n", info.x_encoding.c_str(), info.x_dtype.value_or("-").c_str(),
                static_cast<long long>(info.nnz));
    if (!info.layers.empty()) {
      std::printf("  layers     ");
      for (const auto& l : info.layers) std::printf(" %s", l.c_str());
      std::printf("\n");
    }
    auto print_columns = [](const char* title, const std::vector<ColumnInfo>& cols) {
      std::printf("  %s (%zu)\n", title, cols.size());
      for (const auto& c : cols) {
        std::printf("    %-24s %s", c.name.c_str(), c.type.c_str());
        if (!c.categories.empty()) {
          std::printf(" [");
          for (std::size_t i = 0; i < c.categories.size() && i < 8; ++i)
            std::printf("%s%s", i ? ", " : "", c.categories[i].c_str());
          if (c.categories.size() > 8) std::printf(", ... %zu total", c.categories.size());
          std::printf("]");
        }
        std::printf("\n");
      }
    };
    print_columns("obs columns", info.obs_columns);
    print_columns("var columns", info.var_columns);
    std::printf("  problems    %s\n", status ? std::to_string(info.problems.size()).c_str() : "none");
    return status;
  }

 private:
  std::string file_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_inspect_command() { return std::make_unique<InspectCommand>(); }

}  // namespace sdm::orchestrator
