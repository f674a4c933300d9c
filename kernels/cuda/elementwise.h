// kernels/cuda/elementwise.h: the cuda bodies of kernels/elementwise.h, called by
// kernels/elementwise.cpp after it has validated shapes and dtypes (plain C++:
// g++ and nvcc both read this header; the definitions are in elementwise.cu).
//
// Same arithmetic as kernels/cpu/elementwise.cpp: each operand loaded in its
// compute type (f32, f64 as soon as one operand is f64), one rounding into the
// output's storage type. Outputs may alias inputs element for element.
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace gc::cuda {

void add_forward(Tensor& out, const Tensor& a, const Tensor& b);      // out, a, b [n]
void mul_forward(Tensor& out, const Tensor& a, const Tensor& b);      // out, a, b [n]
void scale_forward(Tensor& out, const Tensor& x, double factor);      // out, x [n]
void accumulate(Tensor& acc, const Tensor& x);                         // acc, x [n]
void scale_inplace(Tensor& x, double factor);                          // x [n]
void fill(Tensor& x, double value);                                    // x [n]
void silu_forward(Tensor& out, const Tensor& x);                       // out, x [n]
void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x);  // all [n]
// grad_x [R, C] as silu_backward, grad_bias [C] += its rows summed in sum_rows'
// order (column_sums.h); grad_out, x [R, C] of grad_x's dtype. scratch: a cuda
// tensor of at least sum_rows_scratch_bytes(C) (kernels/cuda/scratch.h).
void silu_backward_bias(Tensor& grad_x, Tensor& grad_bias, const Tensor& grad_out, const Tensor& x,
                        const Tensor& scratch);
void sigmoid_forward(Tensor& out, const Tensor& x);                    // out, x [n]
void sigmoid_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& y);  // all [n]
void cast(Tensor& out, const Tensor& x);                               // out, x [n]
void concat_cols(Tensor& out, const std::vector<Tensor>& parts);       // out [R, sum Ci], parts [R, Ci]
void split_cols(std::vector<Tensor>& parts, const Tensor& x);          // parts [R, Ci], x [R, sum Ci]
// Synchronizes with the device (the answer is needed on the host). scratch: the
// device flag, a cuda tensor of at least all_finite_scratch_bytes(n)
// (kernels/cuda/scratch.h), allocated by the caller.
bool all_finite(const Tensor& x, const Tensor& scratch);               // x [n]

}  // namespace gc::cuda
