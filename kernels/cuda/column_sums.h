// kernels/cuda/column_sums.h: sums over the rows of an [R, C] matrix, column by
// column, for sum_rows (bias gradients) (nvcc only). LayerNorm's parameter
// gradients sum in the cpu's order instead (layernorm.cu).
//
// Invariant: the order of every addition depends on (R, C) alone, with no
// atomics. The rows are cut into kRowGroups contiguous groups (a partition fixed
// by R). Pass 1: block (tile, group) owns kColumnTile columns of one group; its
// kRowLanes row lanes take rows begin + lane, begin + lane + kRowLanes, ... in
// sequence, and the lane totals combine by a fixed tree into
// partials[sum][group][column]. Pass 2: one thread per column adds its group
// partials in group order and hands the totals to `finish`. Row groups put
// C/kColumnTile * kRowGroups blocks to work (256 for C = 512), where one block per
// column tile would leave most of the GPU idle on a few hundred columns.
//
// The partials live in the caller's scratch (scratch.h: column_sums_scratch_bytes,
// allocated through the caching allocator): kSums x kRowGroups x pass width
// doubles (exact for f32 partials), where the pass width is min(C, kPassColumns):
// at most 64 KiB per sum, whatever the tensor sizes; wider matrices run in
// passes. Kernels run on one stream, so a pass's two kernels finish before the
// next pass reuses the scratch.
#pragma once

#include "kernels/cuda/common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

constexpr int kColumnTile = 32;
constexpr int kRowLanes = 32;

// pass_width: the partials' row stride, column_pass_width(C).
__device__ __forceinline__ int64_t partial_index(int sum, int group, int64_t column_in_pass, int64_t pass_width) {
  return (static_cast<int64_t>(sum) * kRowGroups + group) * pass_width + column_in_pass;
}

// Pass 1. Term: __device__ void operator()(int64_t r, int64_t c, Acc (&terms)[kSums]) const.
template <int kSums, class Acc, class Term>
__global__ void __launch_bounds__(kColumnTile * kRowLanes)
    column_partials_kernel(double* partials,  // [kSums, kRowGroups, pass_width]
                           int64_t rows, int64_t cols, int64_t first_column, int64_t pass_width, Term term) {
  __shared__ Acc lane_totals[kSums][kRowLanes][kColumnTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, group = blockIdx.y;
  const int64_t column_in_pass = static_cast<int64_t>(blockIdx.x) * kColumnTile + tx;
  const int64_t c = first_column + column_in_pass;
  const bool active = column_in_pass < pass_width && c < cols;
  const int64_t rows_per_group = (rows + kRowGroups - 1) / kRowGroups;
  const int64_t begin = min(rows, group * rows_per_group), end = min(rows, begin + rows_per_group);
  Acc sums[kSums];
#pragma unroll
  for (int s = 0; s < kSums; ++s) sums[s] = 0;
  if (active) {
#pragma unroll 4
    for (int64_t r = begin + ty; r < end; r += kRowLanes) {
      Acc terms[kSums];
      term(r, c, terms);
#pragma unroll
      for (int s = 0; s < kSums; ++s) sums[s] += terms[s];
    }
  }
#pragma unroll
  for (int s = 0; s < kSums; ++s) lane_totals[s][ty][tx] = sums[s];
  __syncthreads();
  for (int stride = kRowLanes / 2; stride > 0; stride >>= 1) {
    if (ty < stride) {
#pragma unroll
      for (int s = 0; s < kSums; ++s) lane_totals[s][ty][tx] += lane_totals[s][ty + stride][tx];
    }
    __syncthreads();
  }
  if (ty == 0 && active) {
#pragma unroll
    for (int s = 0; s < kSums; ++s)
      partials[partial_index(s, group, column_in_pass, pass_width)] = static_cast<double>(lane_totals[s][0][tx]);
  }
}

// Pass 2. Finish: __device__ void operator()(int64_t c, const Acc (&totals)[kSums]) const.
template <int kSums, class Acc, class Finish>
__global__ void column_totals_kernel(const double* partials,  // [kSums, kRowGroups, pass_width]
                                     int64_t cols, int64_t first_column, int64_t pass_width, Finish finish) {
  const int64_t column_in_pass = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c = first_column + column_in_pass;
  if (column_in_pass >= pass_width || c >= cols) return;
  Acc totals[kSums];
#pragma unroll
  for (int s = 0; s < kSums; ++s) {
    Acc total = 0;
    for (int group = 0; group < kRowGroups; ++group)
      total += static_cast<Acc>(partials[partial_index(s, group, column_in_pass, pass_width)]);
    totals[s] = total;
  }
  finish(c, totals);
}

// Runs both passes over every column. scratch: at least
// column_sums_scratch_bytes(kSums, cols) on the device (checked by the caller).
template <int kSums, class Acc, class Term, class Finish>
void launch_column_sums(const Tensor& scratch, int64_t rows, int64_t cols, Term term, Finish finish) {
  if (cols <= 0) return;
  double* partials = static_cast<double*>(scratch.data());  // [kSums, kRowGroups, pass_width]
  const int64_t pass_width = column_pass_width(cols);
  for (int64_t first_column = 0; first_column < cols; first_column += kPassColumns) {
    const int64_t width = std::min<int64_t>(kPassColumns, cols - first_column);
    const dim3 grid(static_cast<unsigned>((width + kColumnTile - 1) / kColumnTile), kRowGroups);
    const dim3 block(kColumnTile, kRowLanes);
    column_partials_kernel<kSums, Acc><<<grid, block>>>(partials, rows, cols, first_column, pass_width, term);
    GC_CUDA_CHECK(cudaGetLastError());
    column_totals_kernel<kSums, Acc><<<static_cast<unsigned>((width + kThreadsPerBlock - 1) / kThreadsPerBlock),
                                       kThreadsPerBlock>>>(partials, cols, first_column, pass_width, finish);
    GC_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace
}  // namespace gc::cuda
