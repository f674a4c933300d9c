// kernels/cuda/common.h: what every kernels/cuda/*.cu file shares (nvcc only;
// never include it from a .cpp): device loads and stores of the storage types,
// the compute-type rules of the cpu kernels, host-side dtype dispatch, launch
// shapes and the entry checks.
//
// Invariant: a value converted here rounds bit for bit as runtime/dtype.h and
// kernels/cpu/elementwise.h round it on the host (round to nearest even, NaN kept
// quiet with its sign, f16 subnormals, f64 -> 16-bit through f32 rounded to odd),
// so a cast or a plain copy gives the same bits on both devices.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/launch.h"
#include "runtime/cuda_check.h"
#include "runtime/tensor.h"

namespace gc::cuda {

// ---- storage <-> compute on the device --------------------------------------------

__device__ __forceinline__ uint16_t f32_to_bf16_bits(float value) {
  const uint32_t bits = __float_as_uint(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

// The same bit manipulation as gc::f32_to_f16 (no hardware conversion, whose NaN
// payloads differ from the host's).
__device__ __forceinline__ uint16_t f32_to_f16_bits(float value) {
  const uint32_t bits = __float_as_uint(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  const int exponent = static_cast<int>(magnitude >> 23) - 127;
  if (exponent > 15) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exponent >= -14) {
    const uint32_t mantissa = magnitude & 0x7fffffu;
    uint32_t half = static_cast<uint32_t>(exponent + 15) << 10 | (mantissa >> 13);
    const uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half += 1;
    return static_cast<uint16_t>(sign | half);
  }
  if (exponent < -25) return sign;
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const int shift = -exponent - 14 + 13;
  uint32_t half = significand >> shift;
  const uint32_t rest = significand & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (half & 1u))) half += 1;
  return static_cast<uint16_t>(sign | half);
}

__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in f32
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  return __uint_as_float(sign | (exponent + 127 - 15) << 23 | (mantissa << 13));
}

// f64 <-> f32 as the host (x86 SSE) converts them: a NaN keeps its sign and the
// top of its payload and becomes quiet, where the gpu's own conversion would
// return its canonical NaN. Other values convert in hardware (round to nearest).
__device__ __forceinline__ float f64_to_f32_nearest(double value) {
  if (!isnan(value)) return static_cast<float>(value);
  const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(value));
  return __uint_as_float((static_cast<uint32_t>(bits >> 32) & 0x80000000u) | 0x7fc00000u |
                         (static_cast<uint32_t>(bits >> 29) & 0x003fffffu));
}
__device__ __forceinline__ double f32_to_f64_exact(float value) {
  if (!isnan(value)) return static_cast<double>(value);
  const unsigned long long bits = __float_as_uint(value);
  return __longlong_as_double(static_cast<long long>(((bits & 0x80000000ull) << 32) | 0x7ff8000000000000ull |
                                                     ((bits & 0x003fffffull) << 29)));
}

// A storage value in its compute type (f32, f64 for f64); widening is exact.
__device__ __forceinline__ float load_value(float v) { return v; }
__device__ __forceinline__ double load_value(double v) { return v; }
__device__ __forceinline__ float load_value(bf16_t v) { return __uint_as_float(static_cast<uint32_t>(v.bits) << 16); }
__device__ __forceinline__ float load_value(f16_t v) { return f16_bits_to_f32(v.bits); }

// A compute value (float or double) stored as T, as cpu::to_storage does: a
// double goes through f32 unless T is double.
template <class T, class C>
__device__ __forceinline__ T to_storage(C value) {
  if constexpr (std::is_same_v<T, C>) {
    return value;
  } else if constexpr (std::is_same_v<T, double>) {
    return f32_to_f64_exact(value);
  } else {
    float narrowed;
    if constexpr (std::is_same_v<C, double>)
      narrowed = f64_to_f32_nearest(value);
    else
      narrowed = value;
    if constexpr (std::is_same_v<T, float>)
      return narrowed;
    else if constexpr (std::is_same_v<T, bf16_t>)
      return bf16_t{f32_to_bf16_bits(narrowed)};
    else
      return f16_t{f32_to_f16_bits(narrowed)};
  }
}

// f64_to_f32_round_to_odd of runtime/dtype.h: truncate toward zero, and mark an inexact result odd.
__device__ __forceinline__ float f64_to_f32_round_to_odd(double value) {
  if (isnan(value) || isinf(value)) return f64_to_f32_nearest(value);
  const float truncated = __double2float_rz(value);
  if (static_cast<double>(truncated) == value) return truncated;
  return __uint_as_float(__float_as_uint(truncated) | 1u);
}

// A double rounded once, to nearest even, into T (round_double_to of runtime/dtype.h).
template <class T>
__device__ __forceinline__ T round_double_to(double value) {
  if constexpr (std::is_same_v<T, double>) {
    return value;
  } else if constexpr (std::is_same_v<T, float>) {
    return f64_to_f32_nearest(value);
  } else {
    return to_storage<T>(f64_to_f32_round_to_odd(value));
  }
}

// f64 as soon as one storage type is f64, else f32 (cpu::common_compute_t).
template <class... T>
using common_compute_t = std::conditional_t<(std::is_same_v<T, double> || ...), double, float>;

__device__ __forceinline__ float exp_compute(float v) { return expf(v); }
__device__ __forceinline__ double exp_compute(double v) { return exp(v); }
__device__ __forceinline__ float sqrt_compute(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_compute(double v) { return sqrt(v); }
// a * b + c rounded once (the cpu's std::fma): where a sum must equal the cpu's
// bitwise, its fused multiply-adds are spelled out rather than left to contraction.
__device__ __forceinline__ float fma_compute(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_compute(double a, double b, double c) { return fma(a, b, c); }

// ---- warp and block sums in a fixed order ----------------------------------------------

constexpr unsigned kFullWarp = 0xffffffffu;

// Butterfly sum over the 32 lanes: every lane ends with the same bits (each step
// adds the same two values in either order, and addition commutes).
template <class Acc>
__device__ __forceinline__ Acc warp_sum(Acc value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(kFullWarp, value, offset);
  return value;
}

// Sum over the block's threads (blockDim.x a multiple of 32, at most 1024): warp
// sums, then the warp totals summed by warp 0. Valid in thread 0. Ends with a
// barrier so warp_totals [32] (shared) can be reused at once.
template <class Acc>
__device__ __forceinline__ Acc block_sum(Acc value, Acc* warp_totals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  value = warp_sum(value);
  if (lane == 0) warp_totals[warp] = value;
  __syncthreads();
  Acc total = 0;
  if (warp == 0) total = warp_sum(lane < static_cast<int>(blockDim.x >> 5) ? warp_totals[lane] : Acc(0));
  __syncthreads();
  return total;
}

// ---- launch shapes ----------------------------------------------------------------------

// The block and grid sizes are in kernels/cuda/launch.h; these are the device
// side of its grid-stride loops.
__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t total_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }
__device__ __forceinline__ int64_t global_warp() { return global_thread() >> 5; }
__device__ __forceinline__ int64_t total_warps() { return total_threads() >> 5; }
__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x & 31); }

// ---- host side: dispatch and entry checks ---------------------------------------------------

// Calls visit(T{}) with T the storage type of a float dtype.
template <class Visit>
void visit_float_dtype(const char* op, DType dtype, Visit&& visit) {
  switch (dtype) {
    case DType::f32: visit(float{}); return;
    case DType::f64: visit(double{}); return;
    case DType::bf16: visit(bf16_t{}); return;
    case DType::f16: visit(f16_t{}); return;
    default:
      throw std::invalid_argument(std::string(op) + ": the cuda kernels take float dtypes, got " + dtype_name(dtype));
  }
}

template <class Visit>
void visit_float_dtypes(const char* op, DType first, DType second, Visit&& visit) {
  visit_float_dtype(op, first, [&](auto a) { visit_float_dtype(op, second, [&](auto b) { visit(a, b); }); });
}

template <class Visit>
void visit_float_dtypes(const char* op, DType first, DType second, DType third, Visit&& visit) {
  visit_float_dtypes(op, first, second, [&](auto a, auto b) {
    visit_float_dtype(op, third, [&](auto c) { visit(a, b, c); });
  });
}

// Every defined tensor lives on the cuda device. Tensors are contiguous by
// construction (views are row ranges), so a data pointer and a shape describe them.
inline void require_on_cuda(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t->defined() && t->device() != Device::cuda)
      throw std::invalid_argument(std::string(op) + ": cuda kernel given " + t->describe());
}

}  // namespace gc::cuda
