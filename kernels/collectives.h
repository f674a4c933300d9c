// collectives.h: reductions over the ranks of a communicator, deterministic.
//
// all_reduce_sum = reduce-scatter + all-gather: rank r receives chunk r of
// every rank's tensor (an all-to-all), sums those P pieces with sum_rows (a fixed
// order that depends on neither the thread count nor the engine), rounds once to
// the tensor's dtype, and all ranks gather the chunks. So the same ranks and
// inputs give the same bits every run, and every rank holds the same result.
// Sums accumulate in f32 (f64 for f64), as every reduction of gc does.
//
// The receive buffer ([P, chunk] of the dtype), the chunk's sum (accumulation
// dtype) and, for bf16/f16, its rounded copy are allocator tensors of category
// `communication` labelled by the op (under the caller's label), made on meta
// too, so a dry run requests exactly what the real run requests.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/communicator.h"
#include "runtime/tensor.h"

namespace gc::kernels {

// Rows per rank when n rows are split over `ranks` as evenly as possible, the
// first n % ranks ranks taking one more.
std::vector<int64_t> balanced_counts(int64_t n, int ranks);

// t := the sum of t over the ranks (any float dtype; cpu with MPI, cuda with
// NCCL, meta with the meta communicator).
void all_reduce_sum(Communicator& comm, Tensor& t);
// out (balanced_counts(t.numel(), P)[rank] elements, t's dtype) := this rank's
// chunk of the sum of t over the ranks.
void reduce_scatter_sum(Communicator& comm, const Tensor& t, Tensor& out);
// t := the ranks' chunks (each balanced_counts(t.numel(), P)[rank] elements) in
// rank order.
void all_gather_chunks(Communicator& comm, const Tensor& chunk, Tensor& t);

}  // namespace gc::kernels
