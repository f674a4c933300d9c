// Collectives in one process: the single communicator (a rank alone), the meta
// communicator standing for rank r of P in a dry run (validation, counting,
// the buffers' allocator requests), and the row split. The same operations
// across real ranks run under mpirun in tests/mpi/.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "kernels/collectives.h"
#include "runtime/allocator.h"
#include "runtime/communicator.h"
#include "runtime/device.h"
#include "runtime/memory_scope.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using kernels::all_reduce_sum;
using kernels::balanced_counts;

TEST(Collectives, TheLocalRankComesFromTheLauncher) {
  const char* saved = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  const std::string kept = saved ? saved : "";
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
  EXPECT_EQ(launcher_local_rank(), 3);
  unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  if (!std::getenv("MPI_LOCALRANKID") && !std::getenv("SLURM_LOCALID")) {
    EXPECT_EQ(launcher_local_rank(), 0);
  }
  if (saved) setenv("OMPI_COMM_WORLD_LOCAL_RANK", kept.c_str(), 1);
}

// cpu ranks move tensors through the world itself; cuda ranks take their local
// rank's GPU (modulo the GPU count) and NCCL, or fail saying what is missing.
TEST(CudaRankDevice, EachRankTakesItsGpuAndNcclOrSaysWhatIsMissing) {
  std::unique_ptr<Communicator> single = make_single_communicator();
  EXPECT_EQ(make_device_communicator(Device::cpu, *single), nullptr);
  EXPECT_EQ(make_device_communicator(Device::meta, *single), nullptr);
  if (!cuda_available()) {
    EXPECT_THROW(cuda_select_device(0), std::runtime_error);
    EXPECT_THROW(make_device_communicator(Device::cuda, *single), std::runtime_error);
    return;
  }
  EXPECT_EQ(cuda_select_device(0), 0);
  const int last = cuda_select_device(-1);  // the GPU count less one
  EXPECT_GE(last, 0);
  EXPECT_EQ(cuda_select_device(last + 1), 0);
  try {
    std::unique_ptr<Communicator> nccl = make_device_communicator(Device::cuda, *single);
    ASSERT_NE(nccl, nullptr);
    EXPECT_STREQ(nccl->backend(), "nccl");
    EXPECT_EQ(nccl->size(), 1);
  } catch (const std::runtime_error& e) {
    EXPECT_FALSE(built_with_nccl()) << e.what();
    EXPECT_NE(std::string(e.what()).find("NCCL"), std::string::npos) << e.what();
  }
}

TEST(Collectives, BalancedCountsSplitEvenlyWithTheFirstRanksTakingTheRest) {
  const std::vector<int64_t> ten_over_four = {3, 3, 2, 2}, two_over_four = {1, 1, 0, 0}, none = {0, 0, 0};
  EXPECT_EQ(balanced_counts(10, 4), ten_over_four);
  EXPECT_EQ(balanced_counts(2, 4), two_over_four);
  EXPECT_EQ(balanced_counts(0, 3), none);
  EXPECT_THROW(balanced_counts(5, 0), std::invalid_argument);
}

TEST(Collectives, ASingleRankAllReduceLeavesTheTensorBitwise) {
  auto comm = make_single_communicator();
  EXPECT_EQ(comm->size(), 1);
  EXPECT_STREQ(comm->backend(), "single");
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor t = test::random_tensor({5, 3}, d, 7);
    const std::vector<double> before = t.to_doubles();
    all_reduce_sum(*comm, t);
    EXPECT_EQ(t.to_doubles(), before) << dtype_name(d);
  }
}

TEST(Collectives, ASingleRankExchangeCopiesAndCountsNothingSent) {
  auto comm = make_single_communicator();
  Tensor send = test::random_tensor({4, 2}, DType::f32, 3);
  Tensor recv = Tensor::zeros({4, 2}, DType::f32);
  comm->all_to_all(send, {4}, recv, {4});
  EXPECT_EQ(recv.to_doubles(), send.to_doubles());
  Tensor gathered = Tensor::zeros({4, 2}, DType::f32);
  comm->all_gather(send, gathered, {4});
  EXPECT_EQ(gathered.to_doubles(), send.to_doubles());
  EXPECT_EQ(comm->stats().calls, 2);
  EXPECT_EQ(comm->stats().bytes_sent, 0);
  EXPECT_EQ(comm->stats().bytes_received, 0);
}

TEST(Collectives, ExchangesRefuseMismatchedOperandsClearly) {
  auto comm = make_single_communicator();
  Tensor send = Tensor::zeros({4, 2}, DType::f32);
  Tensor wide = Tensor::zeros({4, 3}, DType::f32);
  Tensor other = Tensor::zeros({4, 2}, DType::f64);
  EXPECT_THROW(comm->all_to_all(send, {4}, wide, {4}), std::invalid_argument);
  EXPECT_THROW(comm->all_to_all(send, {4}, other, {4}), std::invalid_argument);
  EXPECT_THROW(comm->all_to_all(send, {3}, send, {4}), std::invalid_argument);
  EXPECT_THROW(comm->all_to_all(send, {4, 0}, send, {4, 0}), std::invalid_argument);
  EXPECT_THROW(comm->all_gather(send, send, {5}), std::invalid_argument);
  Tensor ints = Tensor::zeros({4}, DType::i32);
  EXPECT_THROW(all_reduce_sum(*comm, ints), std::invalid_argument);
  EXPECT_THROW(make_meta_communicator(4, 4), std::invalid_argument);
}

// Rank 1 of 3 in a dry run: nothing moves, the counts are those of the real
// exchange, and the buffers are allocator tensors of category communication:
// the received pieces [P, chunk] of the dtype, the chunk, and for bf16 the sum in
// f32 before it is rounded.
TEST(Collectives, AMetaRankRequestsTheBuffersOfTheRealExchange) {
  test::MetaTargetGuard target(Device::cpu);
  CachingAllocator& meta = allocator_for(Device::meta);
  for (DType d : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(d));
    auto comm = make_meta_communicator(1, 3);
    Tensor t = Tensor::empty({10, 1}, d, Device::meta);  // chunks 4, 3, 3: rank 1 holds 3
    meta.reset_peak();
    const int64_t base = meta.stats().category_allocated[static_cast<size_t>(Category::communication)];
    meta.set_trace(true);
    meta.clear_trace();
    all_reduce_sum(*comm, t);
    meta.set_trace(false);
    std::vector<int64_t> requested;
    for (const AllocEvent& e : meta.trace())
      if (e.kind == AllocEventKind::alloc) {
        requested.push_back(e.bytes);
        EXPECT_EQ(e.category, Category::communication);
      }
    const int64_t size = static_cast<int64_t>(dtype_size(d));
    std::vector<int64_t> expected = {3 * size, 9 * size};  // the chunk, the received pieces
    if (d == DType::bf16) expected.push_back(3 * 4);       // the f32 sum
    ASSERT_EQ(requested.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_LE(expected[i], requested[i]) << i;  // rounded to blocks
    EXPECT_EQ(meta.stats().category_allocated[static_cast<size_t>(Category::communication)], base);
    // scatter: sends chunk 0 (4) and chunk 2 (3), receives 3 from each; gather: the reverse
    EXPECT_EQ(comm->stats().bytes_sent, (4 + 3 + 2 * 3) * size);
    EXPECT_EQ(comm->stats().bytes_received, (2 * 3 + 4 + 3) * size);
  }
}

}  // namespace
}  // namespace gc
