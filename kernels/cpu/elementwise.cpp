// cpu/elementwise.cpp: element-by-element ops over any mix of float storage types.
//
// Every op loads each operand in its compute type (f32, or f64 as soon as one
// operand is f64), computes, and rounds once into the output's storage type.
// Outputs may alias inputs element for element (out = a + out is fine).
#include "kernels/cpu/elementwise.h"

#include <cmath>
#include <cstring>

namespace gc::cpu {

float f64_to_f32_round_to_odd(double value) {
  float rounded = static_cast<float>(value);
  if (std::isnan(value) || std::isinf(value) || static_cast<double>(rounded) == value) return rounded;
  // Inexact: take the neighbour toward zero (overflow lands on FLT_MAX) and mark it odd.
  if (std::fabs(static_cast<double>(rounded)) > std::fabs(value)) rounded = std::nextafter(rounded, 0.0f);
  return bits_float(float_bits(rounded) | 1u);
}

namespace {

template <class Body>
void for_each_index(int64_t n, const Body& body) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Runs visit(A{}, B{}) for the storage types of two float dtypes.
template <class Visit>
void visit_two(DType first, DType second, const Visit& visit) {
  visit_float_dtype(first, [&](auto a) { visit_float_dtype(second, [&](auto b) { visit(a, b); }); });
}

template <class Visit>
void visit_three(DType first, DType second, DType third, const Visit& visit) {
  visit_two(first, second, [&](auto a, auto b) { visit_float_dtype(third, [&](auto c) { visit(a, b, c); }); });
}

inline bool is_finite_value(float v) { return std::isfinite(v); }
inline bool is_finite_value(double v) { return std::isfinite(v); }
// A 16-bit float is non-finite exactly when its exponent bits are all ones.
inline bool is_finite_value(bf16_t v) { return (v.bits & 0x7f80u) != 0x7f80u; }
inline bool is_finite_value(f16_t v) { return (v.bits & 0x7c00u) != 0x7c00u; }

template <class C>
inline C sigmoid(C x) {
  return C(1) / (C(1) + std::exp(-x));
}

}  // namespace

void add_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  visit_three(out.dtype(), a.dtype(), b.dtype(), [&](auto o_tag, auto a_tag, auto b_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using B = decltype(b_tag);
    using C = common_compute_t<O, A, B>;
    O* o = out.data_as<O>();        // [n]
    const A* pa = a.data_as<A>();   // [n]
    const B* pb = b.data_as<B>();   // [n]
    for_each_index(out.numel(), [=](int64_t i) {
      o[i] = to_storage<O>(static_cast<C>(to_compute(pa[i])) + static_cast<C>(to_compute(pb[i])));
    });
  });
}

void mul_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  visit_three(out.dtype(), a.dtype(), b.dtype(), [&](auto o_tag, auto a_tag, auto b_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using B = decltype(b_tag);
    using C = common_compute_t<O, A, B>;
    O* o = out.data_as<O>();        // [n]
    const A* pa = a.data_as<A>();   // [n]
    const B* pb = b.data_as<B>();   // [n]
    for_each_index(out.numel(), [=](int64_t i) {
      o[i] = to_storage<O>(static_cast<C>(to_compute(pa[i])) * static_cast<C>(to_compute(pb[i])));
    });
  });
}

void scale_forward(Tensor& out, const Tensor& x, double factor) {
  visit_two(out.dtype(), x.dtype(), [&](auto o_tag, auto x_tag) {
    using O = decltype(o_tag);
    using X = decltype(x_tag);
    using C = common_compute_t<O, X>;
    O* o = out.data_as<O>();        // [n]
    const X* px = x.data_as<X>();   // [n]
    const C f = static_cast<C>(factor);
    for_each_index(out.numel(), [=](int64_t i) { o[i] = to_storage<O>(f * static_cast<C>(to_compute(px[i]))); });
  });
}

void accumulate(Tensor& acc, const Tensor& x) {
  visit_two(acc.dtype(), x.dtype(), [&](auto acc_tag, auto x_tag) {
    using A = decltype(acc_tag);
    using X = decltype(x_tag);
    using C = common_compute_t<A, X>;
    A* pacc = acc.data_as<A>();     // [n]
    const X* px = x.data_as<X>();   // [n]
    for_each_index(acc.numel(), [=](int64_t i) {
      pacc[i] = to_storage<A>(static_cast<C>(to_compute(pacc[i])) + static_cast<C>(to_compute(px[i])));
    });
  });
}

void scale_inplace(Tensor& x, double factor) { scale_forward(x, x, factor); }

void fill(Tensor& x, double value) {
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = x.data_as<T>();  // [n]
    const T stored = round_double_to<T>(value);
    for_each_index(x.numel(), [=](int64_t i) { p[i] = stored; });
  });
}

void silu_forward(Tensor& out, const Tensor& x) {
  visit_two(out.dtype(), x.dtype(), [&](auto o_tag, auto x_tag) {
    using O = decltype(o_tag);
    using X = decltype(x_tag);
    using C = common_compute_t<O, X>;
    O* o = out.data_as<O>();        // [n]
    const X* px = x.data_as<X>();   // [n]
    for_each_index(out.numel(), [=](int64_t i) {
      const C v = static_cast<C>(to_compute(px[i]));
      o[i] = to_storage<O>(v * sigmoid(v));
    });
  });
}

void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x) {
  visit_three(grad_x.dtype(), grad_out.dtype(), x.dtype(), [&](auto gx_tag, auto go_tag, auto x_tag) {
    using GX = decltype(gx_tag);
    using GO = decltype(go_tag);
    using X = decltype(x_tag);
    using C = common_compute_t<GX, GO, X>;
    GX* gx = grad_x.data_as<GX>();            // [n]
    const GO* go = grad_out.data_as<GO>();    // [n]
    const X* px = x.data_as<X>();             // [n]
    for_each_index(grad_x.numel(), [=](int64_t i) {
      const C v = static_cast<C>(to_compute(px[i]));
      const C s = sigmoid(v);
      // d/dx x s(x) = s + x s (1 - s)
      gx[i] = to_storage<GX>(static_cast<C>(to_compute(go[i])) * (s * (C(1) + v * (C(1) - s))));
    });
  });
}

void cast(Tensor& out, const Tensor& x) {
  visit_two(out.dtype(), x.dtype(), [&](auto o_tag, auto x_tag) {
    using O = decltype(o_tag);
    using X = decltype(x_tag);
    O* o = out.data_as<O>();        // [n]
    const X* px = x.data_as<X>();   // [n]
    if constexpr (std::is_same_v<X, double>) {
      for_each_index(out.numel(), [=](int64_t i) { o[i] = round_double_to<O>(px[i]); });
    } else {
      // Widening a 16-bit float to f32 is exact, so one rounding happens at most.
      for_each_index(out.numel(), [=](int64_t i) { o[i] = to_storage<O>(to_compute(px[i])); });
    }
  });
}

void concat_cols(Tensor& out, const std::vector<Tensor>& parts) {
  const int64_t rows = out.size(0);
  const size_t element_bytes = dtype_size(out.dtype());
  const size_t out_row_bytes = static_cast<size_t>(out.size(1)) * element_bytes;
  auto* out_bytes = static_cast<unsigned char*>(out.data());  // [R, sum Ci]
  size_t column_offset_bytes = 0;
  for (const Tensor& part : parts) {
    const size_t part_row_bytes = static_cast<size_t>(part.size(1)) * element_bytes;
    if (part_row_bytes == 0 || rows == 0) continue;  // an empty part may have no storage
    const auto* part_bytes = static_cast<const unsigned char*>(part.data());  // [R, Ci]
    unsigned char* destination = out_bytes + column_offset_bytes;
#pragma omp parallel for schedule(static) if (rows * static_cast<int64_t>(part_row_bytes) >= 8 * kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(destination + r * out_row_bytes, part_bytes + r * part_row_bytes, part_row_bytes);
    column_offset_bytes += part_row_bytes;
  }
}

void split_cols(std::vector<Tensor>& parts, const Tensor& x) {
  const int64_t rows = x.size(0);
  const size_t element_bytes = dtype_size(x.dtype());
  const size_t x_row_bytes = static_cast<size_t>(x.size(1)) * element_bytes;
  const auto* x_bytes = static_cast<const unsigned char*>(x.data());  // [R, sum Ci]
  size_t column_offset_bytes = 0;
  for (Tensor& part : parts) {
    const size_t part_row_bytes = static_cast<size_t>(part.size(1)) * element_bytes;
    if (part_row_bytes == 0 || rows == 0) continue;
    auto* part_bytes = static_cast<unsigned char*>(part.data());  // [R, Ci]
    const unsigned char* source = x_bytes + column_offset_bytes;
#pragma omp parallel for schedule(static) if (rows * static_cast<int64_t>(part_row_bytes) >= 8 * kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(part_bytes + r * part_row_bytes, source + r * x_row_bytes, part_row_bytes);
    column_offset_bytes += part_row_bytes;
  }
}

bool all_finite(const Tensor& x) {
  int64_t non_finite = 0;
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data_as<T>();  // [n]
    const int64_t n = x.numel();
    int64_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count) if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i) count += is_finite_value(p[i]) ? 0 : 1;
    non_finite = count;
  });
  return non_finite == 0;
}

}  // namespace gc::cpu
