// allocator.h: the caching allocator, one policy for all three devices.
//
// Policy (modelled on PyTorch's CUDA caching allocator, see DESIGN.md):
//   - requests round up to a multiple of 512 B (minimum 512);
//   - small pool (rounded size <= 1 MiB) is carved from 2 MiB segments; large
//     requests < 10 MiB get 20 MiB segments, >= 10 MiB a segment rounded up to 2 MiB;
//   - best fit among the pool's free blocks; a block splits when the remainder is
//     >= 512 B (small pool) or > 1 MiB (large pool); on free, neighbours in the same
//     segment merge; only whole free segments go back to the raw backend;
//   - when a new segment cannot be had (capacity limit or raw failure) all whole
//     free segments are released and the request retried once; then OutOfMemory.
//
// Determinism: best fit breaks ties by (segment creation number, offset), never by
// raw address, so cpu (real addresses) and meta (simulated addresses) make the same
// choices and report the same figures after every event.
//
// Byte figures: "allocated" counts block sizes (what the request occupies,
// rounding and unsplit remainders included), "reserved" counts segment sizes.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/memory_scope.h"

namespace gc {

constexpr size_t kMinBlockBytes = 512;
constexpr size_t kSmallRequestBytes = size_t(1) << 20;     // <= 1 MiB: small pool
constexpr size_t kSmallSegmentBytes = size_t(2) << 20;     // small pool segment
constexpr size_t kMinLargeAllocBytes = size_t(10) << 20;   // below: 20 MiB segments
constexpr size_t kLargeSegmentBytes = size_t(20) << 20;
constexpr size_t kLargeRoundBytes = size_t(2) << 20;

size_t round_request_bytes(size_t bytes);        // 512 B granularity
size_t segment_bytes_for(size_t rounded_bytes);  // the segment a miss would create
bool is_small_request(size_t rounded_bytes);

// Where segments come from. allocate returns 0 on failure, never throws.
class RawBackend {
 public:
  virtual ~RawBackend() = default;
  virtual uintptr_t allocate(size_t bytes) = 0;
  virtual void release(uintptr_t address, size_t bytes) = 0;
  virtual Device device() const = 0;
};
std::unique_ptr<RawBackend> make_host_backend();
std::unique_ptr<RawBackend> make_meta_backend();
std::unique_ptr<RawBackend> make_cuda_backend();  // throws when CUDA is unavailable

struct Segment;
struct Block {
  size_t size = 0;            // bytes of this block
  size_t requested = 0;       // bytes asked for (0 when free)
  uintptr_t address = 0;
  size_t offset = 0;          // from the segment start
  Segment* segment = nullptr;
  Block* prev = nullptr;      // neighbours within the segment
  Block* next = nullptr;
  bool allocated = false;
  Category category = Category::temporary;
  std::string label;
  std::string shape;          // optional description of what lives here (set by Tensor)
  uint64_t id = 0;            // allocation number, for traces
};

struct Segment {
  uint64_t number = 0;        // creation order; the tie-break key
  uintptr_t address = 0;
  size_t size = 0;
  bool small = false;
};

enum class AllocEventKind : unsigned char { alloc, free, segment_alloc, segment_free, oom, recategorize };
const char* alloc_event_name(AllocEventKind kind);

struct AllocEvent {
  double time_us;
  AllocEventKind kind;
  uintptr_t address;
  int64_t bytes;
  Category category;
  uint32_t label_id;         // index into CachingAllocator::trace_labels()
  int64_t allocated_after;   // totals after the event
  int64_t reserved_after;
  std::array<int64_t, kNumCategories> category_after;
};

struct AllocatorStats {
  int64_t allocated = 0, peak_allocated = 0;
  int64_t reserved = 0, peak_reserved = 0;
  int64_t active_blocks = 0, peak_active_blocks = 0;
  int64_t segments = 0, peak_segments = 0;
  int64_t requested = 0;  // bytes asked for by live blocks (before rounding)
  std::array<int64_t, kNumCategories> category_allocated{};
  std::array<int64_t, kNumCategories> category_peak{};
  // Category breakdown at the moment allocated reached its peak, and the label
  // of the allocation that set the peak.
  std::array<int64_t, kNumCategories> at_peak{};
  std::string peak_label;
  int64_t num_allocs = 0, num_frees = 0, num_segment_allocs = 0, num_segment_frees = 0, num_ooms = 0;
  int64_t limit = 0;  // 0: no limit
};

// A live tensor described at the peak, for "what held the memory" tables.
struct LiveBlock {
  std::string label;
  std::string shape;
  Category category;
  int64_t bytes;
};

class OutOfMemory : public std::runtime_error {
 public:
  struct Report {
    Device device;
    int64_t requested_bytes;
    int64_t segment_bytes;   // the segment that could not be had
    Category category;
    std::string label;
    std::array<int64_t, kNumCategories> category_allocated;
    int64_t allocated;
    int64_t reserved;
    int64_t limit;           // 0: none, the raw backend failed
  };
  explicit OutOfMemory(Report report);
  const Report& report() const { return report_; }

 private:
  Report report_;
};

class CachingAllocator {
 public:
  explicit CachingAllocator(std::unique_ptr<RawBackend> backend);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Category and label come from the current MemoryScope. Throws OutOfMemory.
  Block* allocate(size_t bytes);
  void free(Block* block);
  // Moves a live block to another category (a tensor saved for backward).
  void recategorize(Block* block, Category category, const std::string& label);

  void set_limit(int64_t bytes);  // cap on reserved bytes; 0 removes it
  int64_t limit() const;
  void empty_cache();             // releases every whole free segment
  void reset_peak();              // peaks := current values
  AllocatorStats stats() const;
  Device device() const { return device_; }

  // Event log (off by default; bounded only by memory).
  void set_trace(bool enabled);
  bool tracing() const { return tracing_; }
  std::vector<AllocEvent> trace() const;
  std::vector<std::string> trace_labels() const;
  void clear_trace();

  // Snapshot of the largest live blocks at the peak (off by default: costs a
  // scan of live blocks at each new peak).
  // The snapshot is taken lazily, at the first free after a new peak (the live
  // set then is exactly the peak's), so it costs one scan per local maximum.
  void set_peak_snapshot(bool enabled, size_t top_n = 10);
  std::vector<LiveBlock> peak_snapshot() const;
  // Bytes per label of every block live at the peak (category and shape empty).
  std::vector<LiveBlock> peak_bytes_by_label() const;
  std::vector<LiveBlock> live_blocks() const;

  // Bytes still allocated, and a list of the outstanding blocks ("" if none).
  int64_t outstanding_bytes() const;
  std::string leak_report() const;

  // Microseconds since the allocator was created (the trace clock).
  double now_us() const;

 private:
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockOrder>;

  Block* allocate_locked(size_t bytes);
  Block* take_free_block(Pool& pool, size_t rounded);
  Block* new_segment(size_t segment_size, bool small);
  void release_free_segments();
  void release_segment(Block* block);
  void record(AllocEventKind kind, uintptr_t address, int64_t bytes, Category category,
              const std::string& label);
  void on_allocated_grew(const std::string& label);
  uint32_t label_id(const std::string& label);

  std::unique_ptr<RawBackend> backend_;
  Device device_;
  mutable std::mutex mutex_;
  Pool small_pool_, large_pool_;
  std::set<Block*> live_;
  std::vector<Segment*> segments_;
  uint64_t next_segment_number_ = 0;
  uint64_t next_block_id_ = 0;
  AllocatorStats stats_;
  bool tracing_ = false;
  std::vector<AllocEvent> events_;
  std::vector<std::string> labels_;
  std::map<std::string, uint32_t> label_ids_;
  bool snapshot_enabled_ = false;
  size_t snapshot_top_n_ = 10;
  mutable std::vector<LiveBlock> peak_snapshot_;
  mutable std::vector<LiveBlock> peak_by_label_;
  mutable bool snapshot_pending_ = false;
  void take_snapshot_locked() const;
  std::chrono::steady_clock::time_point start_;
};

// The process-wide allocator of a device (created on first use).
CachingAllocator& allocator_for(Device device);
// Formats bytes as "1.50 GiB" / "512.0 MiB" / "812 B".
std::string format_bytes(int64_t bytes);
// Parses "512MiB", "24GB", "1.5GiB", "4096" (bytes). GB = 1e9, GiB = 2^30.
// Throws std::invalid_argument with the offending text.
int64_t parse_bytes(const std::string& text);

}  // namespace gc
