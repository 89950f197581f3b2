#pragma once
// One registry for the `sdm` subcommands. A subcommand binds its options into a CLI11 sub-app and runs
// with the process context; it is listed in make_commands() only once it works end to end.
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace sdm::orchestrator {

struct GlobalOptions {
  std::string log_level = "info";
  std::string log_dir;
};

struct RunContext {
  GlobalOptions global;
  int rank = 0;
  int size = 1;
  MPI_Comm world = MPI_COMM_NULL;  ///< MPI_COMM_WORLD when the command needs MPI, else null
};

class Command {
 public:
  virtual ~Command() = default;
  virtual const char* name() const = 0;
  virtual const char* summary() const = 0;
  /// Declares this command's options on its CLI11 sub-app.
  virtual void configure(CLI::App& app) = 0;
  /// Whether MPI must be initialised before run() (commands that work under mpirun/srun).
  virtual bool needs_mpi() const { return false; }
  /// Returns the process exit code.
  virtual int run(const RunContext& context) = 0;
};

/// Every subcommand, in the order `sdm --help` lists them.
std::vector<std::unique_ptr<Command>> make_commands();

}  // namespace sdm::orchestrator
