// kernels/cpu/dtype_dispatch.h: how every cpu kernel goes from run-time dtypes to
// typed code: the storage type of a float dtype (float, double, bf16_t, f16_t),
// and the compute type a mixed-dtype op does its arithmetic in.
//
// The entry points (kernels/*.cpp) validate dtypes before any cpu kernel runs, so
// a dtype that reaches a visit here unsupported is a bug (std::logic_error), with
// one exception: visit_float_pair rejects a pair it does not support with the
// std::invalid_argument of a validation, naming the op.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "runtime/dtype.h"

namespace gc::kernels::cpu {

// Calls visit(T{}) with T the storage type of a float dtype.
template <class Visit>
void visit_float_dtype(DType dtype, Visit&& visit) {
  switch (dtype) {
    case DType::f32: visit(float{}); return;
    case DType::f64: visit(double{}); return;
    case DType::bf16: visit(bf16_t{}); return;
    case DType::f16: visit(f16_t{}); return;
    default: throw std::logic_error(std::string("cpu kernel reached with non-float dtype ") + dtype_name(dtype));
  }
}

// visit(A{}, B{}) and visit(A{}, B{}, C{}) for every combination of float dtypes.
template <class Visit>
void visit_float_dtypes(DType first, DType second, Visit&& visit) {
  visit_float_dtype(first, [&](auto a) { visit_float_dtype(second, [&](auto b) { visit(a, b); }); });
}
template <class Visit>
void visit_float_dtypes(DType first, DType second, DType third, Visit&& visit) {
  visit_float_dtypes(first, second,
                     [&](auto a, auto b) { visit_float_dtype(third, [&](auto c) { visit(a, b, c); }); });
}

// Calls visit(S{}, D{}) for a (source, destination) pair of the graph ops: equal
// float dtypes, or f32 with a 16-bit float either way round. Only those eight
// pairs are instantiated.
template <class Visit>
void visit_float_pair(DType source, DType destination, const char* op, Visit&& visit) {
  auto is_half = [](DType d) { return d == DType::bf16 || d == DType::f16; };
  const bool allowed = dtype_is_floating(source) &&
                       (source == destination || (source == DType::f32 && is_half(destination)) ||
                        (destination == DType::f32 && is_half(source)));
  if (!allowed)
    throw std::invalid_argument(std::string(op) + ": unsupported dtype pair " + dtype_name(source) + " -> " +
                                dtype_name(destination));
  visit_float_dtypes(source, destination, [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    constexpr bool same = std::is_same_v<S, D>;
    constexpr bool with_f32 = std::is_same_v<S, float> || std::is_same_v<D, float>;
    constexpr bool with_f64 = std::is_same_v<S, double> || std::is_same_v<D, double>;
    if constexpr (same || (with_f32 && !with_f64)) visit(s, d);
  });
}

// f64 when any of the storage types is double, else f32: the arithmetic type of a
// mixed-dtype elementwise op.
template <class... T>
using common_compute_t = std::conditional_t<(std::is_same_v<T, double> || ...), double, float>;

// Stores a compute value (f32, or f64 for f64 arithmetic) into storage type T.
template <class T>
inline T to_storage(float value) {
  return from_compute<T>(value);
}
template <class T>
inline T to_storage(double value) {
  return from_compute_d<T>(value);
}

}  // namespace gc::kernels::cpu
