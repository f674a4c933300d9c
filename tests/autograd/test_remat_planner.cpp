// test_remat_planner.cpp: the rotor dynamic program against hand-walked tiny
// chains, against brute force over every nested plan (random chains, n <= 6,
// with and without temporaries), the smallest-budget search, and a
// GraphCast-shaped chain against the fixed every:K policies.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>

#include "autograd/remat_planner.h"

using namespace gc;

namespace {

using Plan = std::vector<RematPlanItem>;

RematPlanItem tape(int stage) { return {stage, stage, false, {}}; }
RematPlanItem checkpoint(int first, int last, Plan inner) { return {first, last, true, std::move(inner)}; }

bool same_plan(const Plan& a, const Plan& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first_stage != b[i].first_stage || a[i].last_stage != b[i].last_stage ||
        a[i].checkpoint != b[i].checkpoint || !same_plan(a[i].inner, b[i].inner))
      return false;
  return true;
}

// Every plan the program may choose for stages first..last (0-based): the
// last item records; a checkpointed range carries any plan of its own range.
std::vector<Plan> all_plans(int first, int last) {
  std::vector<Plan> plans;
  if (first == last) return {{tape(first)}};
  for (const Plan& rest : all_plans(first + 1, last)) {
    Plan plan{tape(first)};
    plan.insert(plan.end(), rest.begin(), rest.end());
    plans.push_back(plan);
  }
  for (int end = first; end < last; ++end)
    for (const Plan& inner : all_plans(first, end))
      for (const Plan& rest : all_plans(end + 1, last)) {
        Plan plan{checkpoint(first, end, inner)};
        plan.insert(plan.end(), rest.begin(), rest.end());
        plans.push_back(plan);
      }
  return plans;
}

ChainStage stage(const char* name, double forward, double backward, int64_t output, int64_t tape_size) {
  ChainStage s;
  s.name = name;
  s.forward_cost = forward;
  s.backward_cost = backward;
  s.output_bytes = output;
  s.tape_bytes = tape_size;
  return s;
}

// Sizes log-uniform over three decades so that a few buffers dominate.
Chain random_chain(std::mt19937_64& rng, int stages, bool temporaries) {
  std::uniform_real_distribution<double> exponent(0.0, 3.0), cost(0.5, 10.0);
  auto size = [&] { return static_cast<int64_t>(std::pow(10.0, exponent(rng))); };
  Chain chain;
  chain.input_bytes = size();
  chain.input_needs_gradient = rng() % 2 == 0;
  for (int i = 0; i < stages; ++i) {
    const int64_t output = size();
    ChainStage s = stage("s", cost(rng), cost(rng), output, output + (rng() % 3 == 0 ? 0 : size()));
    s.name += std::to_string(i);
    if (temporaries) {
      s.forward_temp_bytes = rng() % 2 == 0 ? 0 : size();
      s.backward_temp_bytes = rng() % 2 == 0 ? 0 : size();
    }
    chain.stages.push_back(s);
  }
  return chain;
}

// Three stages A, B, C: input 1 byte without gradient, outputs 1, tapes 2,
// u_f = 1, 2, 4 and u_b = 1: no-remat cost 10. Walking the six plans buffer by
// buffer (start: a0 + delta3 = 2):
//   [A, B, C]                    peak 9 (B_C: a0 d3 tA tB tC + d2)   cost 10
//   [ckpt A{A}, B, C]            peak 8 (B_C: a0 d3 a1 tB tC + d2)   cost 11
//   [A, ckpt B{B}, C]            peak 8                               cost 12
//   [ckpt A..B{A, B}, C]         peak 7 (inner B_B: a0 d2 tA tB + d1) cost 13
//   [ckpt A{A}, ckpt B{B}, C]    peak 7 (B_C: a0 a1 a2 d3 tC + d2)   cost 13
//   [ckpt A..B{ckpt A{A}, B}, C] peak 6 (B_C: a0 a2 d3 tC + d2)      cost 14
Chain three_stage_chain() {
  Chain chain;
  chain.input_bytes = 1;
  chain.input_needs_gradient = false;
  chain.stages = {stage("A", 1, 1, 1, 2), stage("B", 2, 1, 1, 2), stage("C", 4, 1, 1, 2)};
  return chain;
}

// GraphCast-shaped: a big encoder (edge tapes), 16 processor layers, a big
// decoder, and the loss; sizes in MiB, costs in GFLOP-like units.
Chain graphcast_like_chain() {
  const int64_t mib = int64_t(1) << 20;
  Chain chain;
  chain.input_bytes = 300 * mib;
  chain.input_needs_gradient = false;
  chain.stages.push_back(stage("encoder", 60, 120, 80 * mib, 1500 * mib));
  chain.stages.back().forward_temp_bytes = 200 * mib;
  for (int layer = 0; layer < 16; ++layer) {
    ChainStage s = stage("processor.", 25, 50, 80 * mib, 600 * mib);
    s.name += std::to_string(layer);
    s.forward_temp_bytes = 120 * mib;
    s.backward_temp_bytes = 160 * mib;
    chain.stages.push_back(s);
  }
  chain.stages.push_back(stage("decoder", 60, 120, 150 * mib, 1400 * mib));
  chain.stages.push_back(stage("loss", 1, 1, 4, 150 * mib));
  return chain;
}

// encoder, checkpoint groups of k processor layers (each recomputed recording), decoder, loss.
Plan every_k_plan(const Chain& chain, int k) {
  const int layers = static_cast<int>(chain.stages.size()) - 3;
  Plan plan{tape(0)};
  for (int first = 1; first <= layers; first += k) {
    const int last = std::min(layers, first + k - 1);
    Plan inner;
    for (int i = first; i <= last; ++i) inner.push_back(tape(i));
    plan.push_back(checkpoint(first, last, inner));
  }
  plan.push_back(tape(layers + 1));
  plan.push_back(tape(layers + 2));
  return plan;
}

}  // namespace

TEST(RematPlanner, SingleStageNeedsInputTapeAndBothGradients) {
  // a0 10 + delta1 4 + tape 6 = 20 in forward; backward adds delta0 10: 30.
  Chain chain;
  chain.input_bytes = 10;
  chain.stages = {stage("only", 3, 5, 4, 6)};
  EXPECT_EQ(simulate_plan_peak(chain, no_remat_plan(chain)), 30);
  const RematSolution fits = solve_remat(chain, 30, 30);
  ASSERT_TRUE(fits.feasible);
  EXPECT_EQ(fits.slot_bytes, 1);
  EXPECT_EQ(fits.cost, 8.0);
  EXPECT_TRUE(same_plan(fits.plan, {tape(0)}));
  EXPECT_EQ(fits.simulated_peak_bytes, 30);
  EXPECT_FALSE(solve_remat(chain, 29, 29).feasible);
  EXPECT_EQ(smallest_feasible_budget(chain, 1000), 30);
  chain.input_needs_gradient = false;  // no delta0: the forward's 20 is the peak
  EXPECT_EQ(smallest_feasible_budget(chain, 1000), 20);
}

TEST(RematPlanner, TwoStagesCheckpointTheBigTape) {
  // A: u 1+2, output 4, tape 20; B: u 10+20, output 2, tape 6; input 10, no delta0.
  // [A, B]: a0 10 + d2 2 + tA 20 + tB 6 + d1 4 at B_B = 42, cost 33.
  // [ckpt A{A}, B]: B_B holds a0 d2 a1 tB d1 = 26; recomputing A: a0 d1 tA = 34, cost 34.
  Chain chain;
  chain.input_bytes = 10;
  chain.input_needs_gradient = false;
  chain.stages = {stage("A", 1, 2, 4, 20), stage("B", 10, 20, 2, 6)};
  const Plan keep{tape(0), tape(1)};
  const Plan remat{checkpoint(0, 0, {tape(0)}), tape(1)};
  EXPECT_EQ(simulate_plan_peak(chain, keep), 42);
  EXPECT_EQ(simulate_plan_peak(chain, remat), 34);
  for (int64_t budget : {42, 60}) {
    const RematSolution s = solve_remat(chain, budget, 100);
    ASSERT_TRUE(s.feasible) << budget;
    EXPECT_EQ(s.cost, 33.0);
    EXPECT_TRUE(same_plan(s.plan, keep)) << describe_plan(chain, s.plan);
  }
  for (int64_t budget : {34, 41}) {
    const RematSolution s = solve_remat(chain, budget, 100);
    ASSERT_TRUE(s.feasible) << budget;
    EXPECT_EQ(s.cost, 34.0);
    EXPECT_TRUE(same_plan(s.plan, remat)) << describe_plan(chain, s.plan);
    EXPECT_EQ(s.simulated_peak_bytes, 34);
  }
  EXPECT_FALSE(solve_remat(chain, 33, 100).feasible);
  EXPECT_EQ(smallest_feasible_budget(chain, 100), 34);
}

TEST(RematPlanner, ThreeStagesEveryRegime) {
  const Chain chain = three_stage_chain();
  struct Expected { int64_t budget; double cost; Plan plan; };
  const std::vector<Expected> expected = {
      {9, 10, {tape(0), tape(1), tape(2)}},
      {8, 11, {checkpoint(0, 0, {tape(0)}), tape(1), tape(2)}},
      // A tie at 13 with [ckpt A..B{A, B}, C]: the shorter checkpointed range wins.
      {7, 13, {checkpoint(0, 0, {tape(0)}), checkpoint(1, 1, {tape(1)}), tape(2)}},
      {6, 14, {checkpoint(0, 1, {checkpoint(0, 0, {tape(0)}), tape(1)}), tape(2)}},
  };
  for (const Expected& e : expected) {
    const RematSolution s = solve_remat(chain, e.budget, 50);
    ASSERT_TRUE(s.feasible) << e.budget;
    EXPECT_EQ(s.cost, e.cost) << e.budget;
    EXPECT_TRUE(same_plan(s.plan, e.plan)) << e.budget << ": " << describe_plan(chain, s.plan);
    EXPECT_EQ(s.simulated_peak_bytes, e.budget);
    EXPECT_EQ(plan_cost(chain, s.plan), e.cost);
  }
  EXPECT_FALSE(solve_remat(chain, 5, 50).feasible);
  EXPECT_EQ(smallest_feasible_budget(chain, 50), 6);
  EXPECT_EQ(describe_plan(chain, expected[2].plan), "checkpoint[A]{A}, checkpoint[B]{B}, C");
  EXPECT_EQ(describe_plan(chain, expected[3].plan), "checkpoint[A..B]{checkpoint[A]{A}, B}, C");
  EXPECT_DOUBLE_EQ(recompute_overhead_fraction(chain, expected[3].plan), 0.4);
}

TEST(RematPlanner, UnlimitedBudgetKeepsEveryTape) {
  std::mt19937_64 rng(11);
  for (int n : {1, 2, 7, 20}) {
    const Chain chain = random_chain(rng, n, true);
    const RematSolution s = solve_remat(chain, std::numeric_limits<int64_t>::max() / 4, 500);
    ASSERT_TRUE(s.feasible);
    EXPECT_TRUE(same_plan(s.plan, no_remat_plan(chain))) << describe_plan(chain, s.plan);
    EXPECT_DOUBLE_EQ(s.cost, no_remat_cost(chain));
    EXPECT_EQ(recompute_overhead_fraction(chain, s.plan), 0.0);
  }
}

TEST(RematPlanner, JustBelowNoRematPeakRecomputes) {
  std::mt19937_64 rng(5);
  int recomputed = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const Chain chain = random_chain(rng, 2 + trial % 5, trial % 2 == 1);
    const int64_t no_remat_peak = simulate_plan_peak(chain, no_remat_plan(chain));
    const RematSolution s = solve_remat(chain, no_remat_peak - 1, 1000);
    if (!s.feasible) continue;  // some chains have nothing worth dropping
    ++recomputed;
    EXPECT_LT(s.simulated_peak_bytes, no_remat_peak);
    EXPECT_GT(s.cost, no_remat_cost(chain));
    EXPECT_GT(recompute_overhead_fraction(chain, s.plan), 0.0);
  }
  EXPECT_GE(recomputed, 20);
  const Chain big = graphcast_like_chain();
  const int64_t peak = simulate_plan_peak(big, no_remat_plan(big));
  const RematSolution s = solve_remat(big, peak - 1, 500);
  ASSERT_TRUE(s.feasible);
  EXPECT_GT(s.cost, no_remat_cost(big));
}

TEST(RematPlanner, OptimalAgainstBruteForceOnRandomChains) {
  std::mt19937_64 rng(2024);
  int feasible_cases = 0, infeasible_cases = 0;
  for (int trial = 0; trial < 240; ++trial) {
    const int n = 1 + trial % 6;
    const Chain chain = random_chain(rng, n, trial % 2 == 1);
    const std::vector<Plan> plans = all_plans(0, n - 1);
    int64_t least_peak = std::numeric_limits<int64_t>::max();
    for (const Plan& plan : plans) least_peak = std::min(least_peak, simulate_plan_peak(chain, plan));
    const int64_t no_remat_peak = simulate_plan_peak(chain, no_remat_plan(chain));
    const int slots = std::vector<int>{20, 60, 200, 500}[trial % 4];
    for (double fraction : {0.9, 1.0, 1.03, 0.5, 1.1, 0.4}) {
      const int64_t low = least_peak, high = no_remat_peak;
      const int64_t budget = fraction == 1.1 ? high + high / 10 : static_cast<int64_t>(low + (high - low) * (fraction - 0.5) * 2);
      const RematSolution s = solve_remat(chain, std::max<int64_t>(budget, 1), slots);
      double best = std::numeric_limits<double>::infinity();
      for (const Plan& plan : plans)
        if (simulate_plan_peak(chain, plan, s.slot_bytes) <= s.budget_slots)
          best = std::min(best, plan_cost(chain, plan));
      ASSERT_EQ(s.feasible, best < std::numeric_limits<double>::infinity())
          << "trial " << trial << " budget " << budget;
      if (!s.feasible) {
        ++infeasible_cases;
        continue;
      }
      ++feasible_cases;
      EXPECT_NEAR(s.cost, best, 1e-12 * best) << "trial " << trial << ": " << describe_plan(chain, s.plan);
      EXPECT_LE(simulate_plan_peak(chain, s.plan, s.slot_bytes), s.budget_slots);
      EXPECT_LE(s.simulated_peak_bytes, budget);
      EXPECT_EQ(s.simulated_peak_bytes, simulate_plan_peak(chain, s.plan));
    }
  }
  std::printf("%d feasible and %d infeasible (chain, budget) pairs\n", feasible_cases, infeasible_cases);
  EXPECT_GT(feasible_cases, 500);
  EXPECT_GT(infeasible_cases, 500);
}

TEST(RematPlanner, SmallestFeasibleBudget) {
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 60; ++trial) {
    const int n = 1 + trial % 6;
    const Chain chain = random_chain(rng, n, trial % 2 == 0);
    // Slots finer than any size: slot = 1 byte near the answer, so it is the
    // least byte peak over every plan.
    int64_t least_peak = std::numeric_limits<int64_t>::max();
    for (const Plan& plan : all_plans(0, n - 1))
      least_peak = std::min(least_peak, simulate_plan_peak(chain, plan));
    EXPECT_EQ(smallest_feasible_budget(chain, 100000), least_peak) << trial;
    for (int slots : {10, 50, 500}) {
      const int64_t budget = smallest_feasible_budget(chain, slots);
      EXPECT_GE(budget, least_peak);
      EXPECT_TRUE(solve_remat(chain, budget, slots).feasible) << trial;
      EXPECT_FALSE(solve_remat(chain, budget - 1, slots).feasible) << trial;
      const int64_t one_slot_below = budget - remat_slot_bytes(budget, slots);
      if (one_slot_below > 0) {
        EXPECT_FALSE(solve_remat(chain, one_slot_below, slots).feasible) << trial;
      }
    }
  }
}

TEST(RematPlanner, GraphCastShapedChainBeatsFixedPolicies) {
  const Chain chain = graphcast_like_chain();
  const double mib = 1 << 20;
  const int64_t no_remat_peak = simulate_plan_peak(chain, no_remat_plan(chain));
  const auto start = std::chrono::steady_clock::now();
  const int64_t least = smallest_feasible_budget(chain, 500);
  const double search_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("no remat: peak %.0f MiB, cost %.0f; smallest budget %.0f MiB (search %.1f ms)\n",
              no_remat_peak / mib, no_remat_cost(chain), least / mib, search_ms);
  EXPECT_LT(least, no_remat_peak / 2);
  // At 1.1 x the no-remat peak the slot rounding (a slot per live buffer at
  // most) cannot hide the no-remat plan.
  for (double fraction : {1.1, 1.0, 0.75, 0.5, 0.35}) {
    const int64_t budget = std::max(least, static_cast<int64_t>(no_remat_peak * fraction));
    const RematSolution s = solve_remat(chain, budget, 500);
    ASSERT_TRUE(s.feasible) << fraction;
    EXPECT_LE(s.simulated_peak_bytes, budget);
    std::printf("budget %.0f MiB: peak %.0f MiB, overhead %.1f%%: %s\n", budget / mib,
                s.simulated_peak_bytes / mib, 100 * recompute_overhead_fraction(chain, s.plan),
                describe_plan(chain, s.plan).c_str());
    if (fraction == 1.1) {
      EXPECT_TRUE(same_plan(s.plan, no_remat_plan(chain)));
    }
    // The fixed policies are plans too: none that fits may be faster.
    for (int k = 1; k <= 16; ++k) {
      const Plan fixed = every_k_plan(chain, k);
      if (simulate_plan_peak(chain, fixed, s.slot_bytes) <= s.budget_slots) {
        EXPECT_LE(s.cost, plan_cost(chain, fixed) + 1e-9) << "every:" << k;
      }
    }
  }
  const RematSolution tightest = solve_remat(chain, least, 500);
  ASSERT_TRUE(tightest.feasible);
  std::printf("budget %.0f MiB (smallest): overhead %.1f%%: %s\n", least / mib,
              100 * recompute_overhead_fraction(chain, tightest.plan),
              describe_plan(chain, tightest.plan).c_str());
}

TEST(RematPlanner, RejectsBadInput) {
  Chain chain = three_stage_chain();
  EXPECT_THROW(solve_remat(chain, -1, 10), std::invalid_argument);
  EXPECT_THROW(solve_remat(chain, 10, 0), std::invalid_argument);
  EXPECT_FALSE(solve_remat(chain, 0, 10).feasible);
  EXPECT_THROW(smallest_feasible_budget(chain, 1), std::invalid_argument);  // >= 4 buffers live
  EXPECT_THROW(simulate_plan_peak(chain, {tape(0), tape(2)}), std::invalid_argument);
  EXPECT_THROW(simulate_plan_peak(chain, {tape(0), tape(1)}), std::invalid_argument);
  EXPECT_THROW(simulate_plan_peak(chain, {checkpoint(0, 1, {}), tape(2)}), std::invalid_argument);
  EXPECT_THROW(plan_cost(chain, {RematPlanItem{0, 1, false, {}}, tape(2)}), std::invalid_argument);
  Chain bad = chain;
  bad.stages[1].tape_bytes = 0;  // smaller than its output
  EXPECT_THROW(solve_remat(bad, 100, 10), std::invalid_argument);
  bad = chain;
  bad.stages[0].forward_cost = -1;
  EXPECT_THROW(solve_remat(bad, 100, 10), std::invalid_argument);
  EXPECT_THROW(solve_remat(Chain{}, 100, 10), std::invalid_argument);
}
