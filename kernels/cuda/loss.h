// kernels/cuda/loss.h: the cuda bodies of kernels/loss.h (weighted mean squared
// error), called by kernels/loss.cpp after validation (plain C++; definitions in
// loss.cu). The loss stays on the device; its sum runs in a fixed order, with
// its partial sums in the caller's scratch (kernels/cuda/scratch.h).
#pragma once

#include "runtime/tensor.h"

namespace gc::cuda {

// loss [1] = (1/R) sum_r row_weight[r] sum_c col_weight[c] (pred - target)^2
// pred, target [R, C]; row_weight [R], col_weight [C] (both f32, or both f64);
// scratch: a cuda tensor of at least whole_sum_scratch_bytes().
void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight, const Tensor& scratch);
// grad_pred [R, C] = grad_loss * 2 row_weight[r] col_weight[c] (pred - target) / R (assigned)
void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight);

}  // namespace gc::cuda
