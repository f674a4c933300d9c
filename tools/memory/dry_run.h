// dry_run.h: training steps of a configuration run on the meta device (no data,
// the same allocator requests as the real device), for predictions: the peak of
// a configuration, whether it fits a limit, and the smallest limit that passes.
#pragma once

#include "tools/train/trainer.h"

namespace gc {

struct DryRunResult {
  bool fits = false;
  AllocatorStats stats;        // of the dry run (peaks over its steps)
  std::vector<LiveBlock> top_live;
};

// `steps` training steps of `options` on meta under `limit` reserved bytes
// (0: none). Reuses the host geometry.
// A plan given here replaces the one of --remat (with its edge chunk count).
DryRunResult dry_run(const TrainOptions& options, const model::GraphCastGeometry& geometry, int64_t limit,
                     int steps = 2, const std::vector<model::StagePlan>* plan = nullptr, int edge_chunks = 1);

// The smallest --mem-limit (to 1 MiB) under which the dry run passes; 0 if it
// does not pass even without a limit.
int64_t smallest_passing_limit(const TrainOptions& options, const model::GraphCastGeometry& geometry);

}  // namespace gc
