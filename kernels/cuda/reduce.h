// kernels/cuda/reduce.h: the cuda bodies of kernels/reduce.h, called by
// kernels/reduce.cpp after validation (plain C++; definitions in reduce.cu).
// Outputs are f32 (f64 for f64 x) and stay on the device; every sum runs in a
// fixed order (no atomics), so repeated calls give the same bits.
#pragma once

#include "runtime/tensor.h"

namespace gc::cuda {

void sum_all(Tensor& out, const Tensor& x);                    // out [1], x [n]
void mean_all(Tensor& out, const Tensor& x);                   // out [1], x [n > 0]
void sum_rows(Tensor& out, const Tensor& x, bool accumulate);  // out [C] (+)=, x [R, C]
void sum_squares(Tensor& out, const Tensor& x);                // out [1], x [n]

}  // namespace gc::cuda
