// reduce.h: reductions. Accumulate in f32 (f64 for f64 inputs) in a fixed order
// that does not depend on the thread count, so results are bitwise repeatable.
// Outputs are f32 (f64 for f64 inputs) unless stated; meta does nothing.
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace gc::kernels {

void sum_all(Tensor& out, const Tensor& x);   // out [1]
void mean_all(Tensor& out, const Tensor& x);  // out [1]
// out [C] (+)= sum over rows of x [R, C]; accumulate=true adds into out.
void sum_rows(Tensor& out, const Tensor& x, bool accumulate);
// out [1] = sum of x^2 (for the global gradient norm).
void sum_squares(Tensor& out, const Tensor& x);
// out [K] (K = xs.size()): out[k] = sum of xs[k]^2, bit for bit what sum_squares
// gives for xs[k] on the same device, in one pass over all the tensors (on cuda a
// few launches for all of them, not two per tensor). The xs may mix float dtypes
// that share one accumulation dtype, out's; empty tensors give 0.
void sum_squares_many(Tensor& out, const std::vector<Tensor>& xs);

}  // namespace gc::kernels
