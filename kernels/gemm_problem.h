// kernels/gemm_problem.h: a GEMM as kernels/linear.cpp asks it of a backend, on
// raw row-major buffers; nothing in it is specific to a device.
//
//   C[m, n] = alpha * op(A) op(B) + beta * C + bias   (bias [n] added to every row)
//
// The cpu GEMM (kernels/cpu/gemm.h) and cuBLAS (kernels/cuda/linear.h) each take
// this struct and say which dtype mixes they accept. Both honour beta == 0 by
// never reading C (it may hold garbage or NaN).
#pragma once

#include <cstdint>

#include "runtime/dtype.h"

namespace gc::kernels {

struct GemmProblem {
  int64_t m = 0, n = 0, k = 0;
  // op(A) [m, k]: A is [m, k] with row stride lda, or [k, m] when transpose_a.
  const void* a = nullptr;
  DType a_dtype = DType::f32;
  int64_t lda = 0;
  bool transpose_a = false;
  // op(B) [k, n]: B is [k, n] with row stride ldb, or [n, k] when transpose_b.
  const void* b = nullptr;
  DType b_dtype = DType::f32;
  int64_t ldb = 0;
  bool transpose_b = false;
  // C [m, n] with row stride ldc.
  void* c = nullptr;
  DType c_dtype = DType::f32;
  int64_t ldc = 0;
  double alpha = 1.0;
  double beta = 0.0;
  // Optional bias [n] (f32, bf16 or f16; f64 on the f64 path), added after alpha and beta.
  const void* bias = nullptr;
  DType bias_dtype = DType::f32;
  // f32 inputs only: cuBLAS may round them to TF32 on tensor cores (--tf32, off
  // by default: kernels::set_tf32). The cpu GEMM ignores it.
  bool tf32 = false;
};

// Whether a bias is added in the GEMM's own output pass on cuda (cuBLASLt's
// bias epilogue: a bias of C's dtype, or f32 under a 16-bit C, rounded to C's
// dtype first: rounds_bias_first) rather than by a
// second kernel over C. kernels/cuda/linear.cu asks cuBLASLt only then, and
// kernels/traffic.h models the product accordingly.
// An f32 bias under a 16-bit C is rounded to C's dtype before it is added, on
// every device (as autocast casts a linear's bias; cuBLASLt's epilogue takes a
// bias of C's dtype only): one small kernel first on cuda.
inline bool rounds_bias_first(DType c_dtype, DType bias_dtype) {
  return bias_dtype == DType::f32 && (c_dtype == DType::bf16 || c_dtype == DType::f16);
}

inline bool bias_in_gemm_epilogue(DType c_dtype, DType bias_dtype) {
  if (c_dtype == DType::f64) return false;
  return bias_dtype == c_dtype || (bias_dtype == DType::f32 && (c_dtype == DType::bf16 || c_dtype == DType::f16));
}

}  // namespace gc::kernels
