#include "cluster/environment.h"

#include <unistd.h>

#include <cstdlib>

namespace sdm::cluster {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::optional<int> launcher_local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"}) {
    if (const char* v = std::getenv(var)) {
      char* end = nullptr;
      const long r = std::strtol(v, &end, 10);
      if (end != v && *end == '\0' && r >= 0) return static_cast<int>(r);
    }
  }
  return std::nullopt;
}

std::optional<std::string> cuda_visible_devices() {
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) return std::string(v);
  return std::nullopt;
}

int gpu_for_local_rank(int local_rank, int visible_gpus) {
  if (visible_gpus <= 0) return -1;
  return ((local_rank % visible_gpus) + visible_gpus) % visible_gpus;
}

}  // namespace sdm::cluster
