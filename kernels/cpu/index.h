// kernels/cpu/index.h: the cpu math of the graph ops (kernels/index.h is the
// public entry; it checks shapes, dtypes and devices, then calls the range checks
// below before any kernel, so the kernels trust every index they read).
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels::cpu {

// Throws std::invalid_argument("<op>: <name> value V at I outside [0, limit)").
void check_index_values(const Tensor& index, int64_t limit, const char* op, const char* name);
// Throws std::invalid_argument unless offsets [N + 1] starts at 0, never
// decreases and ends at total.
void check_offsets(const Tensor& offsets, int64_t total, const char* op);

// out [E, C] = x [N, C] rows at index [E].
void gather_rows_forward(Tensor& out, const Tensor& x, const Tensor& index);
// grad_x [N, C] = sums of grad_out [E, C] rows order [E] grouped by offsets [N + 1].
void gather_rows_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& order, const Tensor& offsets);
// out [N, C] (+)= sums of x [E, C] rows grouped by offsets [N + 1].
void add_gathered_rows(Tensor& out, const Tensor& base, const Tensor& s, const Tensor& s_index, const Tensor& r,
                       const Tensor& r_index);
void index_add_rows(Tensor& acc, const Tensor& x, const Tensor& rows);
void segment_sum_forward(Tensor& out, const Tensor& x, const Tensor& offsets, bool accumulate);
// grad_x [E, C] = grad_out [N, C] row of each edge's group.
void segment_sum_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& offsets, const Tensor& addend);
// order [E], offsets [N + 1] from index [E] (values already range-checked).
void build_csr(Tensor& order, Tensor& offsets, const Tensor& index, int64_t num_nodes);

}  // namespace gc::kernels::cpu
