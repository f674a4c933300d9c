// profile.cpp: the op profiler and the modelled-cost counters (profile.h).
//
// Timing on cuda records a pair of events per op on the one stream gc uses; the
// events are pooled and read only in profile_collect, so a profiled step has the
// host synchronizations of an unprofiled one plus one per collect.
#include "runtime/profile.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifdef GC_CUDA
#include <cuda_runtime_api.h>

#include "runtime/cuda_check.h"
#endif

namespace gc {

const char* op_family_name(OpFamily family) {
  switch (family) {
    case OpFamily::gemm: return "gemm";
    case OpFamily::elementwise: return "elementwise";
    case OpFamily::gather: return "gather";
    case OpFamily::segment_sum: return "segment-sum";
    case OpFamily::layernorm: return "layernorm";
    case OpFamily::loss: return "loss";
    case OpFamily::optimizer: return "optimizer";
    case OpFamily::reduce: return "reduce";
    case OpFamily::copy_cast: return "copy/cast";
    case OpFamily::index_check: return "index-check";
    case OpFamily::communication: return "communication";
  }
  return "?";
}

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::other: return "other";
    case Phase::forward: return "forward";
    case Phase::backward: return "backward";
    case Phase::recompute: return "recompute";
    case Phase::optimizer: return "optimizer";
  }
  return "?";
}

TimeCell Profile::total_time() const {
  TimeCell t;
  for (const auto& row : time)
    for (const TimeCell& c : row) t.ms += c.ms, t.calls += c.calls;
  return t;
}

TimeCell Profile::family_time(OpFamily family) const {
  TimeCell t;
  for (const auto& row : time) {
    const TimeCell& c = row[static_cast<size_t>(family)];
    t.ms += c.ms, t.calls += c.calls;
  }
  return t;
}

TimeCell Profile::phase_time(Phase phase) const {
  TimeCell t;
  for (const TimeCell& c : time[static_cast<size_t>(phase)]) t.ms += c.ms, t.calls += c.calls;
  return t;
}

CostTotals Profile::total_cost() const {
  CostTotals t;
  for (const auto& row : cost)
    for (const CostTotals& c : row) t += c;
  return t;
}

Profile& Profile::operator+=(const Profile& o) {
  for (int p = 0; p < kNumPhases; ++p)
    for (int f = 0; f < kNumOpFamilies; ++f) {
      time[p][f].ms += o.time[p][f].ms;
      time[p][f].calls += o.time[p][f].calls;
      cost[p][f] += o.cost[p][f];
    }
  for (const auto& [name, stats] : o.ops) {
    OpStats& mine = ops.try_emplace(name, OpStats{stats.family, {}, {}}).first->second;
    mine.time.ms += stats.time.ms;
    mine.time.calls += stats.time.calls;
    mine.cost += stats.cost;
  }
  timed = timed || o.timed;
  device = o.device;
  return *this;
}

namespace {

struct Recorder {
  bool enabled = false;
  std::thread::id thread;  // the thread that turned timing on: the only one timed
  int depth = 0;  // open OpScopes (time counts under the outermost)
  Profile profile;
  RooflineRates rates;
  OpListener listener = nullptr;
#ifdef GC_CUDA
  struct EventPair {
    cudaEvent_t start = nullptr, stop = nullptr;
  };
  struct Pending {
    int event;
    Phase phase;
    OpFamily family;
    const char* name;
  };
  std::vector<EventPair> events;  // the pool; [0, used) hold this collect's records
  size_t used = 0;
  std::vector<Pending> pending;
#endif
};
Recorder g;
thread_local Phase t_phase = Phase::other;

// The figures of the op named `name` in the profile being recorded.
OpStats& op_stats(const char* name, OpFamily family) {
  auto it = g.profile.ops.find(std::string_view(name));
  if (it == g.profile.ops.end()) it = g.profile.ops.emplace(name, OpStats{family, {}, {}}).first;
  return it->second;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double roofline_ms_of(const OpCost& c) {
  const RooflineRates& r = g.rates;
  if (!r.set()) return 0;
  double peak = r.vector_flops;
  switch (c.kind) {
    case FlopKind::vector: peak = r.vector_flops; break;
    case FlopKind::gemm_f32: peak = r.gemm_f32_flops; break;
    case FlopKind::gemm_16bit: peak = r.gemm_16bit_flops; break;
    case FlopKind::gemm_f64: peak = r.gemm_f64_flops; break;
  }
  const double compute_s = peak > 0 ? c.flops / peak : 0;
  return (std::max(compute_s, (c.bytes - c.serial_bytes) / r.bandwidth) + c.serial_bytes / r.bandwidth) * 1e3;
}

#ifdef GC_CUDA
int record_start_event() {
  if (g.used == g.events.size()) {
    Recorder::EventPair pair;
    GC_CUDA_CHECK(cudaEventCreate(&pair.start));
    GC_CUDA_CHECK(cudaEventCreate(&pair.stop));
    g.events.push_back(pair);
  }
  const int index = static_cast<int>(g.used++);
  GC_CUDA_CHECK(cudaEventRecord(g.events[static_cast<size_t>(index)].start, /*default stream*/ 0));
  return index;
}
#endif

}  // namespace

void set_roofline_rates(const RooflineRates& rates) { g.rates = rates; }
const RooflineRates& roofline_rates() { return g.rates; }

void profile_enable(bool on) {
  g.enabled = on;
  g.thread = std::this_thread::get_id();
}
bool profile_enabled() { return g.enabled; }

void set_op_listener(OpListener listener) { g.listener = listener; }

Profile profile_collect() {
#ifdef GC_CUDA
  if (!g.pending.empty()) {
    // Stream order: the last stop event completes after every other one.
    GC_CUDA_CHECK(cudaEventSynchronize(g.events[static_cast<size_t>(g.pending.back().event)].stop));
    for (const Recorder::Pending& p : g.pending) {
      float ms = 0;
      const Recorder::EventPair& pair = g.events[static_cast<size_t>(p.event)];
      GC_CUDA_CHECK(cudaEventElapsedTime(&ms, pair.start, pair.stop));
      TimeCell& cell = g.profile.time[static_cast<size_t>(p.phase)][static_cast<size_t>(p.family)];
      cell.ms += ms;
      cell.calls += 1;
      TimeCell& op = op_stats(p.name, p.family).time;
      op.ms += ms;
      op.calls += 1;
    }
    g.pending.clear();
    g.used = 0;
  }
#endif
  g.profile.timed = g.enabled;
  return g.profile;
}

void profile_reset() {
#ifdef GC_CUDA
  g.pending.clear();
  g.used = 0;
#endif
  const Device device = g.profile.device;
  g.profile = Profile();
  g.profile.device = device;
}

ProfilePhase::ProfilePhase(Phase phase) : saved_(t_phase) { t_phase = phase; }
ProfilePhase::~ProfilePhase() { t_phase = saved_; }
Phase ProfilePhase::current() { return t_phase; }

OpScope::OpScope(OpFamily family, const char* name, Device device, const OpCost& cost)
    : timing_(0), family_(family), phase_(t_phase), name_(name) {
  if (device != Device::cpu && (cost.launches > 0 || cost.bytes > 0 || cost.flops > 0)) {
    CostTotals one;
    one.flops = cost.flops;
    one.bytes = cost.bytes;
    one.launches = cost.launches;
    one.host_syncs = cost.host_syncs;
    one.roofline_ms = roofline_ms_of(cost);
    g.profile.cost[static_cast<size_t>(phase_)][static_cast<size_t>(family)] += one;
    op_stats(name, family).cost += one;
  }
  if (!g.enabled || std::this_thread::get_id() != g.thread) return;  // copies made by worker threads are not timed
  entered_ = true;
  if (g.depth++ > 0 || device == Device::meta) return;
  g.profile.device = device;
  if (g.listener) g.listener(true, family, name);
#ifdef GC_CUDA
  if (device == Device::cuda) {
    event_ = record_start_event();
    timing_ = 2;
    return;
  }
#endif
  start_ns_ = now_ns();
  timing_ = 1;
}

OpScope::~OpScope() {
  if (!entered_) return;
  --g.depth;
  if (timing_ == 0) return;
  if (timing_ == 1) {
    TimeCell& cell = g.profile.time[static_cast<size_t>(phase_)][static_cast<size_t>(family_)];
    const double ms = static_cast<double>(now_ns() - start_ns_) * 1e-6;
    cell.ms += ms;
    cell.calls += 1;
    TimeCell& op = op_stats(name_, family_).time;
    op.ms += ms;
    op.calls += 1;
  }
#ifdef GC_CUDA
  if (timing_ == 2) {
    // A destructor must not throw: a failed record drops this op's time.
    if (cudaEventRecord(g.events[static_cast<size_t>(event_)].stop, /*default stream*/ 0) == cudaSuccess)
      g.pending.push_back({event_, phase_, family_, name_});
    else
      cudaGetLastError();
  }
#endif
  if (g.listener) g.listener(false, family_, nullptr);
}

OpCost copy_cost(Device dst, Device src, double bytes) {
  OpCost c;
  if (bytes <= 0) return c;
  const bool dst_host = dst == Device::cpu, src_host = src == Device::cpu;
  if (dst_host && src_host) return c;  // not a device operation
  c.launches = 1;
  // A device-to-device copy reads and writes device memory; a copy with the host
  // moves the bytes over the bus once, and cudaMemcpy with pageable host memory
  // returns only when it is done: the host waits.
  c.bytes = dst_host || src_host ? bytes : 2 * bytes;
  c.host_syncs = dst_host || src_host ? 1 : 0;
  return c;
}

OpCost zero_fill_cost(double bytes) {
  OpCost c;
  if (bytes <= 0) return c;
  c.launches = 1;
  c.bytes = bytes;
  return c;
}

}  // namespace gc
