// predict.h: this configuration's training steps as dry runs on the meta
// device, and the rematerialization plan --remat resolves to (auto: chosen by
// tools/memory/remat_policy.h through these dry runs). Both work from a
// prepared run's data and graphs, so no dry run loads or builds them again.
#pragma once

#include "tools/memory/dry_run.h"
#include "tools/train/trainer.h"

namespace gc {

// `steps` training steps of the run on meta under `limit` reserved bytes (0:
// none) with `plan`. A dry run stands for the device of the run it predicts.
DryRunResult dry_run(const RunSetup& setup, int64_t limit, const RematPlan& plan, int steps = 2);

// dry_run of this run as the memory room's DryRun (2 steps).
DryRun dry_runner(const RunSetup& setup);

// The plan that --remat names for this run (setup.plan is not read).
RematPlan resolve_remat_plan(const RunSetup& setup);

}  // namespace gc
