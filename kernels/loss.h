// loss.h: the GraphCast training loss, a weighted mean squared error.
//   loss = (1 / R) * sum_r sum_c row_weight[r] * col_weight[c] * (pred[r,c] - target[r,c])^2
// row_weight [R] f32: latitude (area) weights, mean 1. col_weight [C] f32: per
// channel weight, already divided by the number of levels of its variable, so the
// formula equals "sum over variables of W_var * mean over (lat, lon, level)".
// (Both weights may be f64 instead, together, for f64 gradient checks.)
// pred/target: any float dtype; loss f32 [1] (f64 when pred is f64); reduction
// in a fixed order. meta does nothing.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight);
// grad_pred (assigned, dtype of pred) = grad_loss * d loss / d pred; grad_loss is a scalar.
void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight);

}  // namespace gc::kernels
