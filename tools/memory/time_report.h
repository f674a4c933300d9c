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

// Op by op (the kernels' entry points: linear_forward, layernorm_backward, ...),
// from `sum` over `steps` steps, per step: measured time and calls (when timed),
// the modelled GFLOP, GB and roofline time on the cuda device (when modelled,
// roofline with the rates set), and measured / roofline: where a GPU falls
// short of its model. Sorted by measured time, else by modelled roofline time,
// else by GB; at most `limit` rows (the rest summed in one line).
std::string op_table(const Profile& sum, int steps, size_t limit = 40);
// The same as JSON: [{"op", "family", "ms", "calls", "gflop", "gb", "launches",
// "roofline_ms"}], per step (ms and calls only when timed).
json::Value op_json(const Profile& sum, int steps);

}  // namespace gc
