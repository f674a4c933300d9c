// index.h: the graph ops. Index tensors are i32. Deterministic: sums run over
// CSR groups in a fixed order, never with float atomics.
//
// A CSR grouping of E edges by a node index (senders or receivers):
//   order [E] i32: edge ids grouped by node (stable: ascending edge id inside a group)
//   offsets [N + 1] i32: group n is order[offsets[n] .. offsets[n+1])
// For receivers the edges are already sorted by receiver, so order is the identity.
//
// Float dtypes: the two row tensors of an op (x and out, grad_out and grad_x)
// have the same dtype, or one is f32 and the other bf16/f16 (sums accumulate in
// f32, f64 for f64, and round once when stored). Index values are range-checked
// (std::invalid_argument) before any row is touched.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

// out [E, C] = x [N, C] rows at index [E].
void gather_rows_forward(Tensor& out, const Tensor& x, const Tensor& index);
// grad_x [N, C] (assigned) = for each node n, sum of grad_out rows order[offsets[n]..offsets[n+1]).
void gather_rows_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& order, const Tensor& offsets);

// out [E, C] = (base [E, C] + s [Ns, C] row s_index[e]) + r [Nr, C] row r_index[e],
// each sum rounded to the dtype as two separate adds of gathered rows round it:
// bitwise gather + add + gather + add, in one pass that writes no gathered rows.
// The first layer of an edge MLP with the concat trick (the edge features'
// product plus the senders' and receivers' projections). One float dtype for all.
void add_gathered_rows(Tensor& out, const Tensor& base, const Tensor& s, const Tensor& s_index, const Tensor& r,
                       const Tensor& r_index);

// acc [N, C] rows rows[u] += x [U, C] row u, for u < U: one rounding per element, as
// kernels::accumulate rounds (acc and x of one float dtype). The backward of a gather
// whose edges touch only the rows listed (an edge block's senders or receivers):
// only those rows are read and written, never a full-size [N, C] gradient. rows
// [U] i32 must be distinct (the graph builds promise it: each acc row is written by
// one task, so results are deterministic without atomics); their values are
// range-checked like a gather's index, or marked checked at upload.
void index_add_rows(Tensor& acc, const Tensor& x, const Tensor& rows);

// out [N, C] = for each node n, sum of x rows offsets[n]..offsets[n+1] (edges sorted
// by receiver). Accumulates in f32 (f64 for f64); out may be f32 while x is bf16.
// accumulate=true adds into out (edge blocks): each sum starts from out's value,
// so with an f32 out, blocks taken in edge order give the unblocked result bitwise.
void segment_sum_forward(Tensor& out, const Tensor& x, const Tensor& offsets, bool accumulate);
// grad_x [E, C] = grad_out [N, C] row of each edge's receiver (assigned). With
// addend [E, C] (grad_x's shape and dtype; may be grad_x itself): addend plus that
// row, rounded as kernels::accumulate rounds adding the assigned rows: a gradient
// that already holds a contribution (a residual's) gains the sum's in one pass.
void segment_sum_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& offsets,
                          const Tensor& addend = Tensor());

// A graph's index tensors checked once, when the graph is uploaded: the values
// are checked as the graph ops check them (std::invalid_argument on a bad one;
// a blocking read-back on cuda) and the tensor's storage is marked, so later
// ops on it skip their checks (the step's host synchronizations). The caller
// promises nothing writes the tensor afterwards. index: i32 values in
// [0, bound) (slices of it count as checked); offsets: from 0 to `edges`,
// non-decreasing.
void check_graph_index(const Tensor& index, int64_t bound, const char* what);
void check_graph_offsets(const Tensor& offsets, int64_t edges, const char* what);
// Whether a check of these values was made once already (check_graph_*).
bool index_checked(const Tensor& index, int64_t bound);
bool offsets_checked(const Tensor& offsets, int64_t edges);

// Builds the CSR grouping of index [E] (values in [0, num_nodes)) into order [E]
// and offsets [num_nodes + 1], all i32, by a stable counting sort. cpu only (a
// host-side graph build step); on meta it checks shapes and does nothing.
void build_csr(Tensor& order, Tensor& offsets, const Tensor& index, int64_t num_nodes);

}  // namespace gc::kernels
