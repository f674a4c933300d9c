// kernels/cuda/reduce.h: the cuda bodies of kernels/reduce.h, called by
// kernels/reduce.cpp after validation (plain C++; definitions in reduce.cu).
// Outputs are f32 (f64 for f64 x) and stay on the device; every sum runs in a
// fixed order (no atomics), so repeated calls give the same bits. scratch: the
// partial sums, a cuda tensor of at least the bytes named (kernels/cuda/scratch.h),
// allocated by the caller through the caching allocator.
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace gc::cuda {

// scratch: whole_sum_scratch_bytes()
void sum_all(Tensor& out, const Tensor& x, const Tensor& scratch);       // out [1], x [n]
void mean_all(Tensor& out, const Tensor& x, const Tensor& scratch);      // out [1], x [n > 0]
void sum_squares(Tensor& out, const Tensor& x, const Tensor& scratch);   // out [1], x [n]
// out [K]: out[k] = sum_squares of xs[k], bit for bit. scratch: whole_sums_scratch_bytes(K)
void sum_squares_many(Tensor& out, const std::vector<Tensor>& xs, const Tensor& scratch);
// scratch: sum_rows_scratch_bytes(C)
void sum_rows(Tensor& out, const Tensor& x, bool accumulate, const Tensor& scratch);  // out [C] (+)=, x [R, C]

}  // namespace gc::cuda
