// allocator.cpp: the caching allocator (policy in allocator.h) and the host and
// meta raw backends. The cuda backend lives in cuda_device.cpp.
#include "runtime/allocator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace gc {

// ---- sizes ---------------------------------------------------------------

size_t round_request_bytes(size_t bytes) {
  if (bytes < kMinBlockBytes) return kMinBlockBytes;
  return kMinBlockBytes * ((bytes + kMinBlockBytes - 1) / kMinBlockBytes);
}

bool is_small_request(size_t rounded_bytes) { return rounded_bytes <= kSmallRequestBytes; }

size_t segment_bytes_for(size_t rounded_bytes) {
  if (rounded_bytes <= kSmallRequestBytes) return kSmallSegmentBytes;
  if (rounded_bytes < kMinLargeAllocBytes) return kLargeSegmentBytes;
  return kLargeRoundBytes * ((rounded_bytes + kLargeRoundBytes - 1) / kLargeRoundBytes);
}

const char* alloc_event_name(AllocEventKind kind) {
  switch (kind) {
    case AllocEventKind::alloc: return "alloc";
    case AllocEventKind::free: return "free";
    case AllocEventKind::segment_alloc: return "segment_alloc";
    case AllocEventKind::segment_free: return "segment_free";
    case AllocEventKind::oom: return "oom";
    case AllocEventKind::recategorize: return "recategorize";
  }
  return "?";
}

// ---- raw backends ----------------------------------------------------------

namespace {

class HostBackend final : public RawBackend {
 public:
  uintptr_t allocate(size_t bytes) override {
    void* p = std::aligned_alloc(4096, bytes);  // segment sizes are multiples of 2 MiB
    return reinterpret_cast<uintptr_t>(p);
  }
  void release(uintptr_t address, size_t) override { std::free(reinterpret_cast<void*>(address)); }
  Device device() const override { return Device::cpu; }
};

// A simulated address space: addresses are handed out upwards and never touched.
class MetaBackend final : public RawBackend {
 public:
  uintptr_t allocate(size_t bytes) override {
    uintptr_t address = next_;
    next_ += bytes;
    return address;
  }
  void release(uintptr_t, size_t) override {}
  Device device() const override { return Device::meta; }

 private:
  uintptr_t next_ = uintptr_t(1) << 40;
};

}  // namespace

std::unique_ptr<RawBackend> make_host_backend() { return std::make_unique<HostBackend>(); }
std::unique_ptr<RawBackend> make_meta_backend() { return std::make_unique<MetaBackend>(); }

// ---- OutOfMemory -----------------------------------------------------------

namespace {
std::string oom_message(const OutOfMemory::Report& r) {
  std::ostringstream s;
  s << "out of memory on " << device_name(r.device) << ": tried to allocate "
    << format_bytes(r.requested_bytes) << " (a new segment of " << format_bytes(r.segment_bytes)
    << ") for '" << (r.label.empty() ? "(unlabelled)" : r.label) << "' ("
    << category_name(r.category) << "); allocated " << format_bytes(r.allocated) << ", reserved "
    << format_bytes(r.reserved) << ", limit "
    << (r.limit > 0 ? format_bytes(r.limit) : std::string("none (the device refused)")) << ". Live bytes:";
  for (int c = 0; c < kNumCategories; ++c)
    if (r.category_allocated[c] > 0)
      s << " " << category_name(static_cast<Category>(c)) << " " << format_bytes(r.category_allocated[c]) << ";";
  return s.str();
}
}  // namespace

OutOfMemory::OutOfMemory(Report report) : std::runtime_error(oom_message(report)), report_(std::move(report)) {}

// ---- the allocator -----------------------------------------------------------

namespace {
// Merges block->next into block (its neighbour within the segment) and deletes it.
void absorb_next(Block* block) {
  Block* next = block->next;
  block->size += next->size;
  block->next = next->next;
  if (next->next) next->next->prev = block;
  delete next;
}
}  // namespace

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->size != b->size) return a->size < b->size;
  uint64_t na = a->segment ? a->segment->number : 0, nb = b->segment ? b->segment->number : 0;
  if (na != nb) return na < nb;
  return a->offset < b->offset;
}

CachingAllocator::CachingAllocator(std::unique_ptr<RawBackend> backend)
    : backend_(std::move(backend)), device_(backend_->device()), start_(std::chrono::steady_clock::now()) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stats_.allocated != 0) {
    std::string report;
    for (Block* b : live_) report += "  " + std::to_string(b->size) + " B '" + b->label + "'\n";
    std::fprintf(stderr, "gc: %s allocator destroyed with %lld bytes outstanding in %zu blocks:\n%s",
                 device_name(device_), static_cast<long long>(stats_.allocated), live_.size(), report.c_str());
  }
  // Whole free segments go back to the backend with their bookkeeping. A segment
  // that still holds live blocks is left alone (its owners may still point at it
  // during static destruction), and so are its free blocks.
  std::set<Segment*> busy;
  for (Block* b : live_) busy.insert(b->segment);
  for (Pool* pool : {&small_pool_, &large_pool_}) {
    for (Block* b : *pool) {
      if (busy.count(b->segment)) continue;
      if (!b->prev && !b->next) backend_->release(b->segment->address, b->segment->size);
      delete b;
    }
    pool->clear();
  }
  for (Segment* segment : segments_)
    if (!busy.count(segment)) delete segment;
}

double CachingAllocator::now_us() const {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start_).count();
}

uint32_t CachingAllocator::label_id(const std::string& label) {
  auto it = label_ids_.find(label);
  if (it != label_ids_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(labels_.size());
  labels_.push_back(label);
  label_ids_.emplace(label, id);
  return id;
}

void CachingAllocator::record(AllocEventKind kind, uintptr_t address, int64_t bytes, Category category,
                              const std::string& label) {
  if (!tracing_) return;
  AllocEvent e;
  e.time_us = now_us();
  e.kind = kind;
  e.address = address;
  e.bytes = bytes;
  e.category = category;
  e.label_id = label_id(label);
  e.allocated_after = stats_.allocated;
  e.reserved_after = stats_.reserved;
  e.category_after = stats_.category_allocated;
  events_.push_back(e);
}

Block* CachingAllocator::take_free_block(Pool& pool, size_t rounded) {
  Block key;
  key.size = rounded;
  auto it = pool.lower_bound(&key);
  if (it == pool.end()) return nullptr;
  Block* block = *it;
  pool.erase(it);
  return block;
}

Block* CachingAllocator::new_segment(size_t segment_size, bool small) {
  if (stats_.limit > 0 && stats_.reserved + static_cast<int64_t>(segment_size) > stats_.limit) return nullptr;
  uintptr_t address = backend_->allocate(segment_size);
  if (address == 0) return nullptr;
  auto* segment = new Segment;
  segment->number = ++next_segment_number_;
  segment->address = address;
  segment->size = segment_size;
  segment->small = small;
  segments_.push_back(segment);
  auto* block = new Block;
  block->size = segment_size;
  block->address = address;
  block->segment = segment;
  stats_.reserved += segment_size;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  stats_.segments += 1;
  stats_.peak_segments = std::max(stats_.peak_segments, stats_.segments);
  stats_.num_segment_allocs += 1;
  record(AllocEventKind::segment_alloc, address, static_cast<int64_t>(segment_size),
         MemoryScope::current_category(), MemoryScope::current_label());
  return block;
}

void CachingAllocator::release_segment(Block* block) {
  Segment* segment = block->segment;
  backend_->release(segment->address, segment->size);
  stats_.reserved -= segment->size;
  stats_.segments -= 1;
  stats_.num_segment_frees += 1;
  record(AllocEventKind::segment_free, segment->address, static_cast<int64_t>(segment->size),
         MemoryScope::current_category(), MemoryScope::current_label());
  segments_.erase(std::find(segments_.begin(), segments_.end(), segment));
  delete segment;
  delete block;
}

void CachingAllocator::release_free_segments() {
  for (Pool* pool : {&small_pool_, &large_pool_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (!b->prev && !b->next) {
        it = pool->erase(it);
        release_segment(b);
      } else {
        ++it;
      }
    }
  }
}

Block* CachingAllocator::allocate(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  return allocate_locked(bytes);
}

Block* CachingAllocator::allocate_locked(size_t bytes) {
  const size_t rounded = round_request_bytes(bytes);
  const bool small = is_small_request(rounded);
  Pool& pool = small ? small_pool_ : large_pool_;
  Block* block = take_free_block(pool, rounded);
  if (!block) {
    const size_t segment_size = segment_bytes_for(rounded);
    block = new_segment(segment_size, small);
    if (!block) {
      release_free_segments();
      block = new_segment(segment_size, small);
    }
    if (!block) {
      stats_.num_ooms += 1;
      record(AllocEventKind::oom, 0, static_cast<int64_t>(bytes), MemoryScope::current_category(),
             MemoryScope::current_label());
      OutOfMemory::Report r{device_,
                            static_cast<int64_t>(bytes),
                            static_cast<int64_t>(segment_size),
                            MemoryScope::current_category(),
                            MemoryScope::current_label(),
                            stats_.category_allocated,
                            stats_.allocated,
                            stats_.reserved,
                            stats_.limit};
      throw OutOfMemory(std::move(r));
    }
  }
  const size_t remaining = block->size - rounded;
  const bool split = small ? remaining >= kMinBlockBytes : remaining > kSmallRequestBytes;
  if (split) {
    auto* rest = new Block;
    rest->size = remaining;
    rest->address = block->address + rounded;
    rest->offset = block->offset + rounded;
    rest->segment = block->segment;
    rest->prev = block;
    rest->next = block->next;
    if (block->next) block->next->prev = rest;
    block->next = rest;
    block->size = rounded;
    pool.insert(rest);
  }
  block->allocated = true;
  block->requested = bytes;
  block->category = MemoryScope::current_category();
  block->label = MemoryScope::current_label();
  block->shape.clear();
  block->id = ++next_block_id_;
  live_.insert(block);

  const int64_t size = static_cast<int64_t>(block->size);
  const int c = static_cast<int>(block->category);
  stats_.allocated += size;
  stats_.requested += static_cast<int64_t>(bytes);
  stats_.category_allocated[c] += size;
  stats_.category_peak[c] = std::max(stats_.category_peak[c], stats_.category_allocated[c]);
  stats_.active_blocks += 1;
  stats_.peak_active_blocks = std::max(stats_.peak_active_blocks, stats_.active_blocks);
  stats_.num_allocs += 1;
  record(AllocEventKind::alloc, block->address, size, block->category, block->label);
  on_allocated_grew(block->label);
  return block;
}

void CachingAllocator::on_allocated_grew(const std::string& label) {
  if (stats_.allocated <= stats_.peak_allocated) return;
  stats_.peak_allocated = stats_.allocated;
  stats_.at_peak = stats_.category_allocated;
  stats_.peak_label = label;
  if (snapshot_enabled_) snapshot_pending_ = true;
}

void CachingAllocator::take_snapshot_locked() const {
  if (!snapshot_pending_) return;
  snapshot_pending_ = false;
  std::vector<Block*> top(live_.begin(), live_.end());
  const size_t n = std::min(snapshot_top_n_, top.size());
  std::partial_sort(top.begin(), top.begin() + static_cast<long>(n), top.end(), [](const Block* a, const Block* b) {
    if (a->size != b->size) return a->size > b->size;
    return a->id < b->id;
  });
  peak_snapshot_.clear();
  for (size_t i = 0; i < n; ++i)
    peak_snapshot_.push_back({top[i]->label, top[i]->shape, top[i]->category, static_cast<int64_t>(top[i]->size)});
  std::map<std::string, int64_t> by_label;
  for (const Block* b : live_) by_label[b->label] += static_cast<int64_t>(b->size);
  peak_by_label_.clear();
  for (const auto& [label, bytes] : by_label) peak_by_label_.push_back({label, std::string(), Category::temporary, bytes});
}

void CachingAllocator::free(Block* block) {
  if (!block) return;
  std::lock_guard<std::mutex> lock(mutex_);
  take_snapshot_locked();  // the live set is still the peak's
  if (!block->allocated) throw std::logic_error("gc allocator: double free of a block labelled '" + block->label + "'");
  const int64_t size = static_cast<int64_t>(block->size);
  const int c = static_cast<int>(block->category);
  stats_.allocated -= size;
  stats_.requested -= static_cast<int64_t>(block->requested);
  stats_.category_allocated[c] -= size;
  stats_.active_blocks -= 1;
  stats_.num_frees += 1;
  live_.erase(block);
  block->allocated = false;
  block->requested = 0;
  record(AllocEventKind::free, block->address, size, block->category, block->label);

  Pool& pool = block->segment->small ? small_pool_ : large_pool_;
  if (block->prev && !block->prev->allocated) {
    Block* prev = block->prev;
    pool.erase(prev);  // before its size changes: the pool is ordered by size
    absorb_next(prev);
    block = prev;
  }
  if (block->next && !block->next->allocated) {
    pool.erase(block->next);
    absorb_next(block);
  }
  pool.insert(block);
}

void CachingAllocator::recategorize(Block* block, Category category, const std::string& label) {
  if (!block) return;
  std::lock_guard<std::mutex> lock(mutex_);
  take_snapshot_locked();
  const int64_t size = static_cast<int64_t>(block->size);
  stats_.category_allocated[static_cast<int>(block->category)] -= size;
  block->category = category;
  block->label = label;
  const int c = static_cast<int>(category);
  stats_.category_allocated[c] += size;
  stats_.category_peak[c] = std::max(stats_.category_peak[c], stats_.category_allocated[c]);
  record(AllocEventKind::recategorize, block->address, size, category, label);
}

void CachingAllocator::set_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.limit = bytes;
}

int64_t CachingAllocator::limit() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_.limit;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_segments();
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
  stats_.peak_active_blocks = stats_.active_blocks;
  stats_.peak_segments = stats_.segments;
  stats_.category_peak = stats_.category_allocated;
  stats_.at_peak = stats_.category_allocated;
  stats_.peak_label.clear();
  peak_snapshot_.clear();
  peak_by_label_.clear();
  snapshot_pending_ = false;
  if (snapshot_enabled_) {
    // The current moment is the peak until something grows past it.
    stats_.peak_allocated -= 1;
    on_allocated_grew(std::string());
  }
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::set_trace(bool enabled) {
  std::lock_guard<std::mutex> lock(mutex_);
  tracing_ = enabled;
}

std::vector<AllocEvent> CachingAllocator::trace() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

std::vector<std::string> CachingAllocator::trace_labels() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return labels_;
}

void CachingAllocator::clear_trace() {
  std::lock_guard<std::mutex> lock(mutex_);
  events_.clear();
}

void CachingAllocator::set_peak_snapshot(bool enabled, size_t top_n) {
  std::lock_guard<std::mutex> lock(mutex_);
  snapshot_enabled_ = enabled;
  snapshot_top_n_ = top_n;
}

std::vector<LiveBlock> CachingAllocator::peak_snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  take_snapshot_locked();
  return peak_snapshot_;
}

std::vector<LiveBlock> CachingAllocator::peak_bytes_by_label() const {
  std::lock_guard<std::mutex> lock(mutex_);
  take_snapshot_locked();
  return peak_by_label_;
}

std::vector<LiveBlock> CachingAllocator::live_blocks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LiveBlock> out;
  for (Block* b : live_) out.push_back({b->label, b->shape, b->category, static_cast<int64_t>(b->size)});
  return out;
}

int64_t CachingAllocator::outstanding_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_.allocated;
}

std::string CachingAllocator::leak_report() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (live_.empty()) return std::string();
  std::ostringstream s;
  s << live_.size() << " blocks outstanding on " << device_name(device_) << " ("
    << format_bytes(stats_.allocated) << "):\n";
  for (Block* b : live_)
    s << "  " << b->size << " B " << category_name(b->category) << " '" << b->label << "' " << b->shape << "\n";
  return s.str();
}

// ---- per-device instances and helpers ----------------------------------------

CachingAllocator& allocator_for(Device device) {
  static std::mutex mutex;
  static CachingAllocator* instances[3] = {nullptr, nullptr, nullptr};
  std::lock_guard<std::mutex> lock(mutex);
  const int i = static_cast<int>(device);
  if (!instances[i]) {
    // Never destroyed: tensors in static storage may outlive any destructor order.
    switch (device) {
      case Device::cpu: instances[i] = new CachingAllocator(make_host_backend()); break;
      case Device::meta: instances[i] = new CachingAllocator(make_meta_backend()); break;
      case Device::cuda: instances[i] = new CachingAllocator(make_cuda_backend()); break;
    }
  }
  return *instances[i];
}

std::string format_bytes(int64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  const double ab = std::fabs(b);
  if (ab >= double(1ll << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ll << 30));
  else if (ab >= double(1ll << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ll << 20));
  else if (ab >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  return buf;
}

int64_t parse_bytes(const std::string& text) {
  const std::string what = "invalid size '" + text + "' (examples: 4096, 512MiB, 24GB, 1.5GiB)";
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw std::invalid_argument(what);
  }
  if (!(value >= 0) || !std::isfinite(value)) throw std::invalid_argument(what);
  std::string unit = text.substr(pos);
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "kb") scale = 1e3;
  else if (unit == "mb") scale = 1e6;
  else if (unit == "gb") scale = 1e9;
  else if (unit == "tb") scale = 1e12;
  else if (unit == "kib") scale = 1024.0;
  else if (unit == "mib") scale = 1048576.0;
  else if (unit == "gib") scale = 1073741824.0;
  else if (unit == "tib") scale = 1099511627776.0;
  else throw std::invalid_argument(what);
  const double bytes = value * scale;
  // 2^63 and beyond do not fit an int64_t (llround would return INT64_MIN: no limit at all).
  if (!(bytes < 9223372036854775808.0))
    throw std::invalid_argument("size '" + text + "' is too large (at most 9223372036854775807 bytes, 8 EiB)");
  return static_cast<int64_t>(std::llround(bytes));
}

}  // namespace gc
