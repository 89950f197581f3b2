// gtest main for tests that run under mpirun: MPI is initialised once, rank 0 prints the usual report,
// other ranks print only their failures (tagged with the rank), and every rank's result decides the exit
// code, so mpirun fails if any rank failed.
#include <gtest/gtest.h>

#include <cstdio>

#include "cluster/mpi.h"

namespace {

class FailuresOnlyPrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailuresOnlyPrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed())
      std::fprintf(stderr, "[r%d] %s:%d: Failure\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  sdm::cluster::MpiSession mpi(&argc, &argv);
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailuresOnlyPrinter(mpi.rank()));
  }
  const int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (mpi.rank() == 0 && any_failed && !failed) std::fprintf(stderr, "another rank reported failures\n");
  return any_failed ? 1 : 0;
}
