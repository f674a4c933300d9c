// kernels/cuda/index.h: the cuda bodies of the graph ops of kernels/index.h,
// called by kernels/index.cpp after validation (plain C++; definitions in
// index.cu). The range checks read the index tensors on the device and throw the
// cpu's std::invalid_argument messages; they synchronize with the device (the
// verdict is needed on the host before any row is read). Their verdict lives in
// the caller's scratch: a cuda tensor of at least index_check_scratch_bytes()
// (kernels/cuda/scratch.h), allocated through the caching allocator.
//
// Determinism: every output row is written by one warp; a group sum runs over the
// group's edges in CSR order, so results are bitwise repeatable, with no atomics.
#pragma once

#include "runtime/tensor.h"

namespace gc::cuda {

// Throws std::invalid_argument("<op>: <name> value V at I outside [0, limit) in ...").
void check_index_values(const Tensor& index, int64_t limit, const char* op, const char* name, const Tensor& scratch);
// Throws std::invalid_argument unless offsets [N + 1] starts at 0, never decreases and ends at total.
void check_offsets(const Tensor& offsets, int64_t total, const char* op, const Tensor& scratch);

// out [E, C] = x [N, C] rows at index [E].
void gather_rows_forward(Tensor& out, const Tensor& x, const Tensor& index);
// grad_x [N, C] = sums of grad_out [E, C] rows order [E] grouped by offsets [N + 1].
void gather_rows_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& order, const Tensor& offsets);
// out [E, C] = (base + s rows at s_index) + r rows at r_index, rounded after each add.
void add_gathered_rows(Tensor& out, const Tensor& base, const Tensor& s, const Tensor& s_index, const Tensor& r,
                       const Tensor& r_index);
// acc [N, C] rows rows[u] += x [U, C] row u (rows distinct).
void index_add_rows(Tensor& acc, const Tensor& x, const Tensor& rows);
// out [N, C] (+)= sums of x [E, C] rows grouped by offsets [N + 1].
void segment_sum_forward(Tensor& out, const Tensor& x, const Tensor& offsets, bool accumulate);
// grad_x [E, C] = grad_out [N, C] row of each edge's group.
void segment_sum_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& offsets, const Tensor& addend);

}  // namespace gc::cuda
