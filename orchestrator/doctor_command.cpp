#include <CLI/CLI.hpp>

#include "orchestrator/command.h"
#include "orchestrator/doctor.h"

namespace sdm::orchestrator {
namespace {

class DoctorCommand final : public Command {
 public:
  const char* name() const override { return "doctor"; }
  const char* summary() const override {
    return "Check this machine or allocation: ranks, GPUs, BLAS, MPI all-reduce, parallel HDF5 (run under mpirun/srun)";
  }
  void configure(CLI::App& app) override {
    app.add_option("--scratch", options_.scratch,
                   "Directory for the parallel-HDF5 check (shared by all nodes; default $SDM_SCRATCH or the temp dir)");
    app.add_flag("--json", options_.json, "Print the report as JSON");
  }
  bool needs_mpi() const override { return true; }
  int run(const RunContext& context) override { return run_doctor(options_, context.world); }

 private:
  DoctorOptions options_;
};

}  // namespace

std::unique_ptr<Command> make_doctor_command() { return std::make_unique<DoctorCommand>(); }

}  // namespace sdm::orchestrator
