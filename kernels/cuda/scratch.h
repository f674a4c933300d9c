// kernels/cuda/scratch.h: the device scratch of the cuda kernels (fixed-order
// partial sums, the flag of all_finite, the verdict of the index checks), sized
// in plain C++ so that g++ and nvcc read the same figures.
//
// Invariant: the kernels keep no device memory of their own. The dispatch files
// (kernels/*.cpp) allocate each op's scratch through the caching allocator
// (category workspace) on cuda and, identically, on meta standing for cuda
// (meta_target() == cuda), so a dry run requests the bytes the real run
// requests, in the same order. The cuda entry points check the tensor they are
// given against the same functions, so the two sides cannot drift apart. The cpu
// kernels need no scratch: on cpu (and meta standing for cpu) nothing is allocated.
//
// Lifetime: the scratch is freed when the dispatch call returns, possibly before
// the kernels that use it have run. That is safe because gc runs every kernel and
// copy on one stream: whoever is handed the memory next uses it after them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "runtime/memory_scope.h"
#include "runtime/tensor.h"

namespace gc::cuda {

// ---- the launch constants the sizes depend on ---------------------------------------------

// Whole-range sums (reduce_common.h): one double partial per block, whatever the count.
constexpr int kSumBlocks = 1024;
// Many whole-range sums in one launch (sum_squares_many): up to kSumsPerLaunch
// ranges side by side, their pointers and counts passed by value in the kernel's
// parameter (16 bytes a range: well under CUDA's 4 KB of parameters), their
// partials [kSumsPerLaunch, kSumBlocks] doubles: 1 MiB, the most the small pool
// serves. A test build may lower the cap (-DGC_CUDA_SUMS_PER_LAUNCH=3) so that a
// few small tensors take several launches; results never depend on it.
#ifdef GC_CUDA_SUMS_PER_LAUNCH
constexpr int kSumsPerLaunch = GC_CUDA_SUMS_PER_LAUNCH;
static_assert(kSumsPerLaunch >= 1, "GC_CUDA_SUMS_PER_LAUNCH must be at least 1");
#else
constexpr int kSumsPerLaunch = 128;
#endif
// Column sums (column_sums.h): rows cut into kRowGroups groups, columns taken in
// passes of at most kPassColumns, one double partial per (sum, group, column of a pass).
constexpr int kRowGroups = 16;
constexpr int kPassColumns = 512;

// Columns of one pass of the column sums: the partials' row stride.
inline int64_t column_pass_width(int64_t cols) { return std::min<int64_t>(cols, kPassColumns); }

// ---- bytes per op (0: the cuda path needs none) ----------------------------------------------

// sum_all, mean_all, sum_squares, weighted_mse_forward: [kSumBlocks] doubles.
constexpr size_t whole_sum_scratch_bytes() { return kSumBlocks * sizeof(double); }
// sum_squares_many of `tensors` tensors: the partials of one launch,
// [min(tensors, kSumsPerLaunch), kSumBlocks] doubles, reused by the next launch
// (one stream: its partial sums run after the previous launch's finish).
inline size_t whole_sums_scratch_bytes(int64_t tensors) {
  return static_cast<size_t>(std::clamp<int64_t>(tensors, 0, kSumsPerLaunch)) * whole_sum_scratch_bytes();
}

// Column sums of `sums` simultaneous totals over an [R, cols] matrix:
// [sums, kRowGroups, column_pass_width(cols)] doubles (exact for f32 partials).
inline size_t column_sums_scratch_bytes(int sums, int64_t cols) {
  return static_cast<size_t>(sums) * kRowGroups * static_cast<size_t>(std::max<int64_t>(0, column_pass_width(cols))) *
         sizeof(double);
}
// sum_rows of x [R, cols] (runs for R = 0 too: it writes zeros).
inline size_t sum_rows_scratch_bytes(int64_t cols) { return column_sums_scratch_bytes(1, cols); }
// LayerNorm's parameter gradients (layernorm.cu) sum each column in the cpu's
// order (kernels/cpu/layernorm.cpp, kRowBlock): blocks of kLayerNormRowBlock
// rows, one partial per (sum, block, column), folded in block order. Rows of at
// most kLayerNormFusedColumns columns fit one warp's registers (16 columns per
// lane), so the kernel that writes grad_x also sums the block partials.
constexpr int64_t kLayerNormRowBlock = 256;
constexpr int64_t kLayerNormFusedColumns = 512;
inline int64_t layernorm_row_blocks(int64_t rows) { return (rows + kLayerNormRowBlock - 1) / kLayerNormRowBlock; }
// layernorm_backward of x [rows, cols]: the block partials of grad_gamma and
// grad_beta, [2, ceil(rows / kLayerNormRowBlock), cols] in x's accumulation type
// (f32; f64 for f64 x), so the scratch grows with R: 1/256 of x's elements per
// sum. None when there is no row (the kernels do not run).
// With the gradient of a bias added into x (layernorm_backward_bias): rows of at
// most kLayerNormFusedColumns sum grad_x's columns as a third partial ([3, ...]);
// wider rows run sum_rows after the backward, in the same scratch.
inline size_t layernorm_backward_scratch_bytes(int64_t rows, int64_t cols, DType x_dtype, bool input_bias = false) {
  if (rows <= 0 || cols <= 0) return 0;
  const size_t sums = input_bias && cols <= kLayerNormFusedColumns ? 3 : 2;
  const size_t partials =
      sums * static_cast<size_t>(layernorm_row_blocks(rows)) * static_cast<size_t>(cols) * dtype_size(accumulation_dtype(x_dtype));
  return input_bias && cols > kLayerNormFusedColumns ? std::max(partials, sum_rows_scratch_bytes(cols)) : partials;
}

// all_finite of n elements: one 32-bit flag, set by any thread that meets a
// non-finite value (an integer atomic OR: the answer is independent of timing).
inline size_t all_finite_scratch_bytes(int64_t n) { return n > 0 ? sizeof(uint32_t) : 0; }

// The range checks of the graph ops (gather, segment sums): one verdict of
// 16 bytes (smallest bad position, first and last offset), shared by the checks
// of one op, which run one after the other.
constexpr size_t index_check_scratch_bytes() { return 16; }

// ---- allocation and checks --------------------------------------------------------------------

// True when an op on `device` runs the cuda kernels, or stands for them in a dry run.
inline bool allocates_cuda_scratch(Device device) {
  return device == Device::cuda || (device == Device::meta && meta_target() == Device::cuda);
}

// The scratch of one op call: `bytes` (rounded up to 4-byte words, i32) on
// `device`, under the caller's label in category workspace; undefined when
// `device` does not run the cuda kernels or `bytes` is 0.
inline Tensor allocate_scratch(Device device, size_t bytes) {
  if (bytes == 0 || !allocates_cuda_scratch(device)) return Tensor();
  MemoryScope category(Category::workspace);
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32, device);
}

// The kernels read their scratch as doubles and 64-bit atomics: a scratch tensor
// is i32, so a view into one may start 4 bytes off that alignment (the allocator's
// own blocks are 512-byte aligned).
constexpr size_t kScratchAlignment = sizeof(double);

// Throws std::invalid_argument unless scratch is a cuda tensor of at least
// `bytes` starting on a kScratchAlignment boundary (nothing is required when
// bytes is 0).
inline void require_scratch(const char* op, const Tensor& scratch, size_t bytes) {
  if (bytes == 0) return;
  const size_t have = scratch.defined() ? scratch.nbytes() : 0;
  if (have < bytes || scratch.device() != Device::cuda)
    throw std::invalid_argument(std::string(op) + ": cuda scratch of " + std::to_string(bytes) + " bytes needed, got " +
                                (scratch.defined() ? scratch.describe() : std::string("none")));
  if (reinterpret_cast<uintptr_t>(scratch.data()) % kScratchAlignment != 0)
    throw std::invalid_argument(std::string(op) + ": cuda scratch " + scratch.describe() + " does not start on a " +
                                std::to_string(kScratchAlignment) + "-byte boundary");
}

}  // namespace gc::cuda
