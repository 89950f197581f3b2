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

/// The GPU a rank uses: node-local rank mod the GPUs it can see (CUDA numbers the devices CUDA_VISIBLE_DEVICES
/// leaves visible from 0), so ranks spread over a node's GPUs and share them round-robin when there are more
/// ranks; -1 without GPUs.
int gpu_for_local_rank(int local_rank, int visible_gpus);

}  // namespace sdm::cluster
