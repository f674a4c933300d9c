// dry_run.h: what a dry run answers (one configuration's training steps on the
// meta device: no data, the same allocator requests as the real device), and
// the search for the smallest memory limit under which a configuration passes.
//
// This room does not know how to run a training step: the trainer hands it a
// DryRun (tools/train/predict.h), so the prediction code depends on nothing
// above it and a plan is always resolved before the trainer that uses it exists.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/graphcast.h"
#include "runtime/allocator.h"

namespace gc {

// A rematerialization plan for one run: the stages' checkpointing and the edge
// chunk count it was made for. The fixed policies (none, every:K, all) fill
// only those two; --remat auto also says what it chose and what it predicts.
struct RematPlan {
  std::vector<model::StagePlan> stages;
  int edge_chunks = 1;
  // --remat auto only (description empty otherwise)
  std::string description;
  int64_t budget = 0;
  int64_t predicted_peak_allocated = 0, predicted_peak_reserved = 0;
  double predicted_overhead = 0;  // recomputed FLOPs / FLOPs without remat
  bool automatic() const { return !description.empty(); }
};

struct DryRunResult {
  bool fits = false;
  AllocatorStats stats;        // of the dry run (peaks over its steps)
  std::vector<LiveBlock> top_live;
};

// Runs the configuration's training steps on meta under `limit` reserved bytes
// (0: none), with this plan.
using DryRun = std::function<DryRunResult(int64_t limit, const RematPlan& plan)>;

// The smallest limit (to 1 MiB) under which `run` passes with `plan`; 0 if it
// does not pass even without a limit.
int64_t smallest_passing_limit(const DryRun& run, const RematPlan& plan);

}  // namespace gc
