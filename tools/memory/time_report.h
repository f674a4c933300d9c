// time_report.h: where a step's time goes, and what it costs on a GPU, as text
// for people (beside memory_report.h's memory table) and as the report's
// "time" and "traffic" sections (DESIGN.md "Programs and their contracts").
#pragma once

#include <string>

#include "runtime/profile.h"
#include "tools/io/json.h"

namespace gc {

// A step's measured time by op family and by module (forward, backward,
// recompute, optimizer, other), from `sum` (the profile summed over `steps`
// steps whose wall time adds up to `wall_ms`): per-step means, shares of the
// step's wall time, calls a step, and the time outside any op (host work: the
// tape, the allocator, launch overhead).
std::string time_table(const Profile& sum, int steps, double wall_ms);
// The "time" section: {"device", "steps", "step_ms", "ops_ms", "outside_ops_ms",
// "by_family": {family: {"ms", "calls"}}, "by_module": {module: {"ms", "calls"}}},
// all per step.
json::Value time_json(const Profile& sum, int steps, double wall_ms);

// The modelled cost of one step on the cuda device (`step`: one step's profile)
// by op family: GFLOP, GB read + written, launches, host synchronizations and,
// with a card, the roofline time. `card` names the card ("" for none).
std::string traffic_table(const Profile& step, const std::string& card);
// The "traffic" section: {"flops", "bytes", "launches", "host_syncs",
// "roofline_ms" (with a card), "card", "by_family": {family: {...}}}.
json::Value traffic_json(const Profile& step, const std::string& card);

}  // namespace gc
