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

// A double rounded once, to nearest even, into storage type T. Going through
// f32 with round-to-nearest would round twice (f64 -> f32 -> bf16) and can miss
// the nearest 16-bit value; rounding to f32 "to odd" first keeps the sticky
// information, so the final round-to-nearest-even is exact.
float f64_to_f32_round_to_odd(double value);
template <class T>
inline T round_double_to(double value) {
  if constexpr (std::is_same_v<T, double>) {
    return value;
  } else if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>(value);
  } else {
    return from_compute<T>(f64_to_f32_round_to_odd(value));
  }
}

void add_forward(Tensor& out, const Tensor& a, const Tensor& b);
void mul_forward(Tensor& out, const Tensor& a, const Tensor& b);
void scale_forward(Tensor& out, const Tensor& x, double factor);
void accumulate(Tensor& acc, const Tensor& x);
void scale_inplace(Tensor& x, double factor);
void fill(Tensor& x, double value);
void silu_forward(Tensor& out, const Tensor& x);
void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x);
void cast(Tensor& out, const Tensor& x);
void concat_cols(Tensor& out, const std::vector<Tensor>& parts);
void split_cols(std::vector<Tensor>& parts, const Tensor& x);
bool all_finite(const Tensor& x);

}  // namespace gc::kernels::cpu
