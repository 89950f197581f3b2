// The `sdm` executable: parses the command line, starts MPI for the commands that run under mpirun/srun,
// sets up rank-aware logging and turns errors into one clear message and a non-zero exit.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>

#include "cluster/mpi.h"
#include "common/error.h"
#include "common/logging.h"
#include "orchestrator/command.h"
#include "orchestrator/version.h"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int run_command(sdm::orchestrator::Command& command, sdm::orchestrator::RunContext context, int* argc, char*** argv) {
  std::optional<sdm::cluster::MpiSession> mpi;
  if (command.needs_mpi()) {
    mpi.emplace(argc, argv);
    context.rank = mpi->rank();
    context.size = mpi->size();
    context.world = MPI_COMM_WORLD;
  }
  try {
    sdm::setup_logging({context.rank, context.size, context.global.log_level, context.global.log_dir, false});
    return command.run(context);
  } catch (const std::exception& e) {
    const bool usage = dynamic_cast<const sdm::ConfigError*>(&e) != nullptr;
    std::cerr << "sdm " << command.name() << ": error: " << e.what() << std::endl;
    // Other ranks may be waiting in a collective for this one: end the whole job rather than hang it.
    if (mpi && mpi->size() > 1) MPI_Abort(MPI_COMM_WORLD, usage ? kExitUsage : kExitFailure);
    return usage ? kExitUsage : kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sdm - benchmark single-cell foundation models on drug-response prediction, at HPC scale"};
  app.name("sdm");
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  app.add_flag_callback(
      "--version",
      [] {
        std::cout << sdm::orchestrator::version_report();
        throw CLI::Success();
      },
      "Print sdm, LibTorch, MPI, HDF5, NCCL and BLAS versions");

  sdm::orchestrator::RunContext context;
  app.add_option("--log-level", context.global.log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--log-dir", context.global.log_dir, "Also write one log file per rank into this directory");
  app.require_subcommand(0, 1);

  auto commands = sdm::orchestrator::make_commands();
  for (auto& command : commands) command->configure(*app.add_subcommand(command->name(), command->summary()));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  for (auto& command : commands)
    if (app.got_subcommand(command->name())) return run_command(*command, context, &argc, &argv);

  std::cout << app.help();
  return kExitUsage;
}
