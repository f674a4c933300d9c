// dtype.h: the element types of gc tensors and the conversions between the
// 16-bit floats and f32.
//
// Invariants: f32 -> bf16 rounds to nearest, ties to even, and NaN stays NaN
// (quiet bit forced, sign kept); f32 -> f16 rounds to nearest even, produces
// subnormals below 2^-14, overflows to inf, keeps NaN. Both widen exactly.
// A double is rounded into any float type once (round_double_to), here and
// only here: host-made tensors (Tensor::from_doubles, batches) and the cast
// kernels give the same bits for the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace gc {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// Throws std::invalid_argument naming the accepted names.
DType dtype_from_name(const std::string& name);
bool dtype_is_floating(DType dtype);
// Relative precision used by the tolerance table: FLT_EPSILON, 2^-10, 2^-7, DBL_EPSILON.
double dtype_epsilon(DType dtype);

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}
inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

inline uint16_t f32_to_bf16(float value) {
  uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}
inline float bf16_to_f32(uint16_t bits) { return bits_float(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_f16(float value);
float f16_to_f32(uint16_t bits);

// Storage types of the 16-bit floats, distinct so templates can dispatch on them.
struct bf16_t {
  uint16_t bits;
};
struct f16_t {
  uint16_t bits;
};

// Load/store any storage type as its compute type (f32 for the 16-bit floats).
inline float to_compute(float v) { return v; }
inline double to_compute(double v) { return v; }
inline float to_compute(bf16_t v) { return bf16_to_f32(v.bits); }
inline float to_compute(f16_t v) { return f16_to_f32(v.bits); }
template <class T>
inline T from_compute(float v);
template <>
inline float from_compute<float>(float v) { return v; }
template <>
inline double from_compute<double>(float v) { return v; }
template <>
inline bf16_t from_compute<bf16_t>(float v) { return bf16_t{f32_to_bf16(v)}; }
template <>
inline f16_t from_compute<f16_t>(float v) { return f16_t{f32_to_f16(v)}; }
template <class T>
inline T from_compute_d(double v) {
  return from_compute<T>(static_cast<float>(v));
}
template <>
inline double from_compute_d<double>(double v) { return v; }

// A double rounded once, to nearest even, into storage type T. Going through
// f32 with round-to-nearest would round twice (f64 -> f32 -> bf16) and can miss
// the nearest 16-bit value; rounding to f32 "to odd" first keeps the sticky
// information, so the final round-to-nearest-even is exact (f32 has at least
// two more significand bits than bf16 and f16).
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
inline uint16_t f64_to_bf16(double value) { return round_double_to<bf16_t>(value).bits; }
inline uint16_t f64_to_f16(double value) { return round_double_to<f16_t>(value).bits; }

// The dtype that sums and statistics accumulate in, for an input of a given
// dtype: f64 for f64, f32 for everything else, so a 16-bit input never
// accumulates in 16 bits. It is the DType twin of compute_t<T> below, and the
// dtype of everything that carries an accumulator: reductions, the loss,
// LayerNorm's statistics, parameter and weight gradients, master weights.
constexpr DType accumulation_dtype(DType input) { return input == DType::f64 ? DType::f64 : DType::f32; }

// Compute (accumulation) type of a storage type: f64 stays f64, everything else f32.
template <class T>
struct compute_type {
  using type = float;
};
template <>
struct compute_type<double> {
  using type = double;
};
template <class T>
using compute_t = typename compute_type<T>::type;

}  // namespace gc
