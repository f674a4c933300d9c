// kernels/traffic.h: the modelled cost of every op on the cuda device: FLOPs,
// bytes read + written in device memory, launches (kernels, cuBLAS calls,
// memcpy/memset calls) and host synchronizations (blocking copies), computed from
// the operands' shapes and dtypes as kernels/cuda/*.cu access memory.
//
// The entry points (kernels/*.cpp) hand these to their OpScope (runtime/profile.h),
// so a dry run on meta adds up the cost of the step the cuda device would run.
// Launch and synchronization counts are exact: they follow each cuda entry's
// branches (empty tensors launch nothing, column sums run one pass per 512
// columns, ...), and tests/cudasim checks them against the simulator's counts.
// Bytes count each element's first touch by a kernel: a warp that reads its row
// again (LayerNorm's three loops over a row, the segment-sum backward writing one
// node row to each of its edges) hits the cache; rows gathered by index and every
// kernel's own pass over its operands are counted in full. cuBLAS is counted as
// one launch reading A and B once and writing (and for beta != 0 reading) C once.
#pragma once

#include <vector>

#include "runtime/profile.h"
#include "runtime/tensor.h"

namespace gc::kernels::traffic {

// elementwise.h
OpCost binary(const Tensor& out, const Tensor& a, const Tensor& b, double flops_per_element);  // add, mul
OpCost unary(const Tensor& out, const Tensor& x, double flops_per_element);  // scale, silu, cast
OpCost accumulate(const Tensor& acc, const Tensor& x);
OpCost fill(const Tensor& x);
OpCost silu_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& x);
// silu_backward's reads and writes in the column sums' passes (column_sums.h),
// their partials, and grad_bias read and written.
OpCost silu_backward_bias(const Tensor& grad_x, const Tensor& grad_bias, const Tensor& grad_out, const Tensor& x);
OpCost sigmoid_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& y);
OpCost column_copy(const Tensor& whole, const std::vector<Tensor>& parts);  // concat_cols, split_cols
OpCost all_finite(const Tensor& x);

// index.h: the range checks, then the op.
OpCost check_index_values(const Tensor& index);
OpCost check_offsets(const Tensor& offsets);
OpCost check_offsets_and_order(const Tensor& offsets, const Tensor& order);  // gather backward
OpCost gather_rows_forward(const Tensor& out, const Tensor& x, const Tensor& index);
OpCost sum_groups(const Tensor& out, const Tensor& in, bool with_order, bool accumulate);  // gather backward, segment sum
OpCost segment_sum_backward(const Tensor& grad_x, const Tensor& grad_out, bool with_addend = false);
OpCost add_gathered_rows(const Tensor& out);
OpCost index_add_rows(const Tensor& acc, const Tensor& x, const Tensor& rows);

// attention.h: the log-sum-exp pass, then the weighted sum (forward); the score
// gradients, then the value gradients (backward).
OpCost segment_softmax_sum_forward(const Tensor& out, const Tensor& logsumexp, const Tensor& scores,
                                   const Tensor& values, const Tensor& offsets);
OpCost segment_softmax_sum_backward(const Tensor& grad_out, const Tensor& scores, const Tensor& values,
                                    const Tensor& logsumexp, const Tensor& offsets);

// linear.h: C [m, n] = op(A) [m, k] op(B) [k, n] (+ beta C) (+ bias [n]).
OpCost gemm(int64_t m, int64_t n, int64_t k, DType a, DType b, DType c, bool reads_c, bool has_bias, DType bias);

// linear.h, linear_backward_weight_and_bias: the weight product (m = K, n = N,
// k = R rows), then sum_rows for the bias gradient.
OpCost gemm_with_bias_gradient(int64_t m, int64_t n, int64_t k, DType a, DType b, DType c,
                               const Tensor& grad_b, const Tensor& grad_y);

// layernorm.h
OpCost layernorm_forward(const Tensor& x, const Tensor& gamma);
// input_bias: layernorm_backward_bias (grad_x's column sums as well).
OpCost layernorm_backward(const Tensor& x, const Tensor& gamma, bool input_bias = false);

// reduce.h, loss.h, optim.h
OpCost whole_sum(const Tensor& x, double flops_per_element);  // sum_all, mean_all, sum_squares
OpCost sum_squares_many(const std::vector<Tensor>& xs);
OpCost sum_rows(const Tensor& out, const Tensor& x, bool accumulate);
OpCost weighted_mse_forward(const Tensor& pred, const Tensor& target, const Tensor& row_weight);
OpCost weighted_mse_backward(const Tensor& pred, const Tensor& target, const Tensor& row_weight);
OpCost adamw_step(const Tensor& param);

}  // namespace gc::kernels::traffic
