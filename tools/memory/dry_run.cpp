// dry_run.cpp: the bisection for the smallest passing limit.
#include "tools/memory/dry_run.h"

namespace gc {

int64_t smallest_passing_limit(const DryRun& run, const RematPlan& plan) {
  const DryRunResult unlimited = run(0, plan);
  if (!unlimited.fits) return 0;
  // Reserved bytes above the peak allocated are cache: a limit can squeeze them.
  int64_t hi = unlimited.stats.peak_reserved;
  int64_t lo = unlimited.stats.peak_allocated - 1;
  const int64_t resolution = int64_t(1) << 20;
  while (hi - lo > resolution) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (run(mid, plan).fits) hi = mid;
    else lo = mid;
  }
  return hi;
}

}  // namespace gc
