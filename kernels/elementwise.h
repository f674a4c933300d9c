// elementwise.h: element-by-element ops on contiguous tensors of equal numel.
// Float dtypes f32/f64/bf16/f16; compute in f32 (f64 for f64). Outputs are
// allocated by the caller; meta tensors are accepted and do nothing.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

void add_forward(Tensor& out, const Tensor& a, const Tensor& b);  // out = a + b (dtypes may differ)
void mul_forward(Tensor& out, const Tensor& a, const Tensor& b);  // out = a * b
void scale_forward(Tensor& out, const Tensor& x, double factor);  // out = factor * x
// acc += x: gradient accumulation; acc and x may have different float dtypes.
void accumulate(Tensor& acc, const Tensor& x);
void scale_inplace(Tensor& x, double factor);
void fill(Tensor& x, double value);

void silu_forward(Tensor& out, const Tensor& x);  // out = x * sigmoid(x)
// grad_x = grad_out * silu'(x)  (assigned)
void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x);
// The same, and grad_bias [C] += grad_x's rows summed (x [R, C]; grad_x, grad_out
// and x of one dtype; grad_bias f32, f64 for f64): the gradient of a bias that was
// added into x, bitwise silu_backward then sum_rows(grad_bias, grad_x, true) on
// each device. On cuda one pass writes grad_x and sums what it wrote (sum_rows'
// order), where the bias's own linear would read grad_x again (autograd, where
// kernels::bias_gradient_folds holds).
void silu_backward_bias(Tensor& grad_x, Tensor& grad_bias, const Tensor& grad_out, const Tensor& x);

void sigmoid_forward(Tensor& out, const Tensor& x);  // out = 1 / (1 + exp(-x))
// grad_x = grad_out * y (1 - y) from the forward's output y (assigned): the gates
// keep y for the product they feed, so the backward needs nothing more.
void sigmoid_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& y);

// Converts between any two float dtypes (round to nearest even for the 16-bit ones).
void cast(Tensor& out, const Tensor& x);

// out [R, C1 + C2 + ...] = columns of parts [R, Ci] side by side.
void concat_cols(Tensor& out, const std::vector<Tensor>& parts);
// parts[i] [R, Ci] = columns of x [R, sum Ci] (the backward of concat_cols).
void split_cols(std::vector<Tensor>& parts, const Tensor& x);

// True when every element of x is finite (for loss scaling). True on meta: a dry
// run has no values and must follow the path of a clean step, never skip one.
bool all_finite(const Tensor& x);

}  // namespace gc::kernels
