// cpu/loss.h: the cpu bodies of kernels/loss.h (weighted mean squared error).
// Inputs are validated by kernels/loss.cpp; the weights are f32 or f64.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels::cpu {

// loss [1] = (1/R) sum_r row_weight[r] sum_c col_weight[c] (pred - target)^2
void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight);
// grad_pred [R, C] = grad_loss * 2 row_weight[r] col_weight[c] (pred - target) / R
void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight);

}  // namespace gc::kernels::cpu
