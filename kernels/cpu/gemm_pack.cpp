// gemm_pack.cpp: the cpu GEMM's conversions between the callers' dtypes and f32:
// packing panels of A and B (widened while copied) and finishing rows of C from
// an f32 tile (alpha, beta, bias, then rounded to C's dtype once).
//
// f16 conversions use the F16C / AVX-512 instructions where the build has them;
// their rounding (IEEE nearest-even, subnormals kept) is that of f32_to_f16, so
// results do not depend on which path ran.
#include "kernels/cpu/gemm_pack.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/cpu/gemm_micro_kernel.h"

namespace gc::kernels::cpu::gemm_detail {

// ---- dtype conversion of contiguous runs ---------------------------------------
void widen_run(const void* source, DType dtype, int64_t offset, float* out, int64_t count) {
  switch (dtype) {
    case DType::f32:
      std::memcpy(out, static_cast<const float*>(source) + offset, static_cast<size_t>(count) * 4);
      return;
    case DType::bf16: {
      const uint16_t* in = static_cast<const uint16_t*>(source) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_f32(in[i]);
      return;
    }
    case DType::f16: {
      const uint16_t* in = static_cast<const uint16_t*>(source) + offset;
      int64_t i = 0;
#if defined(__AVX512F__)
      for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(out + i,
                         _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
#elif defined(__F16C__)
      for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
#endif
      for (; i < count; ++i) out[i] = f16_to_f32(in[i]);
      return;
    }
    default:
      throw std::logic_error("gemm: widen_run on a non-16/32-bit float dtype");
  }
}

void widen_bias_run(const GemmProblem& g, int64_t offset, float* out, int64_t count) {
  widen_run(g.bias, g.bias_dtype, offset, out, count);
  if (g.bias_dtype != DType::f32) return;
  if (g.c_dtype == DType::bf16)
    for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_f32(f32_to_bf16(out[i]));
  else if (g.c_dtype == DType::f16)
    for (int64_t i = 0; i < count; ++i) out[i] = f16_to_f32(f32_to_f16(out[i]));
}

void narrow_run(const float* in, void* dest, DType dtype, int64_t offset, int64_t count) {
  switch (dtype) {
    case DType::f32:
      std::memcpy(static_cast<float*>(dest) + offset, in, static_cast<size_t>(count) * 4);
      return;
    case DType::bf16: {
      uint16_t* out = static_cast<uint16_t*>(dest) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = f32_to_bf16(in[i]);
      return;
    }
    case DType::f16: {
      uint16_t* out = static_cast<uint16_t*>(dest) + offset;
      int64_t i = 0;
      // Hardware rounding is IEEE nearest-even with subnormals, the same as f32_to_f16.
#if defined(__AVX512F__)
      for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                            _mm512_maskz_cvtps_ph(0xffff, _mm512_loadu_ps(in + i),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(__F16C__)
      for (; i + 8 <= count; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
      for (; i < count; ++i) out[i] = f32_to_f16(in[i]);
      return;
    }
    default:
      throw std::logic_error("gemm: narrow_run on a non-16/32-bit float dtype");
  }
}

// ---- packing ---------------------------------------------------------------------
namespace {

// A run of a compile-time length (one micro-panel row): inlined and vectorized for
// f32 and bf16, which dominate; packing transposed A costs one of these per k step.
template <int kCount>
inline void widen_fixed(const void* source, DType dtype, int64_t offset, float* out) {
  if (dtype == DType::f32) {
    std::memcpy(out, static_cast<const float*>(source) + offset, kCount * 4);
  } else if (dtype == DType::bf16) {
    const uint16_t* in = static_cast<const uint16_t*>(source) + offset;
    for (int i = 0; i < kCount; ++i) out[i] = bf16_to_f32(in[i]);
  } else {
    widen_run(source, dtype, offset, out, kCount);
  }
}

}  // namespace

void pack_a_panel(const GemmProblem& g, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* panel) {
  if (!g.transpose_a) {
    for (int64_t r = 0; r < mr; ++r) widen_run(g.a, g.a_dtype, (i0 + r) * g.lda + p0, panel + r * kKC, kc);
    for (int64_t r = mr; r < kMR; ++r) std::memset(panel + r * kKC, 0, static_cast<size_t>(kc) * 4);
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      float* out = panel + p * kMR;
      if (mr == kMR) {
        widen_fixed<kMR>(g.a, g.a_dtype, (p0 + p) * g.lda + i0, out);
        continue;
      }
      widen_run(g.a, g.a_dtype, (p0 + p) * g.lda + i0, out, mr);
      for (int64_t r = mr; r < kMR; ++r) out[r] = 0.0f;
    }
  }
}

void pack_b_panel(const GemmProblem& g, int64_t p0, int64_t kc, int64_t j0, int64_t nr, float* panel) {
  if (!g.transpose_b) {
    for (int64_t p = 0; p < kc; ++p) {
      float* out = panel + p * kNR;
      if (nr == kNR) {
        widen_fixed<kNR>(g.b, g.b_dtype, (p0 + p) * g.ldb + j0, out);
        continue;
      }
      widen_run(g.b, g.b_dtype, (p0 + p) * g.ldb + j0, out, nr);
      for (int64_t c = nr; c < kNR; ++c) out[c] = 0.0f;
    }
  } else {
    float column[kKC];  // one column of op(B), widened, then scattered with stride kNR
    for (int64_t c = 0; c < kNR; ++c) {
      if (c < nr) widen_run(g.b, g.b_dtype, (j0 + c) * g.ldb + p0, column, kc);
      for (int64_t p = 0; p < kc; ++p) panel[p * kNR + c] = c < nr ? column[p] : 0.0f;
    }
  }
}

// ---- finishing C ------------------------------------------------------------------
void finish_rows(const GemmProblem& g, const float* acc, int64_t ld_acc, int64_t i0, int64_t rows, int64_t j0,
                 int64_t cols) {
  constexpr int64_t kChunk = 64;
  float old_values[kChunk], bias_values[kChunk], out[kChunk];
  const float alpha = static_cast<float>(g.alpha), beta = static_cast<float>(g.beta);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row_offset = (i0 + r) * g.ldc;
    for (int64_t j = 0; j < cols; j += kChunk) {
      const int64_t count = std::min(kChunk, cols - j);
      if (beta != 0.0f) widen_run(g.c, g.c_dtype, row_offset + j0 + j, old_values, count);
      if (g.bias) widen_bias_run(g, j0 + j, bias_values, count);
      for (int64_t t = 0; t < count; ++t) {
        float value = acc ? alpha * acc[r * ld_acc + j + t] : 0.0f;
        if (beta != 0.0f) value = value + beta * old_values[t];
        if (g.bias) value = value + bias_values[t];
        out[t] = value;
      }
      narrow_run(out, g.c, g.c_dtype, row_offset + j0 + j, count);
    }
  }
}

}  // namespace gc::kernels::cpu::gemm_detail
