// kernels/cpu/attention.h: the cpu math of kernels/attention.h (validated by the
// entry point, offsets range-checked), the reference of the cuda kernels.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels::cpu {

void segment_softmax_sum_forward(Tensor& out, Tensor& logsumexp, const Tensor& scores, const Tensor& values,
                                 const Tensor& offsets);
void segment_softmax_sum_backward(Tensor& grad_scores, Tensor& grad_values, const Tensor& grad_out,
                                  const Tensor& scores, const Tensor& values, const Tensor& logsumexp,
                                  const Tensor& offsets);

}  // namespace gc::kernels::cpu
