#include "cluster/environment.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace sdm::cluster {

TEST(GpuBinding, LocalRankModVisibleGpus) {
  EXPECT_EQ(gpu_for_local_rank(0, 4), 0);
  EXPECT_EQ(gpu_for_local_rank(3, 4), 3);
  EXPECT_EQ(gpu_for_local_rank(5, 4), 1);  // more ranks than GPUs: round-robin
  EXPECT_EQ(gpu_for_local_rank(2, 1), 0);  // CUDA_VISIBLE_DEVICES=3 leaves one device, numbered 0
  EXPECT_EQ(gpu_for_local_rank(0, 0), -1);
}

TEST(GpuBinding, LocalRankComesFromTheLauncher) {
  ::setenv("SLURM_LOCALID", "6", 1);
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  EXPECT_EQ(launcher_local_rank(), 6);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "2", 1);  // mpirun's own variable wins
  EXPECT_EQ(launcher_local_rank(), 2);
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  ::unsetenv("SLURM_LOCALID");
}

}  // namespace sdm::cluster
