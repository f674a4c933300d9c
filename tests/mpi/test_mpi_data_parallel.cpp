// Data parallel across real ranks (mpirun -np 2 and -np 4): each rank trains on
// its share of --batch and the gradients are summed over the ranks, so the loss
// curve equals the one-process run with the whole batch within f32 rounding;
// the ranks' parameters stay bitwise equal (a drifting rank stops the run with
// a clear error); and each rank's peaks equal its dry run (`--ranks P` on meta)
// to the byte.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/communicator.h"
#include "tests/mpi/mpi_util.h"
#include "tests/test_util.h"
#include "tools/train/trainer.h"

namespace gc {
namespace {

using mpi_test::rank_trainer;
using mpi_test::world;

// A tiny demo run of 4 steps on mesh 1.
TrainOptions tiny(const std::vector<std::string>& extra) { return mpi_test::tiny_run(1, 4, "mpi_data_cache", extra); }

void empty_caches() {
  allocator_for(Device::cpu).empty_cache();
  allocator_for(Device::meta).empty_cache();
}

// Uneven shares (the first ranks take one more sample), one and two rollout steps.
class MpiDataParallel : public ::testing::TestWithParam<int> {};

TEST_P(MpiDataParallel, LossCurveEqualsOneProcessWithTheWholeBatch) {
  const int batch = world().size() + 1;
  const std::vector<std::string> flags = {"--batch", std::to_string(batch), "--rollout", std::to_string(GetParam())};
  Trainer one(prepare_run(tiny(flags)));  // every rank computes the one-process curve itself
  one.train();
  std::unique_ptr<Trainer> ranks = rank_trainer(tiny(flags));
  ranks->train();
  ASSERT_EQ(ranks->history().size(), one.history().size());
  // The same sums in other groupings (each rank's rows, then the ranks in order):
  // f32 rounding of the loss and of the gradients of four steps. Measured: 5e-8.
  for (size_t s = 0; s < one.history().size(); ++s) {
    const double a = one.history()[s].loss, b = ranks->history()[s].loss;
    EXPECT_NEAR(b, a, 1e-6 * std::fabs(a)) << "step " << s + 1;
    EXPECT_NEAR(ranks->history()[s].grad_norm, one.history()[s].grad_norm, 1e-5 * one.history()[s].grad_norm)
        << "step " << s + 1;
  }
  // Every rank reports every rank's share and figures.
  ASSERT_EQ(ranks->memory().ranks.size(), static_cast<size_t>(world().size()));
  int samples = 0;
  for (const RankSummary& r : ranks->memory().ranks) {
    samples += r.batch;
    EXPECT_GT(r.bytes_sent, 0);
    EXPECT_GT(r.peak_allocated, 0);
  }
  EXPECT_EQ(samples, batch);
}

INSTANTIATE_TEST_SUITE_P(Rollout, MpiDataParallel, ::testing::Values(1, 2));

TEST(MpiDataParallelMemory, EveryRanksPeaksEqualItsDryRunToTheByte) {
  const std::vector<std::string> flags = {"--batch", std::to_string(2 * world().size() + 1), "--bucket-mb", "1"};
  empty_caches();
  std::unique_ptr<Trainer> real = rank_trainer(tiny(flags));
  real->train();
  const AllocatorStats real_stats = real->memory().stats;
  real.reset();
  empty_caches();
  // The dry run of this rank, as `gc_train --device meta --ranks P` makes it.
  std::unique_ptr<Communicator> meta;
  std::unique_ptr<Trainer> dry = mpi_test::dry_rank_trainer(tiny(flags), meta);
  dry->train();
  EXPECT_EQ(dry->memory().stats.peak_allocated, real_stats.peak_allocated);
  EXPECT_EQ(dry->memory().stats.peak_reserved, real_stats.peak_reserved);
  EXPECT_EQ(dry->memory().stats.at_peak, real_stats.at_peak);
  EXPECT_EQ(dry->memory().stats.category_peak[static_cast<size_t>(Category::communication)],
            real_stats.category_peak[static_cast<size_t>(Category::communication)]);
  EXPECT_GT(real_stats.category_peak[static_cast<size_t>(Category::communication)], 0);
}

TEST(MpiDataParallelMemory, ARankWhoseParametersDriftStopsEveryRankClearly) {
  std::unique_ptr<Trainer> t = rank_trainer(tiny({"--batch", std::to_string(world().size())}));
  if (world().rank() == world().size() - 1) {
    Tensor w = t->net().parameters().front().value();
    w.data_as<float>()[0] += 1.0f;
  }
  try {
    t->train();
    ADD_FAILURE() << "the run went on with drifted parameters";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("the parameters of rank " + std::to_string(world().size() - 1) +
                                         " differ from rank 0's"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace gc
