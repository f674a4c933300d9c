// profile.h: where the time of a step goes, and what its kernels cost, by op
// family (gemm, elementwise, gather, ...) and by module (forward, backward,
// recompute, optimizer): the time counterpart of the allocator's categories.
//
// Every kernel entry point (kernels/*.cpp) and every tensor copy opens one
// OpScope naming its family and handing in the modelled cost of what it
// launches on the cuda device (kernels/traffic.h). Two things are recorded:
//   - time, only while profiling is on (profile_enable): on cpu two clock reads
//     per op; on cuda a pair of CUDA events per op, read back only by
//     profile_collect (one host synchronization per collect, none per op).
//     Off, an OpScope costs one branch. Nested scopes (a collective that casts)
//     count their time once, under the outermost.
//   - the modelled cost (FLOPs, bytes read + written, launches, host
//     synchronizations), always, for ops on cuda and on meta (a dry run stands
//     for the cuda kernels): a few integer operations per op.
// The module is set by ProfilePhase scopes (the trainer's forward, backward and
// optimizer; the tape's backward and recompute work); ops outside any are
// "other". Single-threaded: ops are launched from the main thread only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "runtime/device.h"

namespace gc {

enum class OpFamily : unsigned char {
  gemm,         // matmuls (cuBLAS or the cpu GEMM) and their bias epilogue
  elementwise,  // add, mul, scale, fill, SiLU
  gather,       // row gathers and their backward (group sums of edges into nodes)
  segment_sum,  // sums of edge rows into node rows and their backward (broadcast)
  layernorm,
  loss,
  optimizer,    // the AdamW update
  reduce,       // whole-tensor sums, row sums, sums of squares (gradient norm)
  copy_cast,    // copies between and within devices, zero fills, dtype casts, column concat/split
  index_check,  // range checks of graph indices (read back to the host on cuda)
  communication,
};
constexpr int kNumOpFamilies = 11;
const char* op_family_name(OpFamily family);

enum class Phase : unsigned char { other, forward, backward, recompute, optimizer };
constexpr int kNumPhases = 5;
const char* phase_name(Phase phase);

// What peak an op's FLOPs run at on a GPU (the roofline's compute side).
enum class FlopKind : unsigned char { vector, gemm_f32, gemm_16bit, gemm_f64 };

// The modelled cost of one op on the cuda device: what its kernels do, as
// kernels/cuda reads and writes memory (kernels/traffic.h computes it).
struct OpCost {
  double flops = 0;
  double bytes = 0;        // read + written in device memory
  int64_t launches = 0;    // kernels, cuBLAS calls, memcpy and memset calls
  int64_t host_syncs = 0;  // calls after which the host waits for the device (blocking copies)
  FlopKind kind = FlopKind::vector;
  // Of `bytes`, those of a memory-bound pass that runs after the main kernel
  // (the GEMM's bias epilogue): the roofline adds its time instead of overlapping it.
  double serial_bytes = 0;
};

struct CostTotals {
  double flops = 0, bytes = 0;
  int64_t launches = 0, host_syncs = 0;
  double roofline_ms = 0;  // sum over ops of max(flops / peak, bytes / bandwidth) at the rates set
  CostTotals& operator+=(const CostTotals& o) {
    flops += o.flops, bytes += o.bytes, launches += o.launches, host_syncs += o.host_syncs;
    roofline_ms += o.roofline_ms;
    return *this;
  }
};

struct TimeCell {
  double ms = 0;
  int64_t calls = 0;
};

// One op's figures, all its calls together (the name is the kernel entry point's:
// linear_forward, layernorm_backward, ...).
struct OpStats {
  OpFamily family = OpFamily::elementwise;
  TimeCell time;    // while profiling; an op nested in another counts under the outer one
  CostTotals cost;  // modelled, on cuda and meta
};

// One profile: times (while profiling) and modelled costs, by module and family,
// and by op.
struct Profile {
  std::array<std::array<TimeCell, kNumOpFamilies>, kNumPhases> time{};
  std::array<std::array<CostTotals, kNumOpFamilies>, kNumPhases> cost{};
  std::map<std::string, OpStats, std::less<>> ops;
  Device device = Device::cpu;  // where the timed ops ran
  bool timed = false;           // profiling was on
  TimeCell total_time() const;
  TimeCell family_time(OpFamily family) const;
  TimeCell phase_time(Phase phase) const;
  CostTotals total_cost() const;
  Profile& operator+=(const Profile& o);
};

// The peak rates the roofline estimate uses (0: no estimate). FLOP/s per kind
// and memory bytes/s.
struct RooflineRates {
  double vector_flops = 0, gemm_f32_flops = 0, gemm_16bit_flops = 0, gemm_f64_flops = 0, bandwidth = 0;
  bool set() const { return bandwidth > 0; }
};
void set_roofline_rates(const RooflineRates& rates);
const RooflineRates& roofline_rates();

// Turns timing on or off (the modelled costs are always counted).
void profile_enable(bool on);
bool profile_enabled();
// Everything recorded since the last reset: waits for the recorded cuda events
// (when there are any) and reads them. The phase of ops still open is not lost.
Profile profile_collect();
void profile_reset();

// Told when an op opens and closes (the trace draws op slices with it); only
// for the outermost scope, and only while profiling. Main thread only.
using OpListener = void (*)(bool enter, OpFamily family, const char* name);
void set_op_listener(OpListener listener);

// The module the ops inside it count under.
class ProfilePhase {
 public:
  explicit ProfilePhase(Phase phase);
  ~ProfilePhase();
  ProfilePhase(const ProfilePhase&) = delete;
  ProfilePhase& operator=(const ProfilePhase&) = delete;
  static Phase current();

 private:
  Phase saved_;
};

// One op: its family, its name (a string literal), the device it runs on, and
// its modelled cost on the cuda device (counted when device is cuda or meta).
class OpScope {
 public:
  OpScope(OpFamily family, const char* name, Device device, const OpCost& cost = OpCost());
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  int timing_;  // 0: not timed; 1: host clock; 2: cuda events
  bool entered_ = false;  // counted in the nesting depth
  OpFamily family_;
  Phase phase_;
  int64_t start_ns_ = 0;
  int event_ = -1;
  const char* name_ = nullptr;
};

// The modelled cost of a copy of `bytes` between devices, as device_copy and
// Tensor::item do it on cuda (a meta side stands for cuda). Counted like an op.
OpCost copy_cost(Device dst, Device src, double bytes);
// A zero fill of `bytes` on the device (one cudaMemset).
OpCost zero_fill_cost(double bytes);

}  // namespace gc
