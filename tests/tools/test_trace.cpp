// test_trace.cpp: the trace writer. The JSON must parse, carry metadata, slices,
// counters and instants; slices from scopes, the tape and TraceSpan must nest
// exactly; the counters must agree with the allocator at its peak, also after
// coalescing thousands of events; TraceSpan must do nothing outside a trace;
// the timeline PNG must be written on cpu and on meta.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "runtime/allocator.h"
#include "runtime/memory_scope.h"
#include "runtime/profile.h"
#include "runtime/tensor.h"
#include "tests/test_util.h"
#include "tools/io/json.h"
#include "tools/memory/trace.h"

namespace gc {
namespace {

std::string temp_path(const std::string& name) { return test::scratch_root() + "/trace_" + name; }

using test::has_png_signature;
using test::read_file;

// Times come as microseconds with three decimals: nanoseconds, exactly.
int64_t ns_of(const json::Value& v) { return static_cast<int64_t>(std::llround(v.as_double() * 1000.0)); }

struct Slice {
  int64_t begin_ns, end_ns;
  std::string name, category;
};

std::vector<Slice> slices_of(const json::Value& trace) {
  std::vector<Slice> slices;
  for (const json::Value& e : trace.at("traceEvents").as_array()) {
    if (e.at("ph").as_string() != "X") continue;
    const int64_t begin = ns_of(e.at("ts"));
    slices.push_back({begin, begin + ns_of(e.at("dur")), e.at("name").as_string(), e.at("cat").as_string()});
  }
  return slices;
}

// Every slice lies within the one enclosing it or after it: no partial overlap.
void expect_properly_nested(std::vector<Slice> slices) {
  std::stable_sort(slices.begin(), slices.end(), [](const Slice& a, const Slice& b) {
    return a.begin_ns != b.begin_ns ? a.begin_ns < b.begin_ns : a.end_ns > b.end_ns;
  });
  std::vector<Slice> stack;
  for (const Slice& s : slices) {
    ASSERT_LE(s.begin_ns, s.end_ns) << s.name;
    while (!stack.empty() && stack.back().end_ns <= s.begin_ns) stack.pop_back();
    if (!stack.empty()) {
      ASSERT_LE(s.end_ns, stack.back().end_ns) << s.name << " overlaps " << stack.back().name;
    }
    stack.push_back(s);
  }
}

const Slice* find_slice(const std::vector<Slice>& slices, const std::string& name) {
  for (const Slice& s : slices)
    if (s.name == name) return &s;
  return nullptr;
}

bool inside(const Slice& child, const Slice& parent) {
  return child.begin_ns >= parent.begin_ns && child.end_ns <= parent.end_ns;
}

// The counter samples of one counter name, as (ts, args).
std::vector<std::pair<int64_t, const json::Value*>> counters(const json::Value& trace, const std::string& name) {
  std::vector<std::pair<int64_t, const json::Value*>> out;
  for (const json::Value& e : trace.at("traceEvents").as_array())
    if (e.at("ph").as_string() == "C" && e.at("name").as_string() == name) out.push_back({ns_of(e.at("ts")), &e.at("args")});
  return out;
}

// The category breakdown of the first sample where "allocated" is largest.
void expect_counters_match_peak(const json::Value& trace, const AllocatorStats& stats) {
  const auto allocated = counters(trace, "allocated");
  const auto by_category = counters(trace, "memory by category");
  ASSERT_FALSE(allocated.empty());
  ASSERT_EQ(allocated.size(), by_category.size());
  size_t peak = 0;
  for (size_t i = 0; i < allocated.size(); ++i)
    if (allocated[i].second->at("allocated").as_int() > allocated[peak].second->at("allocated").as_int()) peak = i;
  EXPECT_EQ(allocated[peak].second->at("allocated").as_int(), stats.peak_allocated);
  int64_t sum = 0;
  for (int c = 0; c < kNumCategories; ++c) {
    const char* name = category_name(static_cast<Category>(c));
    EXPECT_EQ(by_category[peak].second->at(name).as_int(), stats.at_peak[c]) << name;
    sum += by_category[peak].second->at(name).as_int();
  }
  EXPECT_EQ(sum, stats.peak_allocated);
  const auto reserved = counters(trace, "reserved");
  ASSERT_EQ(reserved.size(), allocated.size());
  for (size_t i = 0; i < allocated.size(); ++i) {
    EXPECT_EQ(reserved[i].first, allocated[i].first);
    EXPECT_EQ(by_category[i].second->at("cached").as_int(),
              reserved[i].second->at("reserved").as_int() - allocated[i].second->at("allocated").as_int());
  }
}

TEST(Trace, JsonHasMetadataNestedSlicesCountersAndInstants) {
  CachingAllocator& cpu = allocator_for(Device::cpu);
  const std::string path = temp_path("nested.json");
  trace_begin(Device::cpu);
  ASSERT_TRUE(trace_recording());
  cpu.reset_peak();
  {
    TraceSpan step("step", "step 1");
    Var x(test::random_tensor({31, 33}, DType::f32, 7), true, "x");
    Var loss;
    {
      TraceSpan forward("forward", "forward");
      MemoryScope block(Category::temporary, "block");
      std::vector<Var> outs = checkpoint(
          "segment",
          [](const std::vector<Var>& in) {
            MemoryScope inner("inner");
            return std::vector<Var>{silu(scale(in[0], 2.0))};
          },
          {x});
      loss = sum_all(mul(outs[0], outs[0]));
    }
    {
      TraceSpan backward_span("backward", "backward");
      backward(loss);
    }
    // A large request makes (and empty_cache frees) a segment of its own; earlier
    // tests may have left a cached block that would serve it, so drop the cache first.
    cpu.empty_cache();
    {
      MemoryScope scope(Category::workspace, "big_buffer");
      Tensor big = Tensor::empty({3 << 20}, DType::f32);
    }
    cpu.empty_cache();
  }
  const AllocatorStats stats = cpu.stats();
  trace_end(Device::cpu, path, "");
  EXPECT_FALSE(trace_recording());

  const json::Value trace = json::Value::parse(read_file(path));
  EXPECT_EQ(trace.at("displayTimeUnit").as_string(), "ms");
  int metadata = 0, instants = 0;
  bool process_named = false, segment_alloc_seen = false, segment_free_seen = false;
  for (const json::Value& e : trace.at("traceEvents").as_array()) {
    const std::string ph = e.at("ph").as_string();
    if (ph == "M") {
      ++metadata;
      if (e.at("name").as_string() == "process_name")
        process_named = e.at("args").at("name").as_string() == "gc_train on cpu";
    }
    if (ph == "i") {
      ++instants;
      const std::string name = e.at("name").as_string();
      if (name == "segment_alloc" && e.at("args").at("label").as_string() == "big_buffer") {
        segment_alloc_seen = true;
        EXPECT_GE(e.at("args").at("size").as_int(), int64_t(12) << 20);
      }
      segment_free_seen = segment_free_seen || name == "segment_free";
    }
  }
  EXPECT_GE(metadata, 3);
  EXPECT_TRUE(process_named);
  EXPECT_GE(instants, 2);
  EXPECT_TRUE(segment_alloc_seen);
  EXPECT_TRUE(segment_free_seen);

  const std::vector<Slice> slices = slices_of(trace);
  expect_properly_nested(slices);
  const Slice* step = find_slice(slices, "step 1");
  const Slice* forward = find_slice(slices, "forward");
  const Slice* block = find_slice(slices, "block");
  const Slice* recompute = find_slice(slices, "block.segment");
  const Slice* backward_span = find_slice(slices, "backward");
  ASSERT_TRUE(step && forward && block && recompute && backward_span);
  EXPECT_EQ(step->category, "step");
  EXPECT_EQ(block->category, "forward");
  EXPECT_TRUE(inside(*forward, *step));
  EXPECT_TRUE(inside(*block, *forward));
  EXPECT_TRUE(inside(*backward_span, *step));
  EXPECT_EQ(recompute->category, "recompute");
  EXPECT_TRUE(inside(*recompute, *backward_span));
  // The segment's scope opens twice: once in forward, once re-run in backward.
  int inner_forward = 0, inner_recompute = 0, backward_nodes = 0;
  for (const Slice& s : slices) {
    if (s.name == "block.inner" && s.category == "forward" && inside(s, *forward)) ++inner_forward;
    if (s.name == "block.inner" && s.category == "recompute" && inside(s, *recompute)) ++inner_recompute;
    if (s.category == "backward" && s.name != "backward" && inside(s, *backward_span)) ++backward_nodes;
  }
  EXPECT_EQ(inner_forward, 1);
  EXPECT_EQ(inner_recompute, 1);
  EXPECT_GE(backward_nodes, 2);
  // Each op is a slice of its own, named after it, with its family as category and
  // the module it counts under in args: the segment's SiLU in forward and again in
  // recompute, its backward among the backward nodes.
  int silu_forward_slices = 0, silu_recompute_slices = 0, silu_backward_slices = 0;
  for (const json::Value& e : trace.at("traceEvents").as_array()) {
    if (e.at("ph").as_string() != "X" || !e.find("args")) continue;
    const std::string& name = e.at("name").as_string();
    const std::string& module = e.at("args").at("module").as_string();
    EXPECT_EQ(e.at("args").at("op_family").as_string(), e.at("cat").as_string()) << name;
    if (name == "silu_forward") {
      EXPECT_EQ(e.at("cat").as_string(), "elementwise");
      silu_forward_slices += module == "other";  // no trainer: the forward here is outside any module
      silu_recompute_slices += module == "recompute";
    }
    if (name == "silu_backward" && module == "backward") ++silu_backward_slices;
  }
  EXPECT_EQ(silu_forward_slices, 1);
  EXPECT_EQ(silu_recompute_slices, 1);
  EXPECT_EQ(silu_backward_slices, 1);
  EXPECT_FALSE(profile_enabled());  // the trace times ops only while it records

  expect_counters_match_peak(trace, stats);
  std::remove(path.c_str());
}

// Thousands of allocations with one short spike among them: on cpu the
// counters are bucketed by time, on meta by event number; both keep the spike.
void expect_coalesced_counters_keep_the_peak(Device device) {
  CachingAllocator& allocator = allocator_for(device);
  const std::string name = device_name(device);
  const std::string json_path = temp_path("coalesced_" + name + ".json"), png_path = temp_path("coalesced_" + name + ".png");
  trace_begin(device);
  allocator.reset_peak();
  const int rounds = 20000;
  {
    MemoryScope scope(Category::activation, "churn");
    Tensor held = Tensor::empty({4096}, DType::f32, device);
    for (int i = 0; i < rounds; ++i) {
      Tensor small = Tensor::empty({static_cast<int64_t>(64 + i % 977)}, DType::f32, device);
      // Alive for one allocation only.
      if (i == rounds / 2 + 17) {
        MemoryScope spike(Category::temporary, "spike");
        Tensor big = Tensor::empty({1 << 18}, DType::f32, device);
      }
    }
  }
  const AllocatorStats stats = allocator.stats();
  const size_t events = allocator.trace().size();
  trace_end(device, json_path, png_path);

  const json::Value trace = json::Value::parse(read_file(json_path));
  const size_t samples = counters(trace, "allocated").size();
  EXPECT_GE(events, size_t(2 * rounds));
  EXPECT_LT(samples, events) << "counters were not coalesced";
  expect_counters_match_peak(trace, stats);
  EXPECT_TRUE(has_png_signature(png_path));
  std::remove(json_path.c_str());
  std::remove(png_path.c_str());
}

TEST(Trace, CoalescedCountersKeepThePeakCpu) { expect_coalesced_counters_keep_the_peak(Device::cpu); }
TEST(Trace, CoalescedCountersKeepThePeakMeta) { expect_coalesced_counters_keep_the_peak(Device::meta); }

TEST(Trace, SpanIsNoOpWhenNotRecording) {
  EXPECT_FALSE(trace_recording());
  { TraceSpan idle("step", "not recorded"); }
  auto before = std::make_unique<TraceSpan>("step", "opened before the trace");
  const std::string path = temp_path("noop.json");
  trace_begin(Device::cpu);
  auto parent = std::make_unique<TraceSpan>("step", "parent");
  before.reset();  // must not close "parent"
  { TraceSpan child("forward", "child"); }
  parent.reset();
  trace_end(Device::cpu, path, "");
  { TraceSpan after("step", "after the trace"); }

  const std::vector<Slice> slices = slices_of(json::Value::parse(read_file(path)));
  ASSERT_EQ(slices.size(), 2u);
  const Slice* parent_slice = find_slice(slices, "parent");
  const Slice* child_slice = find_slice(slices, "child");
  ASSERT_TRUE(parent_slice && child_slice);
  EXPECT_TRUE(inside(*child_slice, *parent_slice));
  std::remove(path.c_str());
}

// Past the detail limit module spans are dropped but explicit spans stay, nested.
TEST(Trace, DetailSpanLimitKeepsExplicitSpans) {
  const std::string path = temp_path("limit.json");
  trace_begin(Device::cpu);
  {
    TraceSpan step("step", "step 1");
    for (int i = 0; i < 260000; ++i) MemoryScope module("m");
    MemoryScope late_module("late_module");
    TraceSpan optimizer("optimizer", "late explicit");
    MemoryScope inner("inner");
  }
  trace_end(Device::cpu, path, "");
  const json::Value trace = json::Value::parse(read_file(path));
  const std::vector<Slice> slices = slices_of(trace);
  expect_properly_nested(slices);
  EXPECT_LT(slices.size(), size_t(260000));
  EXPECT_EQ(find_slice(slices, "late_module"), nullptr);
  EXPECT_EQ(find_slice(slices, "late_module.inner"), nullptr);
  const Slice* step = find_slice(slices, "step 1");
  const Slice* late = find_slice(slices, "late explicit");
  ASSERT_TRUE(step && late);
  EXPECT_TRUE(inside(*late, *step));
  bool noted = false;
  for (const json::Value& e : trace.at("traceEvents").as_array())
    noted = noted || (e.at("ph").as_string() == "i" && e.at("name").as_string() == "span limit reached");
  EXPECT_TRUE(noted);
  std::remove(path.c_str());
}

TEST(Trace, MetaTimelinePngAndMisuse) {
  const std::string json_path = temp_path("meta.json"), png_path = temp_path("meta.png");
  EXPECT_THROW(trace_end(Device::meta, json_path, png_path), std::logic_error);
  trace_begin(Device::meta);
  EXPECT_THROW(trace_begin(Device::meta), std::logic_error);
  EXPECT_THROW(trace_end(Device::cpu, json_path, png_path), std::invalid_argument);
  {
    MemoryScope params(Category::parameter, "weights");
    Tensor w = Tensor::empty({1 << 20}, DType::f32, Device::meta);
    MemoryScope acts(Category::activation, "layer");
    std::vector<Tensor> held;
    for (int i = 0; i < 33; ++i) held.push_back(Tensor::empty({65, 1 << 10}, DType::f32, Device::meta));
  }
  trace_end(Device::meta, json_path, png_path);
  EXPECT_TRUE(has_png_signature(png_path));
  const json::Value trace = json::Value::parse(read_file(json_path));
  EXPECT_FALSE(counters(trace, "allocated").empty());
  std::remove(json_path.c_str());
  std::remove(png_path.c_str());
}

}  // namespace
}  // namespace gc
