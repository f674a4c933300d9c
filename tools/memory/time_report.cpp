// time_report.cpp: the time table and the modelled-cost table (time_report.h).
#include "tools/memory/time_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace gc {

namespace {

std::string pad(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }
std::string lpad(const std::string& s, size_t width) { return s.size() >= width ? s : std::string(width - s.size(), ' ') + s; }

std::string fixed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent(double part, double whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

// 1234567 -> "1,234,567".
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

// A per-step mean: decimals that keep about four significant figures.
std::string ms_text(double ms) { return fixed(ms, ms >= 100 ? 1 : ms >= 1 ? 2 : 3); }

struct Row {
  std::string name;
  TimeCell cell;
};

void time_rows(std::ostringstream& o, const char* heading, std::vector<Row> rows, int steps, double step_ms) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.cell.ms > b.cell.ms; });
  o << "  " << pad(heading, 16) << lpad("ms/step", 11) << lpad("share", 8) << lpad("calls/step", 12) << "\n";
  for (const Row& r : rows) {
    if (r.cell.calls == 0) continue;
    const double ms = r.cell.ms / steps;
    o << "  " << pad(r.name, 16) << lpad(ms_text(ms), 11) << lpad(percent(ms, step_ms), 8)
      << lpad(grouped((r.cell.calls + steps / 2) / steps), 12) << "\n";
  }
}

}  // namespace

std::string time_table(const Profile& sum, int steps, double wall_ms) {
  std::ostringstream o;
  if (steps <= 0 || !sum.timed) {
    o << "time: no step was profiled (--profile times every op)\n";
    return o.str();
  }
  const double step_ms = wall_ms / steps;
  const TimeCell ops = sum.total_time();
  const double ops_ms = ops.ms / steps;
  const bool cuda = sum.device == Device::cuda;
  o << "time on " << device_name(sum.device) << ": " << ms_text(step_ms) << " ms a step (mean of " << steps
    << (steps == 1 ? " step" : " steps") << "), " << ms_text(ops_ms) << " ms of it in " << grouped(ops.calls / steps)
    << " ops" << (cuda ? " (GPU time between CUDA events around each op)" : "") << "\n";
  std::vector<Row> families;
  for (int f = 0; f < kNumOpFamilies; ++f)
    families.push_back({op_family_name(static_cast<OpFamily>(f)), sum.family_time(static_cast<OpFamily>(f))});
  time_rows(o, "op family", families, steps, step_ms);
  const double outside = step_ms - ops_ms;
  o << "  " << pad("outside ops", 16) << lpad(ms_text(outside), 11) << lpad(percent(outside, step_ms), 8)
    << "   (" << (cuda ? "the host's launches and waits, and GPU idle time between ops"
                       : "host work between ops: the tape, the allocator, the step's glue")
    << ")\n";
  std::vector<Row> modules;
  for (int p = 0; p < kNumPhases; ++p)
    modules.push_back({phase_name(static_cast<Phase>(p)), sum.phase_time(static_cast<Phase>(p))});
  time_rows(o, "module", modules, steps, step_ms);
  return o.str();
}

json::Value time_json(const Profile& sum, int steps, double wall_ms) {
  json::Value t = json::Value::object();
  const double n = std::max(1, steps);
  t["device"] = device_name(sum.device);
  t["steps"] = steps;
  t["step_ms"] = wall_ms / n;
  t["ops_ms"] = sum.total_time().ms / n;
  t["outside_ops_ms"] = (wall_ms - sum.total_time().ms) / n;
  json::Value families = json::Value::object();
  for (int f = 0; f < kNumOpFamilies; ++f) {
    const TimeCell c = sum.family_time(static_cast<OpFamily>(f));
    json::Value v = json::Value::object();
    v["ms"] = c.ms / n;
    v["calls"] = static_cast<double>(c.calls) / n;
    families[op_family_name(static_cast<OpFamily>(f))] = v;
  }
  t["by_family"] = families;
  json::Value modules = json::Value::object();
  for (int p = 0; p < kNumPhases; ++p) {
    const TimeCell c = sum.phase_time(static_cast<Phase>(p));
    json::Value v = json::Value::object();
    v["ms"] = c.ms / n;
    v["calls"] = static_cast<double>(c.calls) / n;
    modules[phase_name(static_cast<Phase>(p))] = v;
  }
  t["by_module"] = modules;
  return t;
}

namespace {

CostTotals family_cost(const Profile& p, int family) {
  CostTotals c;
  for (int phase = 0; phase < kNumPhases; ++phase) c += p.cost[static_cast<size_t>(phase)][static_cast<size_t>(family)];
  return c;
}

json::Value cost_json(const CostTotals& c, bool with_roofline) {
  json::Value v = json::Value::object();
  v["flops"] = c.flops;
  v["bytes"] = c.bytes;
  v["launches"] = c.launches;
  v["host_syncs"] = c.host_syncs;
  if (with_roofline) v["roofline_ms"] = c.roofline_ms;
  return v;
}

}  // namespace

std::string traffic_table(const Profile& step, const std::string& card) {
  std::ostringstream o;
  const CostTotals total = step.total_cost();
  const bool roofline = roofline_rates().set();
  o << "modelled cost of a step on a cuda device: " << fixed(total.flops * 1e-12, 2) << " TFLOP, "
    << fixed(total.bytes * 1e-9, 1) << " GB read + written, " << grouped(total.launches) << " launches, "
    << grouped(total.host_syncs) << " host synchronizations";
  if (roofline) o << "; roofline on " << card << ": " << ms_text(total.roofline_ms) << " ms";
  o << "\n  " << pad("op family", 16) << lpad("GFLOP", 11) << lpad("GB", 10) << lpad("share", 8)
    << lpad("launches", 10) << lpad("syncs", 8);
  if (roofline) o << lpad("roofline ms", 13);
  o << "\n";
  std::vector<std::pair<int, CostTotals>> rows;
  for (int f = 0; f < kNumOpFamilies; ++f) rows.push_back({f, family_cost(step, f)});
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
  for (const auto& [f, c] : rows) {
    if (c.launches == 0 && c.bytes == 0) continue;
    o << "  " << pad(op_family_name(static_cast<OpFamily>(f)), 16) << lpad(fixed(c.flops * 1e-9, 1), 11)
      << lpad(fixed(c.bytes * 1e-9, 2), 10) << lpad(percent(c.bytes, total.bytes), 8) << lpad(grouped(c.launches), 10)
      << lpad(grouped(c.host_syncs), 8);
    if (roofline) o << lpad(ms_text(c.roofline_ms), 13);
    o << "\n";
  }
  return o.str();
}

json::Value traffic_json(const Profile& step, const std::string& card) {
  const bool roofline = roofline_rates().set();
  json::Value t = cost_json(step.total_cost(), roofline);
  if (roofline) t["card"] = card;
  json::Value families = json::Value::object();
  for (int f = 0; f < kNumOpFamilies; ++f)
    families[op_family_name(static_cast<OpFamily>(f))] = cost_json(family_cost(step, f), roofline);
  t["by_family"] = families;
  return t;
}


namespace {
struct OpRow {
  std::string name;
  const OpStats* stats;
};
std::vector<OpRow> sorted_ops(const Profile& sum) {
  std::vector<OpRow> rows;
  for (const auto& [name, stats] : sum.ops)
    if (stats.time.calls > 0 || stats.cost.launches > 0 || stats.cost.bytes > 0) rows.push_back({name, &stats});
  std::stable_sort(rows.begin(), rows.end(), [](const OpRow& a, const OpRow& b) {
    if (a.stats->time.ms != b.stats->time.ms) return a.stats->time.ms > b.stats->time.ms;
    if (a.stats->cost.roofline_ms != b.stats->cost.roofline_ms)
      return a.stats->cost.roofline_ms > b.stats->cost.roofline_ms;
    return a.stats->cost.bytes > b.stats->cost.bytes;
  });
  return rows;
}
}  // namespace

std::string op_table(const Profile& sum, int steps, size_t limit) {
  std::ostringstream o;
  if (steps <= 0 || sum.ops.empty()) {
    o << "ops: none recorded\n";
    return o.str();
  }
  const bool timed = sum.timed;
  bool modelled = false, roofline = false;
  for (const auto& entry : sum.ops) {
    modelled = modelled || entry.second.cost.launches > 0 || entry.second.cost.bytes > 0;
    roofline = roofline || entry.second.cost.roofline_ms > 0;
  }
  o << "by op (per step";
  if (timed) o << "; time measured on " << device_name(sum.device);
  if (modelled) o << "; GFLOP, GB and launches modelled for the cuda device";
  o << ")\n  " << pad("op", 34) << pad("family", 13);
  if (timed) o << lpad("ms/step", 10) << lpad("calls", 8);
  if (modelled) o << lpad("GFLOP", 10) << lpad("GB", 9) << lpad("launches", 10);
  if (roofline) o << lpad("roofline ms", 13);
  if (timed && roofline) o << lpad("measured/roofline", 19);
  o << "\n";
  const std::vector<OpRow> rows = sorted_ops(sum);
  OpStats rest;
  size_t rest_count = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const OpStats& s = *rows[i].stats;
    if (i >= limit) {
      rest.time.ms += s.time.ms, rest.time.calls += s.time.calls, rest.cost += s.cost;
      ++rest_count;
      continue;
    }
    const double ms = s.time.ms / steps, rms = s.cost.roofline_ms / steps;
    o << "  " << pad(rows[i].name, 34) << pad(op_family_name(s.family), 13);
    if (timed) o << lpad(ms_text(ms), 10) << lpad(grouped((s.time.calls + steps / 2) / steps), 8);
    if (modelled)
      o << lpad(fixed(s.cost.flops / steps * 1e-9, 1), 10) << lpad(fixed(s.cost.bytes / steps * 1e-9, 2), 9)
        << lpad(grouped((s.cost.launches + steps / 2) / steps), 10);
    if (roofline) o << lpad(ms_text(rms), 13);
    // (a ratio to a roofline under a microsecond says nothing: launch overhead alone exceeds it)
    if (timed && roofline) o << lpad(rms >= 1e-3 ? fixed(ms / rms, 1) : std::string("-"), 19);
    o << "\n";
  }
  if (rest_count > 0) {
    o << "  " << pad("(" + std::to_string(rest_count) + " more ops)", 47);
    if (timed) o << lpad(ms_text(rest.time.ms / steps), 10) << lpad(grouped((rest.time.calls + steps / 2) / steps), 8);
    if (modelled)
      o << lpad(fixed(rest.cost.flops / steps * 1e-9, 1), 10) << lpad(fixed(rest.cost.bytes / steps * 1e-9, 2), 9)
        << lpad(grouped((rest.cost.launches + steps / 2) / steps), 10);
    o << "\n";
  }
  return o.str();
}

json::Value op_json(const Profile& sum, int steps) {
  json::Value list = json::Value::array();
  if (steps <= 0) return list;
  for (const OpRow& row : sorted_ops(sum)) {
    const OpStats& s = *row.stats;
    json::Value v = json::Value::object();
    v["op"] = row.name;
    v["family"] = op_family_name(s.family);
    if (sum.timed) {
      v["ms"] = s.time.ms / steps;
      v["calls"] = static_cast<double>(s.time.calls) / steps;
    }
    v["gflop"] = s.cost.flops / steps * 1e-9;
    v["gb"] = s.cost.bytes / steps * 1e-9;
    v["launches"] = static_cast<double>(s.cost.launches) / steps;
    if (s.cost.roofline_ms > 0) v["roofline_ms"] = s.cost.roofline_ms / steps;
    list.push_back(v);
  }
  return list;
}

}  // namespace gc
