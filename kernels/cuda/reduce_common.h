// kernels/cuda/reduce_common.h: the fixed-order sums every cuda reduction uses
// (reduce.cu, loss.cu; nvcc only).
//
// Invariant: the order of every floating-point addition depends only on the
// number of items, never on timing: no atomics, no dependence on which block
// finishes first. A whole-range sum cuts the items into kSumBlocks contiguous
// chunks (a partition fixed by the count alone); block b sums chunk b (thread t
// takes items t, t + kSumThreads, ... in sequence, then a fixed tree over the
// threads) into partial b; one block then sums the partials by the same tree.
// Several ranges summed in one launch (launch_fixed_order_sums: a grid row per
// range) take exactly that order each, so a range's total has the same bits
// alone or beside others.
// The partials live in the caller's scratch (scratch.h: whole_sum_scratch_bytes,
// allocated through the caching allocator), stored as double: exact for f32
// partials too.
#pragma once

#include "kernels/cuda/common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

constexpr int kSumThreads = 256;

// The two steps every fixed-order sum takes, shared by the kernels below so that
// one range summed alone or beside others gives the same bits.
//
// Partial `block` of item(i) over [0, num_items): thread t of the block sums its
// items of chunk `block` in sequence, then the block's tree; written by thread 0.
template <class Acc, class Item>
__device__ __forceinline__ void block_partial_sum(double* partial, int64_t num_items, int64_t block, const Item& item,
                                                  Acc* warp_totals) {
  const int64_t per_block = (num_items + kSumBlocks - 1) / kSumBlocks;
  const int64_t begin = min(num_items, block * per_block);
  const int64_t end = min(num_items, begin + per_block);
  Acc sum = 0;
#pragma unroll 4
  for (int64_t i = begin + threadIdx.x; i < end; i += kSumThreads) sum += item(i);
  const Acc total = block_sum(sum, warp_totals);
  if (threadIdx.x == 0) *partial = static_cast<double>(total);
}

// The total of kSumBlocks partials by the same tree (every thread returns it;
// thread 0's is the one to store).
template <class Acc>
__device__ __forceinline__ Acc sum_of_partials(const double* partials, Acc* warp_totals) {  // [kSumBlocks]
  Acc sum = 0;
  for (int b = threadIdx.x; b < kSumBlocks; b += kSumThreads) sum += static_cast<Acc>(partials[b]);
  return block_sum(sum, warp_totals);
}

// Pass 1. Item: __device__ Acc operator()(int64_t i) const, for i in [0, num_items).
template <class Acc, class Item>
__global__ void __launch_bounds__(kSumThreads) partial_sums_kernel(double* partials,  // [kSumBlocks]
                                                                   int64_t num_items, Item item) {
  __shared__ Acc warp_totals[32];
  block_partial_sum<Acc>(partials + blockIdx.x, num_items, blockIdx.x, item, warp_totals);
}

// Pass 2, one block. Finish: __device__ void operator()(Acc total) const.
template <class Acc, class Finish>
__global__ void __launch_bounds__(kSumThreads) finish_sum_kernel(const double* partials,  // [kSumBlocks]
                                                                  Finish finish) {
  __shared__ Acc warp_totals[32];
  const Acc total = sum_of_partials<Acc>(partials, warp_totals);
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

// ---- many ranges in one launch ----------------------------------------------------------------

// Up to kSumsPerLaunch ranges, passed by value as the kernel's parameter: range k
// is item[k](i) for i in [0, num_items[k]). Slots from `count` on are unused.
template <class Item>
struct SumRanges {
  Item item[kSumsPerLaunch];
  int64_t num_items[kSumsPerLaunch];
};

// Pass 1 of many ranges: block (b, k) computes partial b of range k, as
// partial_sums_kernel's block b does for that range alone.
template <class Acc, class Item>
__global__ void __launch_bounds__(kSumThreads) partial_sums_many_kernel(double* partials,  // [count, kSumBlocks]
                                                                        SumRanges<Item> ranges) {
  __shared__ Acc warp_totals[32];
  const int k = blockIdx.y;
  block_partial_sum<Acc>(partials + static_cast<int64_t>(k) * kSumBlocks + blockIdx.x, ranges.num_items[k], blockIdx.x,
                         ranges.item[k], warp_totals);
}

// Pass 2 of many ranges: block k sums range k's partials. Finish: __device__ void
// operator()(int k, Acc total) const.
template <class Acc, class Finish>
__global__ void __launch_bounds__(kSumThreads) finish_sums_many_kernel(const double* partials,  // [count, kSumBlocks]
                                                                        Finish finish) {
  __shared__ Acc warp_totals[32];
  const int k = blockIdx.x;
  const Acc total = sum_of_partials<Acc>(partials + static_cast<int64_t>(k) * kSumBlocks, warp_totals);
  if (threadIdx.x == 0) finish(k, total);
}

// The sums of `count` ranges (1 <= count <= kSumsPerLaunch) in two launches,
// each range's bits those launch_fixed_order_sum gives it alone. scratch: at
// least whole_sums_scratch_bytes(count) on the device (checked by the caller).
template <class Acc, class Item, class Finish>
void launch_fixed_order_sums(const Tensor& scratch, int count, const SumRanges<Item>& ranges, Finish finish) {
  static_assert(sizeof(SumRanges<Item>) + sizeof(double*) <= 4096, "kernel parameters are limited to 4 KB");
  static_assert(sizeof(Finish) <= 4096, "kernel parameters are limited to 4 KB");
  double* partials = static_cast<double*>(scratch.data());  // [count, kSumBlocks]
  partial_sums_many_kernel<Acc><<<dim3(kSumBlocks, count), kSumThreads>>>(partials, ranges);
  GC_CUDA_CHECK(cudaGetLastError());
  finish_sums_many_kernel<Acc><<<count, kSumThreads>>>(partials, finish);
  GC_CUDA_CHECK(cudaGetLastError());
}

// Writes total / divisor into out[0] (divisor 1 for a plain sum: exact).
template <class Acc>
struct StoreQuotient {
  Acc* out;  // [1]
  Acc divisor;
  __device__ void operator()(Acc total) const { out[0] = total / divisor; }
};

// Writes range k's total into *out[k] (the slots need not be adjacent): the bits
// StoreQuotient writes for the range alone, whose division by 1 is exact.
template <class Acc>
struct StoreTotals {
  Acc* out[kSumsPerLaunch];
  __device__ void operator()(int k, Acc total) const { *out[k] = total; }
};

}  // namespace
}  // namespace gc::cuda
