// kernels/cuda/column_sums.h: sums over the rows of an [R, C] matrix, column by
// column, for sum_rows (bias gradients) and LayerNorm's parameter gradients
// (nvcc only).
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
// The partials live in a fixed-size device array of the calling file (kSums x
// kRowGroups x kPassColumns doubles, exact for f32 partials; 64 KiB per sum),
// whatever the tensor sizes: wider matrices run in passes of kPassColumns
// columns. Kernels run on one stream, so a pass's two kernels finish before the
// next use of the array.
#pragma once

#include "kernels/cuda/common.h"

namespace gc::cuda {
namespace {

constexpr int kRowGroups = 16;
constexpr int kPassColumns = 512;
constexpr int kColumnTile = 32;
constexpr int kRowLanes = 32;

// Doubles of partials that kSums simultaneous column sums need.
constexpr int column_partial_slots(int sums) { return sums * kRowGroups * kPassColumns; }

__device__ __forceinline__ int64_t partial_index(int sum, int group, int64_t column_in_pass) {
  return (static_cast<int64_t>(sum) * kRowGroups + group) * kPassColumns + column_in_pass;
}

// Pass 1. Term: __device__ void operator()(int64_t r, int64_t c, Acc (&terms)[kSums]) const.
template <int kSums, class Acc, class Term>
__global__ void __launch_bounds__(kColumnTile * kRowLanes)
    column_partials_kernel(double* partials,  // [kSums, kRowGroups, kPassColumns]
                           int64_t rows, int64_t cols, int64_t first_column, Term term) {
  __shared__ Acc lane_totals[kSums][kRowLanes][kColumnTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, group = blockIdx.y;
  const int64_t column_in_pass = static_cast<int64_t>(blockIdx.x) * kColumnTile + tx;
  const int64_t c = first_column + column_in_pass;
  const bool active = column_in_pass < kPassColumns && c < cols;
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
      partials[partial_index(s, group, column_in_pass)] = static_cast<double>(lane_totals[s][0][tx]);
  }
}

// Pass 2. Finish: __device__ void operator()(int64_t c, const Acc (&totals)[kSums]) const.
template <int kSums, class Acc, class Finish>
__global__ void column_totals_kernel(const double* partials,  // [kSums, kRowGroups, kPassColumns]
                                     int64_t cols, int64_t first_column, Finish finish) {
  const int64_t column_in_pass = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c = first_column + column_in_pass;
  if (column_in_pass >= kPassColumns || c >= cols) return;
  Acc totals[kSums];
#pragma unroll
  for (int s = 0; s < kSums; ++s) {
    Acc total = 0;
    for (int group = 0; group < kRowGroups; ++group)
      total += static_cast<Acc>(partials[partial_index(s, group, column_in_pass)]);
    totals[s] = total;
  }
  finish(c, totals);
}

// Runs both passes over every column. partials: the calling file's device array of
// column_partial_slots(kSums) doubles.
template <int kSums, class Acc, class Term, class Finish>
void launch_column_sums(double* partials, int64_t rows, int64_t cols, Term term, Finish finish) {
  for (int64_t first_column = 0; first_column < cols; first_column += kPassColumns) {
    const int64_t width = std::min<int64_t>(kPassColumns, cols - first_column);
    const dim3 grid(static_cast<unsigned>((width + kColumnTile - 1) / kColumnTile), kRowGroups);
    const dim3 block(kColumnTile, kRowLanes);
    column_partials_kernel<kSums, Acc><<<grid, block>>>(partials, rows, cols, first_column, term);
    GC_CUDA_CHECK(cudaGetLastError());
    column_totals_kernel<kSums, Acc><<<static_cast<unsigned>((width + kThreadsPerBlock - 1) / kThreadsPerBlock),
                                       kThreadsPerBlock>>>(partials, cols, first_column, finish);
    GC_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace
}  // namespace gc::cuda
