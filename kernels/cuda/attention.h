// kernels/cuda/attention.h: the cuda bodies of kernels/attention.h, called by
// kernels/attention.cpp after validation and the offsets' range check (plain
// C++; definitions in attention.cu).
#pragma once

#include "runtime/tensor.h"

namespace gc::cuda {

// out [N, C], logsumexp [N, H] from scores [E, H], values [E, C], offsets [N + 1].
void segment_softmax_sum_forward(Tensor& out, Tensor& logsumexp, const Tensor& scores, const Tensor& values,
                                 const Tensor& offsets);
// grad_scores [E, H], grad_values [E, C] (assigned) from grad_out [N, C].
void segment_softmax_sum_backward(Tensor& grad_scores, Tensor& grad_values, const Tensor& grad_out,
                                  const Tensor& scores, const Tensor& values, const Tensor& logsumexp,
                                  const Tensor& offsets);

}  // namespace gc::cuda
