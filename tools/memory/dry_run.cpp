// dry_run.cpp: meta runs of the training step.
#include "tools/memory/dry_run.h"

namespace gc {

DryRunResult dry_run(const TrainOptions& base, const model::GraphCastGeometry& geometry, int64_t limit, int steps,
                     const std::vector<model::StagePlan>* plan, int edge_chunks) {
  TrainOptions o = base;
  // A dry run stands for the device of the run it predicts.
  if (base.device != Device::meta) o.meta_target = base.device;
  o.device = Device::meta;
  o.mem_limit = limit;
  o.quiet = true;
  o.steps = std::max(1, std::min(o.steps, steps));
  o.resume_path.clear();
  o.trace_path.clear();
  o.trace_png.clear();
  CachingAllocator& meta = allocator_for(Device::meta);
  const int64_t saved_limit = meta.limit();
  meta.set_limit(0);
  meta.empty_cache();
  DryRunResult result;
  try {
    Trainer t(o);
    t.use_geometry(geometry);
    if (plan) t.use_plan(*plan, edge_chunks);
    t.setup();
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

int64_t smallest_passing_limit(const TrainOptions& options, const model::GraphCastGeometry& geometry) {
  DryRunResult unlimited = dry_run(options, geometry, 0);
  if (!unlimited.fits) return 0;
  // Reserved bytes above the peak allocated are cache: a limit can squeeze them.
  int64_t hi = unlimited.stats.peak_reserved;
  int64_t lo = unlimited.stats.peak_allocated - 1;
  const int64_t resolution = int64_t(1) << 20;
  while (hi - lo > resolution) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (dry_run(options, geometry, mid).fits) hi = mid;
    else lo = mid;
  }
  return hi;
}

}  // namespace gc
