// gemm_pack.h: dtype conversion and panel packing of the cpu GEMM (gemm.cpp's
// private parts, not for other callers).
//
// Packed panels are f32 in the exact layouts the micro-kernel reads
// (gemm_micro_kernel.h), zero-padded to whole micro-panels, so that edge tiles
// run the same code over zeros; padding never reaches C.
#pragma once

#include <cstdint>

#include "kernels/gemm_problem.h"

namespace gc::kernels::cpu::gemm_detail {

// out[0, count) = source[offset, offset + count) widened to f32 (dtype f32, bf16 or f16).
void widen_run(const void* source, DType dtype, int64_t offset, float* out, int64_t count);
// out[0, count) = the bias of g at [offset, offset + count) as the product adds it:
// widened to f32, an f32 bias under a 16-bit C first rounded to C's dtype (as
// autocast casts a linear's bias; cuBLASLt's bias epilogue takes C's dtype only).
void widen_bias_run(const GemmProblem& g, int64_t offset, float* out, int64_t count);
// dest[offset, offset + count) = in[0, count) rounded to dtype (nearest-even).
void narrow_run(const float* in, void* dest, DType dtype, int64_t offset, int64_t count);

// An A micro-panel holds kMR rows of op(A)[i0.., p0..p0+kc), zero-padded to kMR rows:
// rows layout [kMR][kKC] when A is stored [m, k] (each row is a contiguous copy),
// columns layout [kc][kMR] when A is stored transposed (each k step is contiguous).
void pack_a_panel(const GemmProblem& g, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* panel);
// A B micro-panel holds op(B)[p0..p0+kc, j0..j0+nr) as [kc][kNR], zero-padded to kNR columns.
void pack_b_panel(const GemmProblem& g, int64_t p0, int64_t kc, int64_t j0, int64_t nr, float* panel);

// C[rows, cols] = alpha * acc + beta * C + bias, converted to C's dtype; acc may be
// null (k == 0). Same operation order as the micro-kernel's epilogue.
void finish_rows(const GemmProblem& g, const float* acc, int64_t ld_acc, int64_t i0, int64_t rows, int64_t j0,
                 int64_t cols);

}  // namespace gc::kernels::cpu::gemm_detail
