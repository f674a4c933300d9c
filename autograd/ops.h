// ops.h: differentiable ops on Vars. Each op allocates its outputs (and its
// workspace) through the allocator, calls the kernel (a no-op on meta), and,
// when something requires grad, records a node that saves exactly what its
// backward reads. Forward and backward of an op sit side by side in ops.cpp.
//
// Precision: outputs take the dtype of the first input unless stated. A
// parameter (f32 master) used by linear with a lower-precision input is read
// through its compute-dtype copy (precision.h); its gradient stays f32.
#pragma once

#include <vector>

#include "autograd/tape.h"

namespace gc {

class Communicator;

// y [R, N] = x [R, K] W[w_row_start : w_row_start + K, :] + b [N]; b may be an
// undefined Var. A row block of W lets a layer whose input is a concatenation
// [a, b, c] be computed as a Wa + b Wb + c Wc without building the concatenation
// (the concat trick); the gradient lands in the same block of W's gradient.
// bias_gradient_by_consumer: y (plus, maybe, other terms) feeds silu or layernorm
// given b as bias_in_x, which sum b's gradient from the gradient they compute where
// kernels::bias_gradient_folds holds (cuda): then this op's backward leaves it to
// them. Elsewhere it sums it itself. The gradient that reaches y must be the one
// that op computes for its input (adds pass it through unchanged).
Var linear(const Var& x, const Var& W, const Var& b, int64_t w_row_start = 0, bool bias_gradient_by_consumer = false);
Var add(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var scale(const Var& x, double factor);
// bias_in_x: the bias of a linear(..., bias_gradient_by_consumer = true) added into x.
Var silu(const Var& x, const Var& bias_in_x = Var());
// 1 / (1 + exp(-x)); saves its output (the gates multiply by it anyway).
Var sigmoid(const Var& x);
// LayerNorm over the last dim; statistics in f32.
// bias_in_x: as silu's.
Var layernorm(const Var& x, const Var& gamma, const Var& beta, double eps = 1e-5, const Var& bias_in_x = Var());

// Rows of a node set picked by an edge index, with the grouping of edges by that
// index that the backward's deterministic scatter-sum needs.
struct IndexCsr {
  Tensor index;    // [E] i32: node of each edge
  Tensor order;    // [E] i32: edge ids grouped by node
  Tensor offsets;  // [N + 1] i32, or [U + 1] with rows
  int64_t num_nodes = 0;
  // Optional, for edges that touch few of the N nodes (an edge block's): the U
  // distinct nodes they touch, i32 [U]. order and offsets then group the edges by
  // position in rows, and the gather's backward sums into [U, C] and adds those
  // rows into x's gradient (BackwardContext::add_grad_rows): no [N, C] temporary.
  Tensor rows;
};
// out [E, C] = x [N, C] rows at csr.index
Var gather_rows(const Var& x, const IndexCsr& csr);
// out [E, C] = (base [E, C] + s rows at senders.index) + r rows at receivers.index,
// in one pass (kernels::add_gathered_rows), bitwise add(add(base, gather_rows(s,
// senders)), gather_rows(r, receivers)) without the gathered rows: an edge MLP's
// first layer with the concat trick. The backward gives base the output gradient
// and s and r gather_rows' backward of it.
Var add_gathered(const Var& base, const Var& s, const IndexCsr& senders, const Var& r, const IndexCsr& receivers);
// out [N, C] = per-node sums of x [E, C], edges sorted by receiver; offsets [N + 1] i32.
// out_dtype: the accumulation/storage dtype of the result (f32 for the encoder).
Var segment_sum(const Var& x, const Tensor& offsets, DType out_dtype);
// out [N, C] = per receiver and head, the softmax over the receiver's edges of
// scores [E, H] weighting values [E, C] (kernels/attention.h); edges sorted by
// receiver, offsets [N + 1] i32. Saves scores, values and the [N, H] f32
// log-sum-exp: no per-edge weight is ever stored.
Var segment_softmax_sum(const Var& scores, const Var& values, const Tensor& offsets);

Var concat_cols(const std::vector<Var>& parts);
std::vector<Var> split_cols(const Var& x, const std::vector<int64_t>& widths);
Var cast(const Var& x, DType dtype);
// Rows of the parts one after another (same columns and dtype).
Var concat_rows(const std::vector<Var>& parts);
// Rows [start, start + count) of x, as a differentiable copy.
Var slice_rows(const Var& x, int64_t start, int64_t count);
// The rows of an all-to-all (runtime/communicator.h): out holds, in rank order,
// the rows each rank sent this one (recv_counts[q] from rank q); send's rows go
// out in rank order (send_counts[q] to rank q). Backward is the reverse
// exchange: the gradient of each received row goes back to the rank that sent
// it. Every rank of `comm` must call it (and run its backward) together. The
// received rows and, in backward, the returned gradient rows are tensors of
// category `communication`.
Var exchange_rows(const Var& send, Communicator& comm, const std::vector<int64_t>& send_counts,
                  const std::vector<int64_t>& recv_counts);

Var sum_all(const Var& x);   // [1], f32 (f64 for f64)
Var mean_all(const Var& x);  // [1]
// GraphCast loss (kernels/loss.h); target, row_weight [R] f32, col_weight [C] f32 are data.
Var weighted_mse(const Var& pred, const Tensor& target, const Tensor& row_weight, const Tensor& col_weight);

// Multiply-add work done by linear layers since start (2 flops per multiply-add),
// forward and backward; counted on every device, meta included, so a dry run
// knows the FLOPs of a step.
double& linear_flops();

// Reads a one-element tensor on the host (0 on meta, where there is no value).
double scalar_value(const Tensor& t);

}  // namespace gc
