// Collectives across real ranks (run under mpirun -np 2 and -np 4; see the
// Makefile's test target): the exchanges move the right rows, the all-reduce
// equals an f64 reference within the dtype's rounding, gives the same bits on
// every rank and in every run, and a dry-run rank (the meta communicator)
// requests exactly the allocator blocks that the real rank requests.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "kernels/collectives.h"
#include "runtime/allocator.h"
#include "runtime/communicator.h"
#include "runtime/memory_scope.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using kernels::all_reduce_sum;
using kernels::balanced_counts;

Communicator& world() { return world_communicator(); }

// The values rank r contributes (every rank can compute every rank's values).
std::vector<double> values_of(int rank, int64_t n) { return test::random_values(static_cast<size_t>(n), 1000 + rank, 2.0); }

// The bytes of t from every rank, stacked in rank order.
std::vector<std::string> bytes_of_every_rank(const Tensor& t) {
  const int64_t words = static_cast<int64_t>((t.nbytes() + 3) / 4);
  std::vector<int32_t> padded(static_cast<size_t>(words), 0);
  if (t.nbytes()) std::memcpy(padded.data(), t.data(), t.nbytes());
  Tensor mine = Tensor::from_host(padded.data(), {1, words}, DType::i32);
  Tensor all = Tensor::empty({world().size(), words}, DType::i32);
  world().all_gather(mine, all, std::vector<int64_t>(static_cast<size_t>(world().size()), 1));
  std::vector<std::string> out;
  for (int r = 0; r < world().size(); ++r)
    out.emplace_back(static_cast<const char*>(all.data()) + r * words * 4, t.nbytes());
  return out;
}

TEST(MpiCollectives, TheWorldIsTheLaunchersRanksOverMpi) {
  EXPECT_STREQ(world().backend(), "mpi");
  EXPECT_EQ(world().size(), launcher_world_size());
  EXPECT_GE(world().size(), 2);
}

TEST(MpiCollectives, AllToAllDeliversEachRanksRowsForThisRank) {
  const int p = world().size(), me = world().rank();
  // Rank s sends s + d + 1 rows to rank d, each row [s, d, k, 7].
  std::vector<int64_t> send_counts, recv_counts;
  std::vector<double> rows;
  for (int d = 0; d < p; ++d) {
    send_counts.push_back(me + d + 1);
    recv_counts.push_back(d + me + 1);
    for (int k = 0; k < me + d + 1; ++k) rows.insert(rows.end(), {double(me), double(d), double(k), 7.0});
  }
  Tensor send = Tensor::from_doubles(rows, {static_cast<int64_t>(rows.size() / 4), 4}, DType::f32);
  int64_t total = 0;
  for (int64_t c : recv_counts) total += c;
  Tensor recv = Tensor::zeros({total, 4}, DType::f32);
  world().reset_stats();
  world().all_to_all(send, send_counts, recv, recv_counts);
  const std::vector<double> got = recv.to_doubles();
  size_t row = 0;
  for (int s = 0; s < p; ++s)
    for (int k = 0; k < s + me + 1; ++k, ++row) {
      EXPECT_EQ(got[row * 4 + 0], s);
      EXPECT_EQ(got[row * 4 + 1], me);
      EXPECT_EQ(got[row * 4 + 2], k);
    }
  int64_t sent = 0;
  for (int d = 0; d < p; ++d)
    if (d != me) sent += (me + d + 1) * 16;
  EXPECT_EQ(world().stats().bytes_sent, sent);
}

TEST(MpiCollectives, AllGatherStacksUnevenPartsInRankOrder) {
  const int p = world().size(), me = world().rank();
  std::vector<int64_t> counts;
  for (int r = 0; r < p; ++r) counts.push_back(r % 2 == 0 ? 2 : 0);  // some ranks send nothing
  Tensor send = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(counts[static_cast<size_t>(me)]) * 3, me),
                                     {counts[static_cast<size_t>(me)], 3}, DType::f64);
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  Tensor recv = Tensor::zeros({total, 3}, DType::f64);
  world().all_gather(send, recv, counts);
  const std::vector<double> got = recv.to_doubles();
  size_t i = 0;
  for (int r = 0; r < p; ++r)
    for (int64_t k = 0; k < counts[static_cast<size_t>(r)] * 3; ++k) EXPECT_EQ(got[i++], r);
}

class MpiAllReduce : public ::testing::TestWithParam<DType> {};

TEST_P(MpiAllReduce, EqualsTheF64SumWithinRoundingAndTheSameBitsOnEveryRankAndRun) {
  const DType d = GetParam();
  const int p = world().size();
  for (int64_t n : {int64_t(1), int64_t(p - 1), int64_t(7), int64_t(100003)}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    if (n == 0) continue;
    std::vector<double> reference(static_cast<size_t>(n), 0.0);
    for (int r = 0; r < p; ++r) {
      const std::vector<double> v = test::rounded_through(values_of(r, n), d);
      for (size_t i = 0; i < v.size(); ++i) reference[i] += v[i];
    }
    Tensor t = Tensor::from_doubles(values_of(world().rank(), n), {n}, d);
    all_reduce_sum(world(), t);
    EXPECT_TRUE(test::all_close(t.to_doubles(), reference, test::tolerance_for(d, p), "all_reduce_sum"));
    const std::vector<std::string> everywhere = bytes_of_every_rank(t);
    for (int r = 1; r < p; ++r) EXPECT_EQ(everywhere[static_cast<size_t>(r)], everywhere[0]) << "rank " << r;
    Tensor again = Tensor::from_doubles(values_of(world().rank(), n), {n}, d);
    all_reduce_sum(world(), again);
    EXPECT_EQ(0, std::memcmp(again.data(), t.data(), t.nbytes())) << "a second run differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MpiAllReduce, ::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// (bytes, category, label) of every allocation an all-reduce makes on `device`.
struct Request {
  int64_t bytes;
  Category category;
  std::string label;
  bool operator==(const Request& o) const { return bytes == o.bytes && category == o.category && label == o.label; }
};

std::vector<Request> requests_of_all_reduce(Communicator& comm, Device device, DType d, int64_t n) {
  CachingAllocator& a = allocator_for(device);
  Tensor t = device == Device::meta ? Tensor::empty({n}, d, Device::meta)
                                    : Tensor::from_doubles(values_of(comm.rank(), n), {n}, d);
  a.set_trace(true);
  a.clear_trace();
  {
    MemoryScope scope("gradients");
    all_reduce_sum(comm, t);
  }
  a.set_trace(false);
  const std::vector<std::string> labels = a.trace_labels();
  std::vector<Request> out;
  for (const AllocEvent& e : a.trace())
    if (e.kind == AllocEventKind::alloc) out.push_back({e.bytes, e.category, labels[e.label_id]});
  return out;
}

TEST(MpiCollectives, ADryRunRankRequestsExactlyWhatTheRealRankRequests) {
  test::MetaTargetGuard target(Device::cpu);
  for (DType d : {DType::f32, DType::bf16}) {
    world().reset_stats();
    const std::vector<Request> real = requests_of_all_reduce(world(), Device::cpu, d, 1001);
    auto dry = make_meta_communicator(world().rank(), world().size());
    const std::vector<Request> predicted = requests_of_all_reduce(*dry, Device::meta, d, 1001);
    ASSERT_FALSE(real.empty());
    EXPECT_TRUE(real == predicted) << dtype_name(d);
    for (const Request& r : real) {
      EXPECT_EQ(r.category, Category::communication);
      EXPECT_EQ(r.label.rfind("gradients.all_reduce", 0), 0u) << r.label;
    }
    EXPECT_EQ(dry->stats().bytes_sent, world().stats().bytes_sent);
    EXPECT_EQ(dry->stats().bytes_received, world().stats().bytes_received);
    EXPECT_GT(dry->stats().bytes_sent, 0);
  }
}

TEST(MpiCollectives, TheBarrierReturnsOnEveryRank) {
  world().barrier();
  SUCCEED();
}

}  // namespace
}  // namespace gc
