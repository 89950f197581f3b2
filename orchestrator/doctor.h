#pragma once
// `sdm doctor`: the first thing to run on a new cluster. Each rank reports where it runs and with what
// (host, local rank, GPUs, torch threads, BLAS); then the job checks an MPI all-reduce (exact results,
// bandwidth reported) and a collective parallel-HDF5 write/read in a scratch directory.
#include <mpi.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sdm::orchestrator {

struct DoctorOptions {
  std::string scratch;  ///< directory for the HDF5 check; must be shared by all nodes on multi-node runs
  bool json = false;    ///< print the report as JSON instead of text
};

struct CheckResult {
  std::string name;
  bool pass = false;
  std::string detail;
  nlohmann::json figures = nlohmann::json::object();
};

/// Per-rank facts, gathered on rank 0.
nlohmann::json describe_this_rank(MPI_Comm comm);

/// Exactness and bandwidth of a float32 sum all-reduce of `bytes` per rank, timed over `iterations`.
CheckResult check_allreduce(MPI_Comm comm, std::size_t bytes, int iterations);

/// Collective write of one row per rank into a new file under `scratch`, then a read-back of every row.
CheckResult check_parallel_hdf5(MPI_Comm comm, const std::string& scratch);

/// Whether PMIx may stall each mpirun start on munge: a munge socket that refuses connections (munge installed,
/// munged not running). A rank cannot tell whether its launcher skipped munge (PMIx hands its ranks the security
/// it settled on, e.g. PMIX_MCA_psec=native after munge failed), so the detail says how to avoid the stall.
/// Always passes; `warning` in the figures.
CheckResult check_launch_security(const std::string& munge_socket = "/run/munge/munge.socket.2");

/// Runs everything, prints on rank 0, and returns 0 on every rank iff all checks pass.
int run_doctor(const DoctorOptions& options, MPI_Comm comm);

}  // namespace sdm::orchestrator
