// test_cuda_traffic.cpp: the cost model (kernels/traffic.h) against what the
// cuda backend asks of the device, counted by the simulator (sim_counters.h):
// every kernel, cuBLAS call, memcpy and memset is a launch, every blocking copy
// with the host a host synchronization. For small training steps (fp32, bf16,
// checkpointed, edge-chunked) the model's launches and synchronizations equal the
// simulator's, and a dry run on meta models the same step. Timing the step with
// CUDA events (--profile) adds exactly one synchronization, the read of the events.
//
// --tf32 (kernels::set_tf32): an f32 product rounds its inputs to TF32 only when asked.
//
// Built in every build; the counts run in the simulated one (build-sim) and
// skip elsewhere; the TF32 check runs on any cuda device.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/linear.h"
#include "runtime/profile.h"
#include "tools/train/options.h"
#include "tools/train/trainer.h"

#ifdef GC_CUDA_SIM
#include "sim_counters.h"
#endif

namespace gc {
namespace {

#ifdef GC_CUDA_SIM
TrainOptions small_options(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--preset", "graphcast-small", "--grid", "30", "--mesh", "1", "--latent", "8",
                                   "--layers", "1", "--steps", "2", "--quiet", "--no-eval"};
  args.insert(args.end(), extra.begin(), extra.end());
  TrainOptions o;
  std::string help;
  EXPECT_TRUE(parse_train_options(args, &o, &help));
  return o;
}

// The modelled cost of one step (every step runs the same ops) and the
// simulator's counts for it.
struct StepCounts {
  CostTotals model;
  gcsim::Counters sim;
};

StepCounts counted_step(Trainer& trainer, int step) {
  gcsim::reset_counters();
  trainer.train_step(step);
  return {trainer.last_step_profile().total_cost(), gcsim::counters()};
}

CostTotals dry_run_step(TrainOptions o) {
  o.device = Device::meta;
  o.meta_target = Device::cuda;
  Trainer trainer(prepare_run(o));
  trainer.train_step(0);
  return trainer.last_step_profile().total_cost();
}
#endif

TEST(CudaTraffic, ModelCountsTheLaunchesAndSyncsOfTheCudaBackend) {
#ifndef GC_CUDA_SIM
  GTEST_SKIP() << "needs the simulator's counters (build-sim: make cudasim)";
#else
  for (const std::vector<std::string>& extra : std::vector<std::vector<std::string>>{
           {"--precision", "fp32"}, {"--precision", "bf16"}, {"--edge-chunks", "2", "--remat", "all"}}) {
    std::string what;
    for (const std::string& e : extra) what += e + " ";
    TrainOptions o = small_options(extra);
    o.device = Device::cuda;
    Trainer trainer(prepare_run(o));
    const StepCounts counts = counted_step(trainer, 0);
    EXPECT_GT(counts.sim.kernels, 100u) << what;
    EXPECT_GT(counts.sim.gemms, 10u) << what;
    EXPECT_EQ(static_cast<uint64_t>(counts.model.launches), counts.sim.launches())
        << what << ": kernels " << counts.sim.kernels << ", gemms " << counts.sim.gemms << ", copies "
        << counts.sim.copies << ", memsets " << counts.sim.memsets;
    EXPECT_EQ(static_cast<uint64_t>(counts.model.host_syncs), counts.sim.host_syncs) << what;
    const CostTotals dry = dry_run_step(small_options(extra));
    EXPECT_EQ(dry.launches, counts.model.launches) << what;
    EXPECT_EQ(dry.host_syncs, counts.model.host_syncs) << what;
    EXPECT_DOUBLE_EQ(dry.bytes, counts.model.bytes) << what;
    EXPECT_DOUBLE_EQ(dry.flops, counts.model.flops) << what;
  }
#endif
}

TEST(CudaTraffic, ProfilingWithEventsAddsOneSyncAStep) {
#ifndef GC_CUDA_SIM
  GTEST_SKIP() << "needs the simulator's counters (build-sim: make cudasim)";
#else
  TrainOptions o = small_options({});
  o.device = Device::cuda;
  Trainer trainer(prepare_run(o));
  const StepCounts plain = counted_step(trainer, 0);
  profile_enable(true);
  const StepCounts profiled = counted_step(trainer, 1);
  profile_enable(false);
  EXPECT_EQ(profiled.sim.launches(), plain.sim.launches());
  EXPECT_EQ(profiled.sim.host_syncs, plain.sim.host_syncs + 1);
  const Profile& p = trainer.last_step_profile();
  EXPECT_TRUE(p.timed);
  EXPECT_EQ(p.device, Device::cuda);
  EXPECT_GT(p.family_time(OpFamily::gemm).calls, 0);
  EXPECT_GT(p.phase_time(Phase::backward).calls, 0);
  EXPECT_GT(p.total_time().ms, 0.0);
#endif
}

// 1 + 2^-20 has no TF32 form (10 mantissa bits): a TF32 product of it with 1 gives 1.
// A = fine everywhere, B = 1 in its first row and 0 elsewhere, so C = fine exactly
// in f32; 512 x 512 x 512, a size at which cuBLAS runs tensor cores when it may
// (a tiny product may run a kernel without them, which rounds nothing).
TEST(CudaTf32, F32ProductsRoundTheirInputsOnlyWhenAsked) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  const int64_t m = 512, k = 512, n = 512;
  const float fine = 1.0f + 1.0f / (1 << 20);
  std::vector<double> b_values(static_cast<size_t>(k * n), 0.0);
  for (int64_t j = 0; j < n; ++j) b_values[static_cast<size_t>(j)] = 1.0;
  Tensor a = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(m * k), fine), {m, k}, DType::f32, Device::cuda);
  Tensor b = Tensor::from_doubles(b_values, {k, n}, DType::f32, Device::cuda);
  Tensor c = Tensor::empty({m, n}, DType::f32, Device::cuda);
  Tensor ws = Tensor::empty({static_cast<int64_t>(kernels::gemm_workspace_bytes(Device::cuda, m, n, k) / 4)}, DType::i32,
                            Device::cuda);
  ASSERT_FALSE(kernels::tf32_enabled());  // the default
  kernels::matmul(c, a, false, b, false, 0.0, ws);
  int64_t exact = 0;
  for (double v : c.to_doubles()) exact += v == static_cast<double>(fine);
  EXPECT_EQ(exact, m * n) << "f32 products without --tf32 must not round their inputs";
  kernels::set_tf32(true);
  kernels::matmul(c, a, false, b, false, 0.0, ws);
  kernels::set_tf32(false);
  int64_t rounded = 0;
  for (double v : c.to_doubles()) rounded += v == 1.0;
  EXPECT_EQ(rounded, m * n) << "with --tf32 the inputs round to TF32";
}

}  // namespace
}  // namespace gc
