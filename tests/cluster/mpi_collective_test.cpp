#include "cluster/mpi_collective.h"

#include <gtest/gtest.h>

#include "collective_conformance.h"

namespace sdm::cluster {

TEST(MpiCollective, PassesTheCollectiveContract) {
  MpiCollective c(MPI_COMM_WORLD);
  EXPECT_EQ(c.backend(), "mpi");
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  EXPECT_EQ(c.size(), world);
  testing::run_conformance(c);
}

TEST(MpiCollective, WorksOnSubgroups) {
  // Two groups (even / odd world ranks), as data-parallel worker groups will be formed.
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  auto group = MpiComm::split(MPI_COMM_WORLD, rank % 2, rank);
  MpiCollective c(group.get());
  EXPECT_EQ(c.size(), (size + 1 - rank % 2) / 2);
  std::vector<std::int64_t> v{rank};
  c.allreduce(std::span<std::int64_t>(v), ReduceOp::kSum);
  std::int64_t expect = 0;
  for (int r = rank % 2; r < size; r += 2) expect += r;
  EXPECT_EQ(v[0], expect);
  testing::run_conformance(c);
}

TEST(MpiCollective, TrafficIsIsolatedFromTheParentCommunicator) {
  // A point-to-point message pending on the parent must not be consumed by the collective's traffic.
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    GTEST_SKIP() << "needs at least 2 ranks";
  }
  MpiCollective c(MPI_COMM_WORLD);
  int payload = 42, received = 0;
  MPI_Request req = MPI_REQUEST_NULL;
  if (rank == 1) MPI_Isend(&payload, 1, MPI_INT, 0, 7, MPI_COMM_WORLD, &req);
  std::vector<double> v(1000, 1.0);
  c.allreduce(std::span<double>(v), ReduceOp::kSum);
  c.broadcast(std::span<double>(v), 0);
  if (rank == 0) MPI_Recv(&received, 1, MPI_INT, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (rank == 1) MPI_Wait(&req, MPI_STATUS_IGNORE);
  if (rank == 0) {
    EXPECT_EQ(received, 42);
  }
  EXPECT_EQ(v[0], static_cast<double>(size));
}

TEST(MpiSession, ProvidesThreadMultiple) {
  int level = 0;
  MPI_Query_thread(&level);
  EXPECT_EQ(level, MPI_THREAD_MULTIPLE) << "got " << MpiSession::thread_level_name(level);
}

}  // namespace sdm::cluster
