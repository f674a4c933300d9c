// cpu/elementwise.h: the cpu bodies of kernels/elementwise.h.
//
// Callers (kernels/elementwise.cpp) have validated dtypes, sizes and devices; these
// functions only compute. Element loops are split across OpenMP threads, but each
// output element is computed by the same expression whatever the split, so the
// results never depend on the thread count.
#pragma once

#include <type_traits>
#include <vector>

#include "runtime/tensor.h"

namespace gc::kernels::cpu {

// Outputs round into their storage type once: round_double_to (runtime/dtype.h)
// for f64 results, to_storage for f32 ones.

void add_forward(Tensor& out, const Tensor& a, const Tensor& b);
void mul_forward(Tensor& out, const Tensor& a, const Tensor& b);
void scale_forward(Tensor& out, const Tensor& x, double factor);
void accumulate(Tensor& acc, const Tensor& x);
void scale_inplace(Tensor& x, double factor);
void fill(Tensor& x, double value);
void silu_forward(Tensor& out, const Tensor& x);
void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x);
void sigmoid_forward(Tensor& out, const Tensor& x);
void sigmoid_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& y);
void cast(Tensor& out, const Tensor& x);
void concat_cols(Tensor& out, const std::vector<Tensor>& parts);
void split_cols(std::vector<Tensor>& parts, const Tensor& x);
bool all_finite(const Tensor& x);

}  // namespace gc::kernels::cpu
