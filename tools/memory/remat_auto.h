// remat_auto.h: --remat auto. Finds the fastest schedule whose training step
// fits --mem-budget: for each edge chunk count, the network is measured as a
// chain on the meta device, the optimal nested checkpointing is solved
// (autograd/remat_planner.h), and the whole step is dry-run on meta to get its
// exact peak; the budget given to the solver is tightened until the exact peak
// fits. The figures printed are those of that final dry run, which the real run
// reproduces to the byte.
#pragma once

#include <string>
#include <vector>

#include "model/graphcast.h"
#include "tools/train/options.h"

namespace gc {

struct AutoPlan {
  std::vector<model::StagePlan> plan;
  int edge_chunks = 1;
  std::string description;
  int64_t budget = 0;
  int64_t predicted_peak_allocated = 0, predicted_peak_reserved = 0;
  double predicted_overhead = 0;  // recompute FLOPs / FLOPs without remat
};

// Throws UsageError when no plan fits, naming the smallest budget that would.
AutoPlan plan_auto(const TrainOptions& options, const model::GraphCastGeometry& geometry, bool verbose);

}  // namespace gc
