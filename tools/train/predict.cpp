// predict.cpp: dry runs of a prepared run, and resolving --remat.
#include "tools/train/predict.h"

#include "tools/memory/remat_policy.h"

#include <cstdio>
#include <memory>
#include <vector>

namespace gc {

DryRunResult dry_run(const RunSetup& setup, int64_t limit, const RematPlan& plan, int steps) {
  RunSetup s = setup;
  TrainOptions& o = s.options;
  // A dry run stands for the device of the run it predicts.
  if (o.device != Device::meta) o.meta_target = o.device;
  o.device = Device::meta;
  o.mem_limit = limit;
  o.quiet = true;
  o.steps = std::max(1, std::min(o.steps, steps));
  o.resume_path.clear();
  o.trace_path.clear();
  o.trace_png.clear();
  o.edge_chunks = plan.edge_chunks;
  s.plan = plan;
  set_meta_target(o.meta_target);
  CachingAllocator& meta = allocator_for(Device::meta);
  const int64_t saved_limit = meta.limit();
  meta.set_limit(0);
  meta.empty_cache();
  // Data parallel: this rank's dry run, gradient buckets included.
  std::unique_ptr<Communicator> rank_comm;
  if (o.ranks > 1) {
    rank_comm = make_meta_communicator(o.rank, o.ranks);
    s.comm = rank_comm.get();
  }
  DryRunResult result;
  try {
    Trainer t(std::move(s));
    t.train();
    result.fits = true;
    result.stats = t.memory().stats;
    result.top_live = t.memory().top_live;
  } catch (const OutOfMemory&) {
    result.fits = false;
    result.stats = meta.stats();
  }
  meta.set_limit(saved_limit);
  meta.empty_cache();
  return result;
}

DryRun dry_runner(const RunSetup& setup) {
  return [&setup](int64_t limit, const RematPlan& plan) { return dry_run(setup, limit, plan); };
}

RematPlan resolve_remat_plan(const RunSetup& setup) {
  const TrainOptions& o = setup.options;
  if (o.remat != "auto") return fixed_remat_plan(o.remat, o.layers, o.edge_chunks);
  AutoPlanRequest request;
  request.budget = o.mem_budget;
  if (request.budget <= 0) throw UsageError("--remat auto needs --mem-budget SIZE");
  request.edge_chunks = o.edge_chunks;
  request.layers = o.layers;
  request.batch = o.batch;
  request.config = [&o](int edge_chunks) { return graphcast_config(o, edge_chunks); };
  request.target = o.device;
  request.seed = o.seed;
  if (o.precision == "fp32") request.advice += "; also consider --precision bf16";
  if (o.batch > 1) request.advice += "; or a smaller --batch with --accum";
  // The planner's dry runs happen before anything of this run is allocated.
  if (!setup.shard) return plan_auto(request, *setup.geometry, dry_runner(setup), !o.quiet);
  // Model parallel: every rank must run the same plan (the halo exchanges are
  // collectives of all ranks and pair up, recomputation included), so all plan
  // for the tightest shard of the first replica, which has the largest share of
  // --batch: the shard whose step without remat peaks highest (ties: the lowest).
  TrainOptions first = o;
  first.batch = (o.global_batch + o.replicas() - 1) / o.replicas();
  first.batch_offset = 0;
  request.batch = first.batch;
  request.config = [first](int edge_chunks) { return graphcast_config(first, edge_chunks); };
  std::vector<RunSetup> shards;
  size_t tightest = 0;
  int64_t tightest_peak = -1;
  for (int q = 0; q < o.model_parallel; ++q) {
    RunSetup s = setup;
    s.options = first;
    s.options.rank = q;
    s.shard = q == o.shard() ? setup.shard
                             : std::make_shared<const model::GeometryShard>(
                                   model::shard_geometry(*setup.geometry, *setup.partition, q));
    const DryRunResult none = dry_run(s, 0, fixed_remat_plan("none", o.layers, 1));
    if (none.stats.peak_reserved > tightest_peak) {
      tightest_peak = none.stats.peak_reserved;
      tightest = shards.size();
    }
    shards.push_back(std::move(s));
  }
  // The plan for one shard may not fit another (their edges differ): every
  // shard's step is dry-run with it, and the plan is made again for the worst,
  // with the budget tightened by its overshoot, until every shard fits.
  AutoPlanRequest shard_request = request;
  for (int attempt = 0;; ++attempt) {
    const RunSetup& tight = shards[tightest];
    shard_request.shard = tight.shard.get();
    shard_request.rank = tight.options.rank;
    shard_request.ranks = o.ranks;
    if (!o.quiet)
      std::fprintf(stderr, "remat auto: --model-parallel %d: planning for shard %d (the highest peak, %s %s)\n",
                   o.model_parallel, static_cast<int>(tightest), format_bytes(tightest_peak).c_str(),
                   attempt == 0 ? "without remat" : "under the last plan");
    RematPlan plan = plan_auto(shard_request, *setup.geometry, dry_runner(tight), !o.quiet);
    size_t worst = tightest;
    int64_t worst_peak = -1, worst_allocated = 0;
    for (size_t q = 0; q < shards.size(); ++q) {
      const DryRunResult r = dry_run(shards[q], 0, plan);
      if (r.stats.peak_reserved > worst_peak) {
        worst_peak = r.stats.peak_reserved;
        worst_allocated = r.stats.peak_allocated;
        worst = q;
      }
    }
    if (worst_peak <= request.budget) {
      plan.predicted_peak_reserved = worst_peak;
      plan.predicted_peak_allocated = worst_allocated;
      if (!o.quiet)
        std::fprintf(stderr, "remat auto: every shard fits; the highest peak is shard %d's, %s reserved\n",
                     static_cast<int>(worst), format_bytes(worst_peak).c_str());
      return plan;
    }
    if (attempt == 4)
      throw UsageError("--remat auto: no plan found in 5 attempts under which every one of the " +
                       std::to_string(o.model_parallel) + " shards fits --mem-budget " + format_bytes(request.budget) +
                       " (shard " + std::to_string(worst) + " peaks at " + format_bytes(worst_peak) +
                       "); give a larger --mem-budget or more shards");
    shard_request.budget -= worst_peak - request.budget;
    tightest = worst;
    tightest_peak = worst_peak;
  }
}

}  // namespace gc
