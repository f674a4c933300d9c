// kernels/cuda/launch.h: the launch shapes of the cuda kernels, in plain C++ so
// that the tests (built by g++) can size inputs that need more than one grid.
//
// Invariant: grids are capped at kMaxBlocks blocks; every kernel walks its items
// (elements, or rows with one warp each) in a grid-stride loop with 64-bit
// counters, so any count is covered, whatever the cap.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gc::cuda {

constexpr int kThreadsPerBlock = 256;
constexpr int kWarpsPerBlock = kThreadsPerBlock / 32;
// Grid-stride loops cover anything beyond this many blocks. Real GraphCast sizes
// go beyond (1,038,240 grid-node rows, 3,114,720 edge rows, hundreds of millions
// of elements); a test build may lower the cap (-DGC_CUDA_MAX_BLOCKS=3, say) so
// that small inputs run those later passes too. No result depends on the cap.
#ifdef GC_CUDA_MAX_BLOCKS
constexpr int64_t kMaxBlocks = GC_CUDA_MAX_BLOCKS;
static_assert(kMaxBlocks >= 1, "GC_CUDA_MAX_BLOCKS must be at least 1");
#else
constexpr int64_t kMaxBlocks = 65536;
#endif
// Items one capped grid covers in one pass: threads for element kernels, warps
// for row kernels.
constexpr int64_t kMaxGridThreads = kMaxBlocks * kThreadsPerBlock;
constexpr int64_t kMaxGridWarps = kMaxBlocks * kWarpsPerBlock;

inline unsigned blocks_for(int64_t work_items, int64_t items_per_block) {
  const int64_t blocks = (work_items + items_per_block - 1) / items_per_block;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxBlocks));
}
// One thread per element.
inline unsigned element_blocks(int64_t n) { return blocks_for(n, kThreadsPerBlock); }
// One warp per row.
inline unsigned row_blocks(int64_t rows) { return blocks_for(rows, kWarpsPerBlock); }

}  // namespace gc::cuda
