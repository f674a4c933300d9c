// kernels/cuda/reduce_common.h: the fixed-order sums every cuda reduction uses
// (reduce.cu, loss.cu; nvcc only).
//
// Invariant: the order of every floating-point addition depends only on the
// number of items, never on timing: no atomics, no dependence on which block
// finishes first. A whole-range sum cuts the items into kSumBlocks contiguous
// chunks (a partition fixed by the count alone); block b sums chunk b (thread t
// takes items t, t + kSumThreads, ... in sequence, then a fixed tree over the
// threads) into partial b; one block then sums the partials by the same tree.
// The partials live in the caller's scratch (scratch.h: whole_sum_scratch_bytes,
// allocated through the caching allocator), stored as double: exact for f32
// partials too.
#pragma once

#include "kernels/cuda/common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

constexpr int kSumThreads = 256;

// Pass 1. Item: __device__ Acc operator()(int64_t i) const, for i in [0, num_items).
template <class Acc, class Item>
__global__ void __launch_bounds__(kSumThreads) partial_sums_kernel(double* partials,  // [kSumBlocks]
                                                                   int64_t num_items, Item item) {
  __shared__ Acc warp_totals[32];
  const int64_t per_block = (num_items + kSumBlocks - 1) / kSumBlocks;
  const int64_t begin = min(num_items, static_cast<int64_t>(blockIdx.x) * per_block);
  const int64_t end = min(num_items, begin + per_block);
  Acc sum = 0;
#pragma unroll 4
  for (int64_t i = begin + threadIdx.x; i < end; i += kSumThreads) sum += item(i);
  const Acc total = block_sum(sum, warp_totals);
  if (threadIdx.x == 0) partials[blockIdx.x] = static_cast<double>(total);
}

// Pass 2, one block. Finish: __device__ void operator()(Acc total) const.
template <class Acc, class Finish>
__global__ void __launch_bounds__(kSumThreads) finish_sum_kernel(const double* partials,  // [kSumBlocks]
                                                                  Finish finish) {
  __shared__ Acc warp_totals[32];
  Acc sum = 0;
  for (int b = threadIdx.x; b < kSumBlocks; b += kSumThreads) sum += static_cast<Acc>(partials[b]);
  const Acc total = block_sum(sum, warp_totals);
  if (threadIdx.x == 0) finish(total);
}

// Sums item(i) over [0, num_items) in the fixed order above and hands the total
// to finish on the device. num_items may be 0 (the total is then 0). scratch:
// at least whole_sum_scratch_bytes() on the device (checked by the caller).
template <class Acc, class Item, class Finish>
void launch_fixed_order_sum(const Tensor& scratch, int64_t num_items, Item item, Finish finish) {
  double* partials = static_cast<double*>(scratch.data());  // [kSumBlocks]
  partial_sums_kernel<Acc><<<kSumBlocks, kSumThreads>>>(partials, num_items, item);
  GC_CUDA_CHECK(cudaGetLastError());
  finish_sum_kernel<Acc><<<1, kSumThreads>>>(partials, finish);
  GC_CUDA_CHECK(cudaGetLastError());
}

// Writes total / divisor into out[0] (divisor 1 for a plain sum: exact).
template <class Acc>
struct StoreQuotient {
  Acc* out;  // [1]
  Acc divisor;
  __device__ void operator()(Acc total) const { out[0] = total / divisor; }
};

}  // namespace
}  // namespace gc::cuda
