// attention.h: the softmax-weighted sum over each receiver's incoming edges, the
// aggregation of the attention processor (model/graphcast.h, --processor attention).
//
// Edges are sorted by receiver (model/graphs.h), so a receiver's edges are the
// rows offsets[n] .. offsets[n+1] and the op runs receiver by receiver, fused:
// for receiver n and head h (the C / H consecutive channels c of head h),
//   lse[n, h] = log sum_e exp(scores[e, h])
//   out[n, c] = sum_e exp(scores[e, h] - lse[n, h]) * values[e, c]
// The normalized weights and the weighted messages ([E, C]) are never stored:
// the forward writes no per-edge tensor, the backward only the two gradients
// (weights recomputed from the scores and lse). A receiver without edges gets out = 0 and
// lse = -inf. Statistics and sums in f32 (f64 for f64); one task (cpu) or one
// thread (cuda) per output element, edges in CSR order: deterministic, no atomics.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

// out [N, C] (values' dtype), logsumexp [N, H] (accumulation dtype) from
// scores [E, H] and values [E, C] of one float dtype (C a multiple of H), offsets [N + 1] i32.
void segment_softmax_sum_forward(Tensor& out, Tensor& logsumexp, const Tensor& scores, const Tensor& values,
                                 const Tensor& offsets);
// Assigns grad_scores [E, H] and grad_values [E, C] from grad_out [N, C] and the
// forward's scores, values and logsumexp:
//   a_e = exp(s_e - lse), d_e = grad_out[n, head] . values[e, head],
//   grad_scores[e, h] = a_e (d_e - sum_e' a_e' d_e'),  grad_values[e, c] = a_e grad_out[n, c].
void segment_softmax_sum_backward(Tensor& grad_scores, Tensor& grad_values, const Tensor& grad_out,
                                  const Tensor& scores, const Tensor& values, const Tensor& logsumexp,
                                  const Tensor& offsets);

}  // namespace gc::kernels
