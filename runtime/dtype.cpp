// dtype.cpp: names, sizes and the f16 conversions (bit manipulation, no hardware
// instructions, so that every machine rounds the same way).
#include "runtime/dtype.h"

#include <cfloat>
#include <cmath>
#include <stdexcept>

namespace gc {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64})
    if (name == dtype_name(d)) return d;
  throw std::invalid_argument("unknown dtype '" + name + "' (expected f32, f64, bf16, f16, i32 or i64)");
}

bool dtype_is_floating(DType dtype) { return dtype != DType::i32 && dtype != DType::i64; }

double dtype_epsilon(DType dtype) {
  switch (dtype) {
    case DType::f32: return FLT_EPSILON;
    case DType::f64: return DBL_EPSILON;
    case DType::bf16: return 1.0 / 128.0;
    case DType::f16: return 1.0 / 1024.0;
    default: return 0.0;
  }
}

float f64_to_f32_round_to_odd(double value) {
  float rounded = static_cast<float>(value);
  if (std::isnan(value) || std::isinf(value) || static_cast<double>(rounded) == value) return rounded;
  // Inexact: take the neighbour toward zero (overflow lands on FLT_MAX) and mark it odd.
  if (std::fabs(static_cast<double>(rounded)) > std::fabs(value)) rounded = std::nextafter(rounded, 0.0f);
  return bits_float(float_bits(rounded) | 1u);
}

uint16_t f32_to_f16(float value) {
  uint32_t bits = float_bits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  int exponent = static_cast<int>(magnitude >> 23) - 127;
  if (exponent > 15) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (exponent >= -14) {
    // Normal f16: keep 10 mantissa bits, round to nearest even on the 13 dropped bits.
    uint32_t mantissa = magnitude & 0x7fffffu;
    uint32_t half = static_cast<uint32_t>(exponent + 15) << 10 | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half += 1;  // may carry into inf: correct
    return static_cast<uint16_t>(sign | half);
  }
  if (exponent < -25) return sign;  // below half the smallest subnormal
  // Subnormal: value = m * 2^-24 with m < 1024; shift the full 24-bit significand.
  uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  int shift = -exponent - 14 + 13;  // 14..24 +? bits to drop
  uint32_t half = significand >> shift;
  uint32_t rest = significand & ((1u << shift) - 1u);
  uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (half & 1u))) half += 1;
  return static_cast<uint16_t>(sign | half);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0) return bits_float(sign);
    // Subnormal: normalize.
    int e = -1;
    do {
      mantissa <<= 1;
      ++e;
    } while ((mantissa & 0x400u) == 0);
    mantissa &= 0x3ffu;
    return bits_float(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mantissa << 13));
  }
  return bits_float(sign | (exponent + 127 - 15) << 23 | (mantissa << 13));
}

}  // namespace gc
