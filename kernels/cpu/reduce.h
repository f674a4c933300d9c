// cpu/reduce.h: the cpu bodies of kernels/reduce.h, and the fixed-order summation
// every cpu reduction uses (the loss too).
//
// Invariant: the order of every floating-point addition depends only on the
// number of items, never on the thread count. The items are cut into
// kReduceChunks contiguous chunks (a fixed partition); each chunk is summed
// pairwise, and the chunk totals are combined pairwise in chunk order. Threads
// only decide who computes a chunk. Pairwise summation keeps the f32 error near
// eps * log2(n) instead of eps * n, with O(log n) stack and no scratch buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/tensor.h"

namespace gc::kernels::cpu {

constexpr int64_t kReduceChunks = 64;
// Elements summed with plain lanes before entering the pairwise tree.
constexpr int64_t kReduceBlock = 256;

// Pairwise sum of a stream of values: a binary counter of partial sums, where
// partial[level] holds the sum of 2^level consecutive values.
template <class Acc>
class PairwiseSum {
 public:
  void add(Acc value) {
    uint64_t carry = count_++;
    int level = 0;
    for (; carry & 1u; carry >>= 1, ++level) value = partial_[level] + value;
    partial_[level] = value;
  }
  Acc total() const {
    Acc sum = 0;
    for (int level = 63; level >= 0; --level)
      if ((count_ >> level) & 1u) sum += partial_[level];
    return sum;
  }

 private:
  Acc partial_[64];
  uint64_t count_ = 0;
};

// Sum over i in [begin, end) of term(i), in 8 interleaved lanes combined as a
// balanced tree: a fixed order that the compiler can vectorize.
template <class Acc, class Term>
inline Acc lane_sum(int64_t begin, int64_t end, const Term& term) {
  Acc lanes[8] = {};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int lane = 0; lane < 8; ++lane) lanes[lane] += term(i + lane);
  for (int lane = 0; i < end; ++i, ++lane) lanes[lane] += term(i);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Sum over items [0, num_items) of item_value(i) in the fixed order described at
// the top. parallel=false runs the same arithmetic on the calling thread.
template <class Acc, class ItemValue>
Acc fixed_order_sum(int64_t num_items, const ItemValue& item_value, bool parallel) {
  Acc chunk_total[kReduceChunks];
  const int64_t items_per_chunk = (num_items + kReduceChunks - 1) / kReduceChunks;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t chunk = 0; chunk < kReduceChunks; ++chunk) {
    const int64_t begin = std::min(num_items, chunk * items_per_chunk);
    const int64_t end = std::min(num_items, begin + items_per_chunk);
    PairwiseSum<Acc> sum;
    for (int64_t i = begin; i < end; ++i) sum.add(item_value(i));
    chunk_total[chunk] = sum.total();
  }
  PairwiseSum<Acc> sum;
  for (int64_t chunk = 0; chunk < kReduceChunks; ++chunk) sum.add(chunk_total[chunk]);
  return sum.total();
}

// Sum over [0, n) of term(i): kReduceBlock-element lane sums as the items.
template <class Acc, class Term>
Acc fixed_order_sum_elements(int64_t n, const Term& term, bool parallel) {
  const int64_t num_blocks = (n + kReduceBlock - 1) / kReduceBlock;
  return fixed_order_sum<Acc>(
      num_blocks,
      [&](int64_t block) {
        const int64_t begin = block * kReduceBlock;
        return lane_sum<Acc>(begin, std::min(n, begin + kReduceBlock), term);
      },
      parallel);
}

void sum_all(Tensor& out, const Tensor& x);                      // out [1]
void mean_all(Tensor& out, const Tensor& x);                     // out [1], x non-empty
void sum_rows(Tensor& out, const Tensor& x, bool accumulate);    // out [C], x [R, C]
void sum_squares(Tensor& out, const Tensor& x);                  // out [1]
void sum_squares_many(Tensor& out, const std::vector<Tensor>& xs);  // out [K]: sum_squares of each

}  // namespace gc::kernels::cpu
