// The multi-process tests' main: every rank runs every test (the collectives
// need all of them); only rank 0 prints, and the exit status is the ranks'
// worst, so mpirun fails when any rank fails.
#include <gtest/gtest.h>

#include "runtime/communicator.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  gc::Communicator& world = gc::world_communicator();
  if (world.rank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int status = RUN_ALL_TESTS();
  // Every rank's status reaches every rank: the worst one is the result.
  gc::Tensor mine = gc::Tensor::from_doubles({static_cast<double>(status)}, {1, 1}, gc::DType::f64);
  gc::Tensor all = gc::Tensor::empty({world.size(), 1}, gc::DType::f64);
  world.all_gather(mine, all, std::vector<int64_t>(static_cast<size_t>(world.size()), 1));
  int worst = 0;
  for (double s : all.to_doubles()) worst = std::max(worst, static_cast<int>(s));
  if (world.rank() == 0 && worst != status) std::fprintf(stderr, "gc_mpi_tests: another rank failed\n");
  return worst;
}
