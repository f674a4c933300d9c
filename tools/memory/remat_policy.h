// remat_policy.h: the rematerialization plan that --remat names.
//
// none, every:K and all are fixed plans. auto finds the fastest schedule whose
// training step fits --mem-budget: for each edge chunk count, the network is
// measured as a chain on the meta device (chain.h), the optimal nested
// checkpointing is solved (autograd/remat_planner.h), and the whole step is
// dry-run to get its exact peak; the budget given to the solver is tightened
// until the exact peak fits. The figures printed are those of that final dry
// run, which the real run reproduces to the byte.
#pragma once

#include <functional>
#include <string>

#include "model/graphs.h"
#include "model/partition.h"
#include "tools/memory/dry_run.h"

namespace gc {

// none | all | every:K for `layers` processor layers. Throws UsageError for
// anything else (auto included: it needs plan_auto).
RematPlan fixed_remat_plan(const std::string& policy, int layers, int edge_chunks);

struct AutoPlanRequest {
  int64_t budget = 0;         // reserved bytes the step must fit
  int edge_chunks = 1;        // > 1: only this count is tried; else 1, 2, 4, ..., 32
  int layers = 0;
  int batch = 1;
  // The network for an edge chunk count (measured on meta as a chain).
  std::function<model::GraphCastConfig(int edge_chunks)> config;
  Device target = Device::cuda;  // the device the dry runs stand for
  uint64_t seed = 0;
  std::string advice;         // appended to the message when nothing fits ("; also consider ...")
  // Model parallel: the shard the plan is for (the tightest rank's), measured as
  // rank `rank` of `ranks` (a meta communicator: its halos are counted, not moved).
  const model::GeometryShard* shard = nullptr;
  int rank = 0, ranks = 1;
};

// Throws UsageError when no plan fits, naming the smallest budget that would.
RematPlan plan_auto(const AutoPlanRequest& request, const model::GraphCastGeometry& geometry, const DryRun& dry_run,
                    bool verbose);

}  // namespace gc
