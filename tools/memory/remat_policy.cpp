// remat_policy.cpp: the fixed plans, and choosing the rematerialization
// schedule and edge chunking for a memory budget (see remat_policy.h).
#include "tools/memory/remat_policy.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "autograd/precision.h"
#include "runtime/allocator.h"
#include "runtime/communicator.h"
#include "tools/memory/chain.h"
#include "tools/usage_error.h"

namespace gc {

namespace {

Chain measure(const AutoPlanRequest& o, const model::GraphCastGeometry& geometry, int edge_chunks) {
  CachingAllocator& meta = allocator_for(Device::meta);
  const int64_t saved_limit = meta.limit();
  meta.set_limit(0);
  Chain chain;
  if (o.target != Device::meta) set_meta_target(o.target);
  {
    model::GraphCastConfig c = o.config(edge_chunks);
    model::GraphCastNet net(c, Device::meta, o.seed);
    std::unique_ptr<Communicator> comm;
    if (o.shard && o.shard->ranks > 1) comm = make_meta_communicator(o.rank, o.ranks);
    model::DeviceGeometry g = model::upload_geometry(geometry, c, Device::meta, o.shard, comm.get());
    chain = measure_chain(net, g);
    // The measured stages made the weights' compute-dtype copies (bf16/f16); they
    // belong to no later dry run, whose own step makes them again.
    release_compute_copies();
  }
  meta.set_limit(saved_limit);
  meta.empty_cache();
  return chain;
}

// The planner's form of a plan: plain items cover one stage, checkpoint items
// always spell out their recomputation.
std::vector<model::StagePlan> normalized(const std::vector<model::StagePlan>& plan) {
  std::vector<model::StagePlan> out;
  for (const model::StagePlan& item : plan) {
    if (!item.checkpoint) {
      for (int s = item.first_stage; s <= item.last_stage; ++s) out.push_back({s, s, false, {}});
      continue;
    }
    model::StagePlan c = item;
    c.inner = item.inner.empty() ? normalized({{item.first_stage, item.last_stage, false, {}}}) : normalized(item.inner);
    out.push_back(c);
  }
  return out;
}

}  // namespace

RematPlan fixed_remat_plan(const std::string& policy, int layers, int edge_chunks) {
  RematPlan plan;
  plan.edge_chunks = edge_chunks;
  if (policy == "none") plan.stages = model::plan_none(layers);
  else if (policy == "all") plan.stages = model::plan_all(layers);
  else if (policy.rfind("every:", 0) == 0) plan.stages = model::plan_every(layers, std::stoi(policy.substr(6)));
  else throw UsageError("--remat " + policy + " is not a fixed policy");
  return plan;
}

RematPlan plan_auto(const AutoPlanRequest& o, const model::GraphCastGeometry& geometry, const DryRun& dry_run,
                    bool verbose) {
  const int64_t budget = o.budget;
  if (budget <= 0) throw UsageError("--remat auto needs --mem-budget SIZE");
  std::vector<int> candidates = {1, 2, 4, 8, 16, 32};
  if (o.edge_chunks > 1) candidates = {o.edge_chunks};
  const model::Graph& g2m = o.shard ? o.shard->g2m.graph : geometry.g2m;
  const model::Graph& m2g = o.shard ? o.shard->m2g.graph : geometry.m2g;
  const int64_t max_chunks = std::min(model::edge_blocks_for(g2m.num_edges() * o.batch, g2m.num_receivers * o.batch),
                                      model::edge_blocks_for(m2g.num_edges() * o.batch, m2g.num_receivers * o.batch));
  RematPlan best;
  double best_cost = std::numeric_limits<double>::infinity();
  double baseline_cost = 0;
  int64_t smallest_estimate = std::numeric_limits<int64_t>::max();
  int smallest_chunks = 1;
  if (verbose) std::fprintf(stderr, "remat auto: budget %s\n", format_bytes(budget).c_str());
  for (int chunks : candidates) {
    if (chunks > max_chunks) break;
    std::string chunk_line;  // the best fitting plan of this chunk count, printed when verbose
    double chunk_cost = std::numeric_limits<double>::infinity();
    const Chain chain = measure(o, geometry, chunks);
    if (baseline_cost == 0) baseline_cost = no_remat_cost(chain);
    // Bytes outside the chain (parameters, optimizer state, gradients, inputs,
    // graphs, allocator rounding): the exact step peak minus the chain's model
    // of it, both for the all-checkpointed plan.
    RematPlan all_plan;
    all_plan.stages = normalized(model::plan_all(o.layers));
    all_plan.edge_chunks = chunks;
    const DryRunResult all = dry_run(0, all_plan);
    const int64_t fixed = all.stats.peak_reserved - simulate_plan_peak(chain, all_plan.stages);
    // The smallest peak actually reached in a dry run (every stage checkpointed):
    // a verified figure for the error message, unlike the chain model's estimate.
    if (all.fits && all.stats.peak_reserved < smallest_estimate) {
      smallest_estimate = all.stats.peak_reserved;
      smallest_chunks = chunks;
    }
    // The chain model misses the exact peak by a little either way, so the
    // solver's budget is searched: tightened by each overshoot until a plan fits,
    // then bisected between the loosest budget known to fit and the tightest known
    // to overshoot (a plan's cost only falls as its budget grows), a few dry runs
    // more for the fastest plan that fits.
    int64_t chain_budget = budget - fixed;
    int64_t fits_at = -1, overshoots_at = -1;
    for (int attempt = 0; attempt < 14 && chain_budget > 0; ++attempt) {
      const RematSolution solution = solve_remat(chain, chain_budget);
      if (!solution.feasible) break;
      RematPlan candidate;
      candidate.stages = solution.plan;
      candidate.edge_chunks = chunks;
      const DryRunResult dr = dry_run(0, candidate);
      const bool fits = dr.fits && dr.stats.peak_reserved <= budget;
      if (fits) {
        fits_at = chain_budget;
        const double cost = plan_cost(chain, solution.plan);
        if (cost < chunk_cost) {
          chunk_cost = cost;
          char line[160];
          std::snprintf(line, sizeof line, "%s reserved (%s allocated), recompute +%.1f%%: ",
                        format_bytes(dr.stats.peak_reserved).c_str(), format_bytes(dr.stats.peak_allocated).c_str(),
                        100.0 * (cost / baseline_cost - 1.0));
          chunk_line = line + describe_plan(chain, solution.plan);
        }
        if (cost < best_cost) {
          best_cost = cost;
          best.stages = solution.plan;
          best.edge_chunks = chunks;
          best.description = describe_plan(chain, solution.plan);
          best.budget = budget;
          best.predicted_peak_allocated = dr.stats.peak_allocated;
          best.predicted_peak_reserved = dr.stats.peak_reserved;
          best.predicted_overhead = cost / baseline_cost - 1.0;
        }
        if (overshoots_at < 0) break;  // the first budget fits: no looser one to try
      } else {
        overshoots_at = chain_budget;
      }
      if (fits_at < 0) {
        const int64_t overshoot = dr.stats.peak_reserved - budget;
        chain_budget -= std::max<int64_t>(overshoot, solution.slot_bytes);
        continue;
      }
      // Bisect until the two budgets are within 1% of the step's budget.
      if (overshoots_at - fits_at <= std::max<int64_t>(solution.slot_bytes, budget / 100)) break;
      chain_budget = fits_at + (overshoots_at - fits_at) / 2;
    }
    if (verbose && !chunk_line.empty())
      std::fprintf(stderr, "  edge chunks %2d: peak %s\n", chunks, chunk_line.c_str());
    if (best_cost < std::numeric_limits<double>::infinity() && best.predicted_overhead <= 1e-9) break;
  }
  if (best.stages.empty() && smallest_estimate == std::numeric_limits<int64_t>::max())
    throw UsageError("--remat auto: no edge chunk count could be tried (--edge-chunks " + std::to_string(o.edge_chunks) +
                     " is more than this graph's " + std::to_string(max_chunks) + " edge blocks)");
  if (best.stages.empty()) {
    throw UsageError("--mem-budget " + format_bytes(budget) + " is too small for this configuration: the smallest "
                     "peak reached in dry runs is " + format_bytes(smallest_estimate) + " (" +
                     std::to_string(smallest_estimate) + " B, every stage checkpointed, --edge-chunks " +
                     std::to_string(smallest_chunks) + "), so the smallest budget is at most that" + o.advice);
  }
  if (verbose)
    std::fprintf(stderr, "remat auto: chose %d edge chunk(s), predicted peak %s reserved / %s allocated, recompute +%.1f%%\n",
                 best.edge_chunks, format_bytes(best.predicted_peak_reserved).c_str(),
                 format_bytes(best.predicted_peak_allocated).c_str(), 100.0 * best.predicted_overhead);
  return best;
}

}  // namespace gc
