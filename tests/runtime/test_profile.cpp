// test_profile.cpp: the op profiler (runtime/profile.h): time counts under the
// op's family and the module open when it started, once for nested ops, only
// while profiling; modelled costs count for cuda and meta ops whether or not
// profiling is on, never for cpu ops; the roofline of an op is the slower of
// its compute and its memory traffic at the rates set.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "runtime/profile.h"

namespace gc {
namespace {

// Profiling on, a clean profile and no roofline rates for the test's duration.
class ProfileGuard {
 public:
  explicit ProfileGuard(bool on) : saved_(profile_enabled()), saved_rates_(roofline_rates()) {
    profile_enable(on);
    profile_reset();
    set_roofline_rates(RooflineRates());
  }
  ~ProfileGuard() {
    profile_enable(saved_);
    profile_reset();
    set_roofline_rates(saved_rates_);
  }

 private:
  bool saved_;
  RooflineRates saved_rates_;
};

void busy_for(std::chrono::microseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST(Profile, TimeCountsUnderTheFamilyAndModuleOfTheOuterOp) {
  ProfileGuard guard(true);
  {
    ProfilePhase phase(Phase::backward);
    const OpScope outer(OpFamily::communication, "all_to_all", Device::cpu);
    busy_for(std::chrono::microseconds(2000));
    const OpScope inner(OpFamily::copy_cast, "cast", Device::cpu);  // nested: no time of its own
    busy_for(std::chrono::microseconds(500));
  }
  {
    ProfilePhase phase(Phase::forward);
    const OpScope op(OpFamily::gemm, "linear_forward", Device::cpu);
    busy_for(std::chrono::microseconds(1000));
  }
  const Profile p = profile_collect();
  EXPECT_TRUE(p.timed);
  EXPECT_EQ(p.total_time().calls, 2);
  EXPECT_EQ(p.family_time(OpFamily::copy_cast).calls, 0);
  const TimeCell comm = p.time[static_cast<size_t>(Phase::backward)][static_cast<size_t>(OpFamily::communication)];
  EXPECT_EQ(comm.calls, 1);
  EXPECT_GE(comm.ms, 2.5);
  const TimeCell gemm = p.time[static_cast<size_t>(Phase::forward)][static_cast<size_t>(OpFamily::gemm)];
  EXPECT_EQ(gemm.calls, 1);
  EXPECT_GE(gemm.ms, 1.0);
  EXPECT_EQ(p.phase_time(Phase::optimizer).calls, 0);
  EXPECT_DOUBLE_EQ(p.total_time().ms, comm.ms + gemm.ms);
}

// Op by op: each name keeps its family, its time (outermost scopes only, like the
// families) and its modelled cost (every scope on cuda or meta); profiles add op by op.
TEST(Profile, OpsKeepTheirOwnTimeAndCost) {
  ProfileGuard guard(true);
  OpCost cost;
  cost.flops = 8, cost.bytes = 64, cost.launches = 1;
  {
    const OpScope outer(OpFamily::gemm, "linear_forward", Device::cpu);
    busy_for(std::chrono::microseconds(1000));
    const OpScope inner(OpFamily::copy_cast, "cast", Device::cpu);  // nested: time under the outer op
  }
  { const OpScope op(OpFamily::gemm, "linear_forward", Device::cpu); }
  { const OpScope op(OpFamily::layernorm, "layernorm_backward", Device::meta, cost); }
  { const OpScope op(OpFamily::layernorm, "layernorm_backward", Device::meta, cost); }
  const Profile p = profile_collect();
  ASSERT_EQ(p.ops.count("linear_forward"), 1u);
  const OpStats& linear = p.ops.at("linear_forward");
  EXPECT_EQ(linear.family, OpFamily::gemm);
  EXPECT_EQ(linear.time.calls, 2);
  EXPECT_GE(linear.time.ms, 1.0);
  EXPECT_DOUBLE_EQ(linear.time.ms, p.family_time(OpFamily::gemm).ms);
  EXPECT_EQ(linear.cost.launches, 0);  // cpu ops cost no GPU work
  EXPECT_TRUE(p.ops.count("cast") == 0 || p.ops.at("cast").time.calls == 0);
  const OpStats& norm = p.ops.at("layernorm_backward");
  EXPECT_EQ(norm.family, OpFamily::layernorm);
  EXPECT_EQ(norm.time.calls, 0);  // meta ops are not timed
  EXPECT_EQ(norm.cost.launches, 2);
  EXPECT_DOUBLE_EQ(norm.cost.bytes, 128);
  EXPECT_DOUBLE_EQ(norm.cost.flops, 16);
  Profile twice = p;
  twice += p;
  EXPECT_EQ(twice.ops.at("linear_forward").time.calls, 4);
  EXPECT_EQ(twice.ops.at("layernorm_backward").cost.launches, 4);
  profile_reset();
  EXPECT_TRUE(profile_collect().ops.empty());
}

TEST(Profile, ModuleScopesNestAndRestore) {
  EXPECT_EQ(ProfilePhase::current(), Phase::other);
  {
    ProfilePhase backward(Phase::backward);
    {
      ProfilePhase recompute(Phase::recompute);
      EXPECT_EQ(ProfilePhase::current(), Phase::recompute);
    }
    EXPECT_EQ(ProfilePhase::current(), Phase::backward);
  }
  EXPECT_EQ(ProfilePhase::current(), Phase::other);
}

TEST(Profile, OffRecordsNoTimeButStillTheModelledCost) {
  ProfileGuard guard(false);
  OpCost cost;
  cost.flops = 10, cost.bytes = 100, cost.launches = 2, cost.host_syncs = 1;
  { const OpScope op(OpFamily::gather, "gather_rows_forward", Device::meta, cost); }
  { const OpScope op(OpFamily::gather, "gather_rows_forward", Device::cpu, cost); }  // a cpu op costs no GPU work
  const Profile p = profile_collect();
  EXPECT_FALSE(p.timed);
  EXPECT_EQ(p.total_time().calls, 0);
  const CostTotals total = p.total_cost();
  EXPECT_EQ(total.flops, 10);
  EXPECT_EQ(total.bytes, 100);
  EXPECT_EQ(total.launches, 2);
  EXPECT_EQ(total.host_syncs, 1);
  profile_reset();
  EXPECT_EQ(profile_collect().total_cost().launches, 0);
}

TEST(Profile, RooflineIsTheSlowerOfComputeAndMemoryPlusSerialPasses) {
  ProfileGuard guard(false);
  RooflineRates rates;
  rates.vector_flops = 1e12, rates.gemm_f32_flops = 2e12, rates.gemm_16bit_flops = 8e12, rates.bandwidth = 1e12;
  set_roofline_rates(rates);
  OpCost gemm;  // compute-bound: 8e12 FLOP at 8e12 FLOP/s = 1 s; 1e9 bytes at 1e12 B/s = 1 ms
  gemm.flops = 8e12, gemm.bytes = 1e9, gemm.kind = FlopKind::gemm_16bit, gemm.launches = 1;
  { const OpScope op(OpFamily::gemm, "linear_forward", Device::meta, gemm); }
  EXPECT_NEAR(profile_collect().total_cost().roofline_ms, 1000.0, 1e-9);
  profile_reset();
  gemm.serial_bytes = 5e8, gemm.bytes += 5e8;  // a bias pass after it adds its own 0.5 ms
  { const OpScope op(OpFamily::gemm, "linear_forward", Device::meta, gemm); }
  EXPECT_NEAR(profile_collect().total_cost().roofline_ms, 1000.5, 1e-9);
  profile_reset();
  OpCost add;  // memory-bound: 3e9 bytes = 3 ms
  add.flops = 1e9, add.bytes = 3e9, add.launches = 1;
  { const OpScope op(OpFamily::elementwise, "add_forward", Device::meta, add); }
  EXPECT_NEAR(profile_collect().total_cost().roofline_ms, 3.0, 1e-12);
}

TEST(Profile, CopyCostsByDirection) {
  const OpCost up = copy_cost(Device::cuda, Device::cpu, 1000);
  EXPECT_EQ(up.launches, 1);
  EXPECT_EQ(up.host_syncs, 1);  // a blocking copy with pageable host memory
  EXPECT_EQ(up.bytes, 1000);
  const OpCost down = copy_cost(Device::cpu, Device::meta, 4);  // meta stands for cuda
  EXPECT_EQ(down.host_syncs, 1);
  const OpCost on_device = copy_cost(Device::cuda, Device::cuda, 1000);
  EXPECT_EQ(on_device.host_syncs, 0);
  EXPECT_EQ(on_device.bytes, 2000);  // read and written
  EXPECT_EQ(copy_cost(Device::cpu, Device::cpu, 1000).launches, 0);
  EXPECT_EQ(copy_cost(Device::cuda, Device::cpu, 0).launches, 0);
  EXPECT_EQ(zero_fill_cost(64).launches, 1);
  EXPECT_EQ(zero_fill_cost(0).launches, 0);
}

}  // namespace
}  // namespace gc
