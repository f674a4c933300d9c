// test_allocator.cpp: the caching allocator's policy, stats, limit, scopes, and
// the central promise in miniature: cpu and meta give identical figures after
// every event of the same request sequence.
#include <gtest/gtest.h>

#include <random>

#include "runtime/allocator.h"
#include "runtime/tensor.h"

using namespace gc;

namespace {
constexpr size_t MiB = size_t(1) << 20;
std::unique_ptr<CachingAllocator> meta_allocator() {
  return std::make_unique<CachingAllocator>(make_meta_backend());
}
}  // namespace

TEST(Allocator, RoundingTable) {
  EXPECT_EQ(round_request_bytes(0), 512u);
  EXPECT_EQ(round_request_bytes(1), 512u);
  EXPECT_EQ(round_request_bytes(511), 512u);
  EXPECT_EQ(round_request_bytes(512), 512u);
  EXPECT_EQ(round_request_bytes(513), 1024u);
  EXPECT_EQ(round_request_bytes(MiB), MiB);
  EXPECT_EQ(round_request_bytes(MiB + 1), MiB + 512);
  EXPECT_EQ(round_request_bytes(10 * MiB - 1), 10 * MiB);
  EXPECT_EQ(round_request_bytes(10 * MiB), 10 * MiB);
}

TEST(Allocator, PoolAndSegmentSizes) {
  EXPECT_TRUE(is_small_request(MiB));
  EXPECT_FALSE(is_small_request(MiB + 512));
  EXPECT_EQ(segment_bytes_for(512), 2 * MiB);
  EXPECT_EQ(segment_bytes_for(MiB), 2 * MiB);
  EXPECT_EQ(segment_bytes_for(MiB + 512), 20 * MiB);
  EXPECT_EQ(segment_bytes_for(10 * MiB - 512), 20 * MiB);
  EXPECT_EQ(segment_bytes_for(10 * MiB), 10 * MiB);
  EXPECT_EQ(segment_bytes_for(10 * MiB + 512), 12 * MiB);
  EXPECT_EQ(segment_bytes_for(21 * MiB), 22 * MiB);
}

TEST(Allocator, SmallRequestsShareOneSegment) {
  auto a = meta_allocator();
  Block* x = a->allocate(100);
  Block* y = a->allocate(1000);
  auto s = a->stats();
  EXPECT_EQ(s.segments, 1);
  EXPECT_EQ(s.reserved, int64_t(2 * MiB));
  EXPECT_EQ(s.allocated, 512 + 1024);
  EXPECT_EQ(y->address, x->address + 512);  // carved in order from the segment
  a->free(x);
  a->free(y);
  EXPECT_EQ(a->stats().allocated, 0);
  EXPECT_EQ(a->stats().reserved, int64_t(2 * MiB));  // cached, not returned
  a->empty_cache();
  EXPECT_EQ(a->stats().reserved, 0);
  EXPECT_EQ(a->stats().segments, 0);
}

TEST(Allocator, SplitThresholds) {
  auto a = meta_allocator();
  // Large pool: 19 MiB out of a 20 MiB segment leaves exactly 1 MiB: not > 1 MiB, no split.
  Block* big = a->allocate(19 * MiB);
  EXPECT_EQ(big->size, 20 * MiB);
  EXPECT_EQ(a->stats().allocated, int64_t(20 * MiB));
  a->free(big);
  // 18 MiB leaves 2 MiB > 1 MiB: split.
  Block* b2 = a->allocate(18 * MiB);
  EXPECT_EQ(b2->size, 18 * MiB);
  EXPECT_EQ(a->stats().segments, 1);
  a->free(b2);
  // Small pool: a remainder of exactly 512 B splits.
  auto s = meta_allocator();
  Block* nearly = s->allocate(2 * MiB - 512);  // > 1 MiB: large pool actually
  EXPECT_EQ(s->stats().reserved, int64_t(20 * MiB));
  s->free(nearly);
  Block* m = s->allocate(MiB);  // small pool, 2 MiB segment, remainder 1 MiB splits
  Block* m2 = s->allocate(MiB - 512);
  Block* m3 = s->allocate(512);  // the last 512 B of the same segment
  EXPECT_EQ(m3->segment, m->segment);
  EXPECT_EQ(m2->segment, m->segment);
  Block* m4 = s->allocate(512);  // needs a new small segment
  EXPECT_NE(m4->segment, m->segment);
  for (Block* b : {m, m2, m3, m4}) s->free(b);
}

TEST(Allocator, MergeAndReuse) {
  auto a = meta_allocator();
  Block* x = a->allocate(4096);
  Block* y = a->allocate(4096);
  Block* z = a->allocate(4096);
  const uintptr_t x_address = x->address;
  a->free(x);
  a->free(z);
  a->free(y);  // merges with both neighbours and the segment tail
  Block* whole = a->allocate(MiB);  // the merged segment serves a 1 MiB request
  EXPECT_EQ(whole->address, x_address);
  EXPECT_EQ(a->stats().segments, 1);
  a->free(whole);
  // Reuse: a freed block of the right size is taken again (best fit).
  Block* p = a->allocate(8192);
  Block* q = a->allocate(3 * 512);
  Block* r = a->allocate(8192);
  const uintptr_t q_address = q->address;
  a->free(q);
  Block* again = a->allocate(3 * 512);
  EXPECT_EQ(again->address, q_address);
  for (Block* b : {p, r, again}) a->free(b);
}

TEST(Allocator, BestFitPicksSmallestSufficient) {
  auto a = meta_allocator();
  std::vector<Block*> keep;
  Block* hole_big = a->allocate(16384);
  keep.push_back(a->allocate(512));
  Block* hole_small = a->allocate(4096);
  keep.push_back(a->allocate(512));
  const uintptr_t small_address = hole_small->address;
  a->free(hole_big);
  a->free(hole_small);
  Block* got = a->allocate(4000);
  EXPECT_EQ(got->address, small_address);
  a->free(got);
  for (Block* b : keep) a->free(b);
}

TEST(Allocator, PeakAndReset) {
  auto a = meta_allocator();
  Block* x = a->allocate(30 * MiB);
  Block* y = a->allocate(512);
  a->free(x);
  auto s = a->stats();
  EXPECT_EQ(s.peak_allocated, int64_t(30 * MiB + 512));
  EXPECT_EQ(s.allocated, 512);
  a->reset_peak();
  EXPECT_EQ(a->stats().peak_allocated, 512);
  EXPECT_EQ(a->stats().peak_reserved, a->stats().reserved);
  a->free(y);
}

TEST(Allocator, FragmentationLeavesReservedUnusable) {
  auto a = meta_allocator();
  // Fill one 20 MiB segment with 4 MiB blocks, free every other one: 8 MiB free
  // in 4 MiB holes cannot serve an 8 MiB request.
  std::vector<Block*> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(a->allocate(4 * MiB));
  EXPECT_EQ(a->stats().segments, 1);
  a->free(blocks[1]);
  a->free(blocks[3]);
  auto before = a->stats();
  EXPECT_EQ(before.reserved - before.allocated, int64_t(8 * MiB));
  Block* eight = a->allocate(8 * MiB);
  EXPECT_EQ(a->stats().segments, 2);  // a new segment was needed
  a->free(eight);
  for (int i : {0, 2, 4}) a->free(blocks[static_cast<size_t>(i)]);
}

TEST(Allocator, LimitThrowsOutOfMemoryWithReport) {
  auto a = meta_allocator();
  a->set_limit(int64_t(40 * MiB));
  Block* x;
  {
    MemoryScope scope(Category::parameter, "encoder.weights");
    x = a->allocate(30 * MiB);
  }
  try {
    MemoryScope scope(Category::activation, "processor.3.edge_mlp");
    a->allocate(12 * MiB);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& oom) {
    const auto& r = oom.report();
    EXPECT_EQ(r.requested_bytes, int64_t(12 * MiB));
    EXPECT_EQ(r.segment_bytes, int64_t(12 * MiB));
    EXPECT_EQ(r.label, "processor.3.edge_mlp");
    EXPECT_EQ(r.category, Category::activation);
    EXPECT_EQ(r.limit, int64_t(40 * MiB));
    EXPECT_EQ(r.reserved, int64_t(30 * MiB));
    EXPECT_EQ(r.category_allocated[static_cast<int>(Category::parameter)], int64_t(30 * MiB));
    EXPECT_NE(std::string(oom.what()).find("processor.3.edge_mlp"), std::string::npos);
  }
  EXPECT_EQ(a->stats().num_ooms, 1);
  a->free(x);
}

TEST(Allocator, FailureReleasesCachedSegmentsAndRetries) {
  auto a = meta_allocator();
  a->set_limit(int64_t(40 * MiB));
  Block* x = a->allocate(20 * MiB);
  a->free(x);  // 20 MiB cached, too small for the next request
  Block* y = a->allocate(22 * MiB);  // 20 + 22 > 40: release the cache, then fits
  EXPECT_EQ(a->stats().reserved, int64_t(22 * MiB));
  EXPECT_EQ(a->stats().num_segment_frees, 1);
  a->free(y);
}

TEST(Allocator, ScopesLabelBlocksInnermostWins) {
  auto a = meta_allocator();
  Block *p, *q, *r;
  {
    MemoryScope outer(Category::activation, "processor");
    MemoryScope layer("7");
    {
      MemoryScope inner(Category::temporary, "edge_mlp");
      p = a->allocate(100);
    }
    q = a->allocate(100);
    {
      LabelOverride over("decoder.head");
      r = a->allocate(100);
    }
  }
  EXPECT_EQ(p->label, "processor.7.edge_mlp");
  EXPECT_EQ(p->category, Category::temporary);
  EXPECT_EQ(q->label, "processor.7");
  EXPECT_EQ(q->category, Category::activation);
  EXPECT_EQ(r->label, "decoder.head");
  EXPECT_EQ(MemoryScope::current_label(), "");
  auto s = a->stats();
  EXPECT_EQ(s.category_allocated[static_cast<int>(Category::temporary)], 512);
  EXPECT_EQ(s.category_allocated[static_cast<int>(Category::activation)], 1024);
  a->recategorize(p, Category::activation, "saved");
  s = a->stats();
  EXPECT_EQ(s.category_allocated[static_cast<int>(Category::temporary)], 0);
  EXPECT_EQ(s.category_allocated[static_cast<int>(Category::activation)], 1536);
  for (Block* b : {p, q, r}) a->free(b);
}

TEST(Allocator, TraceRecordsEvents) {
  auto a = meta_allocator();
  a->set_trace(true);
  Block* x;
  {
    MemoryScope s(Category::input, "batch");
    x = a->allocate(1000);
  }
  a->free(x);
  a->empty_cache();
  auto events = a->trace();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, AllocEventKind::segment_alloc);
  EXPECT_EQ(events[1].kind, AllocEventKind::alloc);
  EXPECT_EQ(events[1].bytes, 1024);
  EXPECT_EQ(events[1].category, Category::input);
  EXPECT_EQ(a->trace_labels()[events[1].label_id], "batch");
  EXPECT_EQ(events[2].kind, AllocEventKind::free);
  EXPECT_EQ(events[3].kind, AllocEventKind::segment_free);
  EXPECT_LE(events[0].time_us, events[3].time_us);
}

TEST(Allocator, NoLeakAfterAllFrees) {
  auto a = meta_allocator();
  std::vector<Block*> blocks;
  for (int i = 1; i < 200; ++i) blocks.push_back(a->allocate(static_cast<size_t>(i) * 3001));
  EXPECT_FALSE(a->leak_report().empty());
  for (Block* b : blocks) a->free(b);
  EXPECT_EQ(a->outstanding_bytes(), 0);
  EXPECT_EQ(a->stats().active_blocks, 0);
  EXPECT_TRUE(a->leak_report().empty());
}

TEST(Allocator, DoubleFreeIsAnError) {
  auto a = meta_allocator();
  Block* x = a->allocate(10);
  Block* keep = a->allocate(10);  // keeps x's block from merging away
  a->free(x);
  EXPECT_THROW(a->free(x), std::logic_error);
  a->free(keep);
}

// The dry run equals the real run: a seeded sequence of 10,000 allocations and
// frees of mixed sizes, on host memory and on the meta address space.
TEST(Allocator, CpuAndMetaIdenticalAfterEveryEvent) {
  CachingAllocator host(make_host_backend());
  CachingAllocator meta(make_meta_backend());
  host.set_limit(int64_t(400 * MiB));
  meta.set_limit(int64_t(400 * MiB));
  std::mt19937_64 rng(12345);
  std::vector<Block*> live_host, live_meta;
  int ooms = 0;
  for (int event = 0; event < 10000; ++event) {
    const bool do_free = !live_host.empty() && (rng() % 100) < 45;
    if (do_free) {
      size_t i = rng() % live_host.size();
      host.free(live_host[i]);
      meta.free(live_meta[i]);
      live_host.erase(live_host.begin() + static_cast<long>(i));
      live_meta.erase(live_meta.begin() + static_cast<long>(i));
    } else {
      size_t bytes;
      switch (rng() % 4) {
        case 0: bytes = 1 + rng() % 4096; break;
        case 1: bytes = 1 + rng() % MiB; break;
        case 2: bytes = MiB + rng() % (9 * MiB); break;
        default: bytes = 10 * MiB + rng() % (30 * MiB); break;
      }
      Block *h = nullptr, *m = nullptr;
      bool host_oom = false, meta_oom = false;
      try { h = host.allocate(bytes); } catch (const OutOfMemory&) { host_oom = true; }
      try { m = meta.allocate(bytes); } catch (const OutOfMemory&) { meta_oom = true; }
      ASSERT_EQ(host_oom, meta_oom) << "event " << event;
      if (host_oom) {
        ++ooms;
      } else {
        live_host.push_back(h);
        live_meta.push_back(m);
        ASSERT_EQ(h->size, m->size);
        ASSERT_EQ(h->offset, m->offset);
      }
    }
    if (event % 1000 == 999) {
      host.empty_cache();
      meta.empty_cache();
    }
    auto hs = host.stats(), ms = meta.stats();
    ASSERT_EQ(hs.allocated, ms.allocated) << "event " << event;
    ASSERT_EQ(hs.reserved, ms.reserved) << "event " << event;
    ASSERT_EQ(hs.peak_allocated, ms.peak_allocated) << "event " << event;
    ASSERT_EQ(hs.peak_reserved, ms.peak_reserved) << "event " << event;
    ASSERT_EQ(hs.segments, ms.segments) << "event " << event;
    ASSERT_EQ(hs.active_blocks, ms.active_blocks) << "event " << event;
  }
  EXPECT_GT(ooms, 0) << "the limit should have been reached at least once";
  for (Block* b : live_host) host.free(b);
  for (Block* b : live_meta) meta.free(b);
  EXPECT_EQ(host.outstanding_bytes(), 0);
}

TEST(Allocator, ParseAndFormatBytes) {
  EXPECT_EQ(parse_bytes("4096"), 4096);
  EXPECT_EQ(parse_bytes("512MiB"), int64_t(512) << 20);
  EXPECT_EQ(parse_bytes("24GB"), int64_t(24000000000));
  EXPECT_EQ(parse_bytes("1.5GiB"), int64_t(3) << 29);
  EXPECT_EQ(parse_bytes("80gb"), int64_t(80000000000));
  EXPECT_THROW(parse_bytes("12 parsecs"), std::invalid_argument);
  EXPECT_THROW(parse_bytes("-5GB"), std::invalid_argument);
  EXPECT_THROW(parse_bytes(""), std::invalid_argument);
  // Beyond int64_t: refused, never wrapped to a negative (no) limit.
  EXPECT_THROW(parse_bytes("1e10TB"), std::invalid_argument);
  EXPECT_THROW(parse_bytes("8EiB"), std::invalid_argument);
  EXPECT_THROW(parse_bytes("9223372036854775808"), std::invalid_argument);
  EXPECT_EQ(parse_bytes("8000000TiB"), int64_t(8000000) << 40);
  // Found by tests/fuzz/fuzz_options through --mem-budget 23e300GB:
  EXPECT_THROW(parse_bytes("23e300GB"), std::invalid_argument);
  EXPECT_THROW(parse_bytes("8589934592GiB"), std::invalid_argument);  // 2^63
  EXPECT_EQ(parse_bytes("8589934591GiB"), INT64_MAX - (int64_t(1) << 30) + 1);  // 2^63 - 2^30
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(int64_t(3) << 29), "1.50 GiB");
}
