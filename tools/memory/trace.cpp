// trace.cpp: records a run's spans and allocator events and writes them as
// Chrome Trace Event JSON and as a memory timeline PNG.
//
// Invariants:
//   - every span source (named MemoryScopes, the tape's backward/recompute
//     work, TraceSpan) is RAII on the recording thread, so begins and ends
//     arrive in LIFO order and one stack turns them into properly nested "X"
//     slices; calls from other threads (OpenMP workers) are ignored;
//   - times are written as integer nanoseconds (ts in microseconds with three
//     decimals), rounded from one clock (the traced allocator's now_us), so a
//     child's [ts, ts + dur] lies within its parent's exactly, not just nearly;
//   - counters are coalesced into buckets (of time; of event number on meta),
//     keeping in each bucket the sample with the most allocated bytes and the
//     bucket's last sample: no peak is lost and the state after every bucket
//     is exact.
#include "tools/memory/trace.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "autograd/tape.h"
#include "runtime/allocator.h"
#include "runtime/memory_scope.h"
#include "runtime/profile.h"
#include "tools/io/atomic_file.h"
#include "tools/plot/plot.h"

namespace gc {
namespace {

struct Span {
  double begin_us = 0, end_us = -1;  // allocator clock; end < 0 while open
  std::string name;
  std::string category;  // forward, backward, recompute, optimizer, step, ...; an op's family
  const char* module = nullptr;  // ops only: the module (profile.h's Phase) the op counts under
};

// One memory state written as a counter sample (and drawn as a timeline point).
struct MemorySample {
  double time_us = 0;
  size_t event_index = 0;  // allocator events before it (the meta x axis)
  int64_t allocated = 0, reserved = 0;
  std::array<int64_t, kNumCategories> category{};
};

// Module and tape spans beyond this many are not recorded (explicit TraceSpans
// always are): ~120 bytes of JSON each, this keeps a long run's file near 30 MB.
constexpr size_t kMaxDetailSpans = 250000;
constexpr size_t kSkippedSpan = static_cast<size_t>(-1);

struct Recorder {
  bool recording = false;
  Device device = Device::cpu;
  CachingAllocator* allocator = nullptr;
  std::thread::id thread;
  double origin_us = 0;
  MemorySample initial;  // the state when recording began
  std::vector<Span> spans;        // in begin order
  std::vector<size_t> open_spans;  // indices into spans (or kSkippedSpan), innermost last
  size_t detail_spans = 0;
  double detail_limit_us = -1;  // when the first detail span was dropped
};
Recorder g_recorder;

bool on_recording_thread() {
  return g_recorder.recording && std::this_thread::get_id() == g_recorder.thread;
}

void open_span(std::string category, const std::string& name, bool detail) {
  if (detail && g_recorder.detail_spans >= kMaxDetailSpans) {
    if (g_recorder.detail_limit_us < 0) g_recorder.detail_limit_us = g_recorder.allocator->now_us();
    g_recorder.open_spans.push_back(kSkippedSpan);
    return;
  }
  g_recorder.detail_spans += detail ? 1 : 0;
  Span span;
  span.begin_us = g_recorder.allocator->now_us();
  span.name = name;
  span.category = std::move(category);
  g_recorder.open_spans.push_back(g_recorder.spans.size());
  g_recorder.spans.push_back(std::move(span));
}

// Ends that arrive with no open span belong to scopes opened before recording.
void close_span() {
  if (g_recorder.open_spans.empty()) return;
  const size_t index = g_recorder.open_spans.back();
  g_recorder.open_spans.pop_back();
  if (index != kSkippedSpan) g_recorder.spans[index].end_us = g_recorder.allocator->now_us();
}

// A module scope is forward work unless it opens inside backward, recompute or
// optimizer work, whose category it takes.
void on_scope(bool enter, const std::string& label) {
  if (!on_recording_thread()) return;
  if (!enter) {
    close_span();
    return;
  }
  std::string category = "forward";
  for (auto it = g_recorder.open_spans.rbegin(); it != g_recorder.open_spans.rend(); ++it) {
    if (*it == kSkippedSpan || g_recorder.spans[*it].module) continue;  // op slices are no module's parent
    const std::string& parent = g_recorder.spans[*it].category;
    if (parent != "step") category = parent;
    break;
  }
  open_span(std::move(category), label, true);
}

struct TraceTapeObserver : TapeObserver {
  void begin(const std::string& phase, const std::string& label) override {
    if (on_recording_thread()) open_span(phase, label, true);
  }
  void end() override {
    if (on_recording_thread()) close_span();
  }
};
TraceTapeObserver g_tape_observer;
TapeObserver* g_previous_tape_observer = nullptr;
bool g_profile_was_enabled = false;

// Ops (timed by the profiler while the trace records) become slices named after
// the op, with the op family as category and the module in args.
void on_op(bool enter, OpFamily family, const char* name) {
  if (!on_recording_thread()) return;
  if (!enter) {
    close_span();
    return;
  }
  open_span(op_family_name(family), name ? name : "op", true);
  if (!g_recorder.open_spans.empty() && g_recorder.open_spans.back() != kSkippedSpan)
    g_recorder.spans[g_recorder.open_spans.back()].module = phase_name(ProfilePhase::current());
}

MemorySample sample_of(const AllocEvent& e, size_t index) {
  MemorySample s;
  s.time_us = e.time_us;
  s.event_index = index + 1;
  s.allocated = e.allocated_after;
  s.reserved = e.reserved_after;
  s.category = e.category_after;
  return s;
}

// The counter samples: the initial state, then per bucket the sample with the
// most allocated bytes (first of equals) and the bucket's last one, in order.
// Buckets span at least 50 us and are at most 10^4 over the run, so a run of
// 10^6 events writes at most ~2 * 10^4 samples. A meta run is bucketed by
// event number instead (its clock measures only the bookkeeping), and keeps
// every event when it has few.
std::vector<MemorySample> coalesce(const std::vector<AllocEvent>& events, const MemorySample& initial,
                                   bool by_event_number) {
  std::vector<MemorySample> samples{initial};
  if (events.empty()) return samples;
  constexpr double kMaxBuckets = 10000;
  const double start_us = initial.time_us;
  const double bucket_us = std::max(50.0, (events.back().time_us - start_us) / kMaxBuckets);
  const size_t bucket_events = std::max<size_t>(1, static_cast<size_t>(std::ceil(events.size() / kMaxBuckets)));
  auto bucket_of = [&](size_t i) {
    return by_event_number ? static_cast<int64_t>(i / bucket_events)
                           : static_cast<int64_t>(std::floor((events[i].time_us - start_us) / bucket_us));
  };
  size_t i = 0;
  while (i < events.size()) {
    const int64_t bucket = bucket_of(i);
    size_t best = i, last = i;
    for (++i; i < events.size() && bucket_of(i) == bucket; ++i) {
      if (events[i].allocated_after > events[best].allocated_after) best = i;
      last = i;
    }
    samples.push_back(sample_of(events[best], best));
    if (last != best) samples.push_back(sample_of(events[last], last));
  }
  return samples;
}

// ---- JSON writing (streamed: a run holds up to ~10^6 events) --------------------

int64_t to_ns(double us) { return static_cast<int64_t>(std::llround(us * 1000.0)); }

// Microseconds with three decimals from integer nanoseconds, exactly.
void put_us(std::FILE* f, int64_t ns) {
  if (ns < 0) {
    std::fputc('-', f);
    ns = -ns;
  }
  std::fprintf(f, "%" PRId64 ".%03" PRId64, ns / 1000, ns % 1000);
}

void put_string(std::FILE* f, const std::string& s) {
  std::fputc('"', f);
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      std::fputc('\\', f);
      std::fputc(c, f);
    } else if (c < 0x20) {
      std::fprintf(f, "\\u%04x", c);
    } else {
      std::fputc(c, f);
    }
  }
  std::fputc('"', f);
}

class EventWriter {
 public:
  explicit EventWriter(std::FILE* f) : f_(f) {}
  // Starts one event object; the caller writes the remaining members.
  void begin(const char* phase, int tid) {
    std::fputs(first_ ? "\n" : ",\n", f_);
    first_ = false;
    std::fprintf(f_, "{\"ph\":\"%s\",\"pid\":1,\"tid\":%d", phase, tid);
  }
  std::FILE* file() const { return f_; }

 private:
  std::FILE* f_;
  bool first_ = true;
};

constexpr int kComputeTid = 1;
constexpr int kMemoryTid = 2;

void write_metadata(EventWriter& w, Device device) {
  std::FILE* f = w.file();
  w.begin("M", kComputeTid);
  std::fprintf(f, ",\"name\":\"process_name\",\"args\":{\"name\":\"gc_train on %s\"}}", device_name(device));
  const std::pair<int, const char*> threads[] = {{kComputeTid, "compute"}, {kMemoryTid, "memory"}};
  for (const auto& [tid, name] : threads) {
    w.begin("M", tid);
    std::fprintf(f, ",\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}", name);
    w.begin("M", tid);
    std::fprintf(f, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}", tid);
  }
}

void write_spans(EventWriter& w, const std::vector<Span>& spans, double origin_us) {
  std::FILE* f = w.file();
  for (const Span& s : spans) {
    const int64_t begin_ns = to_ns(s.begin_us - origin_us), end_ns = to_ns(s.end_us - origin_us);
    w.begin("X", kComputeTid);
    std::fputs(",\"ts\":", f);
    put_us(f, begin_ns);
    std::fputs(",\"dur\":", f);
    put_us(f, end_ns - begin_ns);
    std::fputs(",\"name\":", f);
    put_string(f, s.name);
    std::fputs(",\"cat\":", f);
    put_string(f, s.category);
    if (s.module) std::fprintf(f, ",\"args\":{\"op_family\":\"%s\",\"module\":\"%s\"}", s.category.c_str(), s.module);
    std::fputc('}', f);
  }
}

// Three counters per sample: the allocated bytes by category plus "cached"
// (viewers stack a counter's series, so its top is the reserved total), and the
// totals "allocated" and "reserved" as tracks of their own.
void write_counters(EventWriter& w, const std::vector<MemorySample>& samples, double origin_us) {
  std::FILE* f = w.file();
  for (const MemorySample& s : samples) {
    const int64_t ts_ns = to_ns(s.time_us - origin_us);
    w.begin("C", kMemoryTid);
    std::fputs(",\"ts\":", f);
    put_us(f, ts_ns);
    std::fputs(",\"name\":\"memory by category\",\"args\":{", f);
    for (int c = 0; c < kNumCategories; ++c)
      std::fprintf(f, "\"%s\":%" PRId64 ",", category_name(static_cast<Category>(c)), s.category[c]);
    std::fprintf(f, "\"cached\":%" PRId64 "}}", s.reserved - s.allocated);
    w.begin("C", kMemoryTid);
    std::fputs(",\"ts\":", f);
    put_us(f, ts_ns);
    std::fprintf(f, ",\"name\":\"allocated\",\"args\":{\"allocated\":%" PRId64 "}}", s.allocated);
    w.begin("C", kMemoryTid);
    std::fputs(",\"ts\":", f);
    put_us(f, ts_ns);
    std::fprintf(f, ",\"name\":\"reserved\",\"args\":{\"reserved\":%" PRId64 "}}", s.reserved);
  }
}

void write_instants(EventWriter& w, const std::vector<AllocEvent>& events, const std::vector<std::string>& labels,
                    double origin_us) {
  std::FILE* f = w.file();
  for (const AllocEvent& e : events) {
    if (e.kind != AllocEventKind::segment_alloc && e.kind != AllocEventKind::segment_free &&
        e.kind != AllocEventKind::oom)
      continue;
    w.begin("i", kMemoryTid);
    std::fputs(",\"ts\":", f);
    put_us(f, to_ns(e.time_us - origin_us));
    // An OOM is drawn across the whole process so that it cannot be missed.
    std::fprintf(f, ",\"s\":\"%s\",\"name\":\"%s\",\"args\":{\"size\":%" PRId64 ",\"label\":",
                 e.kind == AllocEventKind::oom ? "p" : "t", alloc_event_name(e.kind), e.bytes);
    put_string(f, e.label_id < labels.size() ? labels[e.label_id] : std::string());
    std::fprintf(f, ",\"category\":\"%s\",\"allocated\":%" PRId64 ",\"reserved\":%" PRId64 "}}",
                 category_name(e.category), e.allocated_after, e.reserved_after);
  }
}

void write_trace_json(const std::string& path, Device device, const std::vector<Span>& spans,
                      const std::vector<MemorySample>& samples, const std::vector<AllocEvent>& events,
                      const std::vector<std::string>& labels, double origin_us) {
  write_file_atomic(path, [&](std::FILE* f) {
    std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", f);
    EventWriter w(f);
    write_metadata(w, device);
    write_spans(w, spans, origin_us);
    write_counters(w, samples, origin_us);
    write_instants(w, events, labels, origin_us);
    if (g_recorder.detail_limit_us >= 0) {
      w.begin("i", kComputeTid);
      std::fputs(",\"ts\":", f);
      put_us(f, to_ns(g_recorder.detail_limit_us - origin_us));
      std::fprintf(f, ",\"s\":\"t\",\"name\":\"span limit reached\",\"args\":{\"note\":\"from here on only "
                      "step, forward, backward and optimizer spans are recorded (limit %zu module spans)\"}}",
                   kMaxDetailSpans);
    }
    std::fputs("\n]}\n", f);
  });
}

// ---- the timeline picture ------------------------------------------------------------

// Fixed per category so that every timeline reads the same way.
plot::Rgb category_colour(Category c) {
  switch (c) {
    case Category::parameter: return {31, 119, 180};        // blue
    case Category::gradient: return {255, 127, 14};         // orange
    case Category::optimizer_state: return {44, 160, 44};   // green
    case Category::input: return {148, 103, 189};           // purple
    case Category::activation: return {214, 39, 40};        // red
    case Category::temporary: return {188, 189, 34};        // olive
    case Category::workspace: return {140, 86, 75};         // brown
    case Category::communication: return {227, 119, 194};   // pink
  }
  return {127, 127, 127};
}

void write_timeline_png(const std::string& path, Device device, const std::vector<MemorySample>& samples,
                        const std::string& peak_label, double origin_us) {
  const bool by_index = device == Device::meta;  // a dry run takes no meaningful time
  std::vector<double> x;
  x.reserve(samples.size());
  for (const MemorySample& s : samples)
    x.push_back(by_index ? static_cast<double>(s.event_index) : (s.time_us - origin_us) / 1000.0);
  // Coalescing keeps time order but clock reads may tie; x must not decrease.
  for (size_t i = 1; i < x.size(); ++i) x[i] = std::max(x[i], x[i - 1]);

  std::vector<plot::AreaLayer> layers;
  for (int c = 0; c < kNumCategories; ++c) {
    plot::AreaLayer layer;
    layer.name = category_name(static_cast<Category>(c));
    layer.colour = category_colour(static_cast<Category>(c));
    for (const MemorySample& s : samples) layer.y.push_back(static_cast<double>(s.category[c]));
    layers.push_back(std::move(layer));
  }
  plot::AreaLayer reserved;
  reserved.name = "reserved (allocated + cached)";
  reserved.colour = plot::colour::black;
  int64_t peak_allocated = 0;
  for (const MemorySample& s : samples) {
    reserved.y.push_back(static_cast<double>(s.reserved));
    peak_allocated = std::max(peak_allocated, s.allocated);
  }

  plot::StackedAreaOptions options;
  options.text.title = std::string("GraphCast memory timeline (") + device_name(device) + ", peak " +
                       plot::format_bytes_short(static_cast<double>(peak_allocated)) + " allocated)";
  options.text.x_label = by_index ? "allocator event number (meta dry run: the order of events, not time)"
                                  : "time since the trace started (ms)";
  options.text.y_label = "allocated bytes, stacked by category";
  options.format_y = [](double v) { return plot::format_bytes_short(v); };
  options.binary_y_ticks = true;
  options.overlay = std::move(reserved);
  options.peak_label = peak_label;
  plot::Canvas canvas(1400, 800);
  plot::stacked_area_chart(canvas, plot::Rect{0, 0, canvas.width(), canvas.height()}, x, layers, options);
  canvas.save_png(path);
}

}  // namespace

bool trace_recording() { return g_recorder.recording; }

void trace_begin(Device device) {
  if (g_recorder.recording) throw std::logic_error("trace_begin: a trace is already recording");
  CachingAllocator& allocator = allocator_for(device);
  g_recorder = Recorder();
  g_recorder.device = device;
  g_recorder.allocator = &allocator;
  g_recorder.thread = std::this_thread::get_id();
  allocator.set_trace(false);
  allocator.clear_trace();
  const AllocatorStats stats = allocator.stats();
  g_recorder.origin_us = allocator.now_us();
  g_recorder.initial.time_us = g_recorder.origin_us;
  g_recorder.initial.allocated = stats.allocated;
  g_recorder.initial.reserved = stats.reserved;
  g_recorder.initial.category = stats.category_allocated;
  g_recorder.recording = true;
  allocator.set_trace(true);
  set_scope_listener(&on_scope);
  g_previous_tape_observer = tape_observer();
  set_tape_observer(&g_tape_observer);
  g_profile_was_enabled = profile_enabled();
  profile_enable(true);  // ops are timed, and told to on_op, while the trace records
  set_op_listener(&on_op);
}

void trace_end(Device device, const std::string& json_path, const std::string& png_path) {
  if (!g_recorder.recording) throw std::logic_error("trace_end: no trace is recording");
  if (device != g_recorder.device) {
    throw std::invalid_argument(std::string("trace_end: the trace records ") + device_name(g_recorder.device) +
                                ", not " + device_name(device));
  }
  CachingAllocator& allocator = *g_recorder.allocator;
  set_scope_listener(nullptr);
  set_tape_observer(g_previous_tape_observer);
  set_op_listener(nullptr);
  profile_enable(g_profile_was_enabled);
  allocator.set_trace(false);
  while (!g_recorder.open_spans.empty()) close_span();  // spans still open end now
  g_recorder.recording = false;

  std::vector<AllocEvent> events = allocator.trace();
  const std::vector<std::string> labels = allocator.trace_labels();
  allocator.clear_trace();
  const std::vector<MemorySample> samples = coalesce(events, g_recorder.initial, device == Device::meta);

  // The label of the allocation that first reached the peak.
  std::string peak_label;
  int64_t peak = g_recorder.initial.allocated;
  for (const AllocEvent& e : events) {
    if (e.allocated_after > peak) {
      peak = e.allocated_after;
      peak_label = e.label_id < labels.size() ? labels[e.label_id] : std::string();
    }
  }
  if (peak_label.empty() && peak > 0) peak_label = "before the trace";

  if (!json_path.empty())
    write_trace_json(json_path, device, g_recorder.spans, samples, events, labels, g_recorder.origin_us);
  if (!png_path.empty()) write_timeline_png(png_path, device, samples, peak_label, g_recorder.origin_us);
  g_recorder.spans.clear();
  g_recorder.spans.shrink_to_fit();
}

TraceSpan::TraceSpan(const char* category, const std::string& name) : active_(on_recording_thread()) {
  if (active_) open_span(category, name, false);
}

TraceSpan::~TraceSpan() {
  if (active_ && on_recording_thread()) close_span();
}

}  // namespace gc
