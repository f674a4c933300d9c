// remat_planner.h: optimal rematerialization for a heterogeneous chain
// (Beaumont et al. 2019, "Optimal checkpointing for heterogeneous chains",
// the "rotor" dynamic program), as a pure algorithm on sizes and costs.
//
// Chain model. Stages are indexed 0..n-1 in this API (stage i here is stage
// i+1 of the paper). Boundary activation a(j), j = 0..n: a(0) is the chain
// input, a(j) the output of stage j-1; delta(j) is the gradient of a(j) and has
// the same size. Stage i run *recording* keeps its tape (tape_bytes, which
// includes its output a(i+1) but not its input a(i), which the item before
// holds) until its backward; run *without tape* it keeps only its output. forward_temp_bytes / backward_temp_bytes are transient
// bytes on top of what is live during the stage's forward / backward.
// delta(n) (the loss gradient) is counted as live through the whole step: make
// the loss the last stage so that it is a few bytes.
//
// The invariant that is not obvious: the dynamic program's feasibility is
// exactly the simulator's (simulate_plan_peak) on the same slot-rounded sizes,
// for every plan the program can choose; tests check it by brute force.
// Budgets are discretized into slots of slot_bytes = ceil(budget / slots);
// every size rounds UP to whole slots and the budget DOWN, so a plan the
// program accepts never exceeds the real budget in bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gc {

struct ChainStage {
  std::string name;             // printed by describe_plan, e.g. "processor.3"
  double forward_cost = 0;      // u_f, e.g. FLOPs or ms of one forward run
  double backward_cost = 0;     // u_b
  int64_t output_bytes = 0;     // w: size of the stage's output a(i+1) (and of its gradient)
  int64_t tape_bytes = 0;       // wbar: kept for backward when recording, output included (>= output_bytes)
  int64_t forward_temp_bytes = 0;   // transient peak during forward beyond input and output/tape
  int64_t backward_temp_bytes = 0;  // transient peak during backward beyond delta in/out, tape, input
};

struct Chain {
  int64_t input_bytes = 0;           // size of a(0)
  bool input_needs_gradient = true;  // false: stage 0's backward does not produce delta(0)
  std::vector<ChainStage> stages;
};

// A plan for stages s..t is a sequence of items covering s..t in order.
// checkpoint=false: exactly one stage, run recording, its tape kept until its
// backward. checkpoint=true: stages first..last run without tape in forward
// (only the output of `last` stays, as the next item's input); inside backward
// the range is recomputed following `inner`, a plan for the same range.
// Plans chosen by solve_remat always end with a non-checkpoint item; among
// equal-cost plans they keep the tape first, then checkpoint the shortest range.
struct RematPlanItem {
  int first_stage = 0;
  int last_stage = 0;
  bool checkpoint = false;
  std::vector<RematPlanItem> inner;
};

struct RematSolution {
  bool feasible = false;
  double cost = 0;                    // plan_cost of plan; +infinity when infeasible
  std::vector<RematPlanItem> plan;    // empty when infeasible
  int64_t simulated_peak_bytes = 0;   // simulate_plan_peak(chain, plan), <= budget when feasible
  int64_t slot_bytes = 0;             // discretization used
  int64_t budget_slots = 0;           // floor(budget / slot_bytes)
};

// The fastest plan whose peak (a(0) included) fits budget_bytes with sizes
// rounded up to slots of ceil(budget_bytes / slots). O(n^3 * slots) time,
// O(n^2 * slots) memory (12 bytes per (s, t, m) entry: n = 20, slots = 500
// is about 1.3 MB and a few ms). budget_bytes == 0 is infeasible; negative
// budgets, slots < 1 or a malformed chain throw std::invalid_argument.
RematSolution solve_remat(const Chain& chain, int64_t budget_bytes, int slots = 500);

// The smallest budget_bytes for which solve_remat(chain, budget_bytes, slots)
// is feasible (exact: every smaller budget is infeasible, although the slot
// size changes with the budget). Throws std::invalid_argument when no budget
// is feasible at this slot count (slots below the number of live buffers).
int64_t smallest_feasible_budget(const Chain& chain, int slots = 500);

// Rounding used by solve_remat for a budget: ceil(budget_bytes / slots).
int64_t remat_slot_bytes(int64_t budget_bytes, int slots);

// Every stage recording, no recomputation.
std::vector<RematPlanItem> no_remat_plan(const Chain& chain);

// Sum of u_f over every forward execution (recomputations included) plus
// sum of u_b. Throws std::invalid_argument on a malformed plan.
double plan_cost(const Chain& chain, const std::vector<RematPlanItem>& plan);
// sum u_f + sum u_b: the cost without rematerialization.
double no_remat_cost(const Chain& chain);
// (plan_cost - no_remat_cost) / no_remat_cost; 0 for a chain of zero cost.
double recompute_overhead_fraction(const Chain& chain, const std::vector<RematPlanItem>& plan);

// Peak live memory of executing the plan, a(0) and delta(n) included, walking
// the nested plan buffer by buffer. Every size is rounded up to a multiple of
// unit_bytes and the result is in units (unit_bytes = 1: exact bytes; the
// slot size: what solve_remat compares with budget_slots). Throws
// std::invalid_argument on a malformed plan (gaps, overlaps, empty inner).
int64_t simulate_plan_peak(const Chain& chain, const std::vector<RematPlanItem>& plan,
                           int64_t unit_bytes = 1);

// One line, e.g. "encoder, checkpoint[processor.0..processor.3]{processor.0,
// ...}, decoder": a bare name is a stage run recording.
std::string describe_plan(const Chain& chain, const std::vector<RematPlanItem>& plan);

}  // namespace gc
