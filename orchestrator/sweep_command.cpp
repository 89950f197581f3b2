#include <CLI/CLI.hpp>

#include "orchestrator/command.h"
#include "orchestrator/sweep.h"

namespace sdm::orchestrator {
namespace {

class SweepCommand final : public Command {
 public:
  const char* name() const override { return "sweep"; }
  const char* summary() const override {
    return "Run a sweep spec under mpirun: rank 0 schedules, the other ranks run cells; resumable";
  }
  void configure(CLI::App& app) override {
    app.add_option("spec", options_.spec, "Sweep spec (YAML, see jobs/schema/sweep-v1.json)")->required();
    app.add_flag("--dry-run", options_.dry_run, "Print `cells: N` and the table of cells, run nothing");
    app.add_flag("--json", options_.json, "With --dry-run: print the cells as JSON");
    app.add_option("--only", options_.only, "Run only cells matching key=value[,key=value...] (model, strategy, "
                                            "protocol, split, fold, test_group, seed, cell_id prefix)");
    app.add_flag("--resume", options_.resume, "Skip cells whose records are already committed");
    app.add_flag("--rerun-failed", options_.rerun_failed, "Also run again the cells whose records say failed");
    app.add_flag("--force-unlock", options_.force_unlock, "Break a stale store lock left by a crashed sweep");
    app.add_option("--progress-every", options_.progress_every_s, "Seconds between progress lines")->capture_default_str();
    app.add_option("--threads", options_.threads, "Compute threads per rank")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--drain-grace", options_.drain_grace_s,
                   "After SIGUSR1 (or SIGTERM with SDM_DRAIN_ON_TERM=1): seconds running cells get to finish")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--time-left", options_.time_left_s,
                   "Seconds this run may use: cells that would not finish in time are not started; exit 75 to resume")
        ->check(CLI::NonNegativeNumber);
  }
  bool needs_mpi() const override { return true; }
  int run(const RunContext& context) override { return run_sweep(options_, context.world); }

 private:
  SweepOptions options_;
};

}  // namespace

std::unique_ptr<Command> make_sweep_command() { return std::make_unique<SweepCommand>(); }

}  // namespace sdm::orchestrator
