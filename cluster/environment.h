#pragma once
// Facts about where this rank runs: host, node-local rank, visible GPUs. Read from the launcher's
// environment (Open MPI, Slurm, MPICH) so they are right under mpirun and srun alike.
#include <optional>
#include <string>

namespace sdm::cluster {

std::string host_name();

/// Node-local rank from OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID or MPI_LOCALRANKID; none if unset.
std::optional<int> launcher_local_rank();

/// CUDA_VISIBLE_DEVICES as set ("" = hide all), or none when unset.
std::optional<std::string> cuda_visible_devices();

}  // namespace sdm::cluster
