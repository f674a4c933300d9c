// gemm_micro_kernel.h: the ISA layer of the cpu GEMM (gemm.cpp's private parts,
// not for other callers): the SIMD vocabulary and tile shape the build's -march
// picks (AVX-512, AVX2/FMA or scalar), and the macro-kernel that runs the
// register-tiled micro-kernel over packed panels.
//
// Invariant: packing (gemm_pack.cpp), the micro-kernel and the drivers (gemm.cpp)
// all lay panels out from the kMR / kNR / kKC defined here, so every file of the
// GEMM must be compiled with the same -march (the Makefile builds them alike).
#pragma once

#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "runtime/dtype.h"

namespace gc::kernels::cpu::gemm_detail {

// ---- SIMD vocabulary: one vector of kVecWidth floats ---------------------------
#if defined(__AVX512F__)
constexpr int kVecWidth = 16;
constexpr int kMR = 14;  // 14 x 2 accumulators + 2 B vectors + 1 broadcast = 31 of 32 zmm
constexpr int kVecsPerRow = 2;
constexpr int64_t kMC = 112;
using Vec = __m512;
inline Vec vec_zero() { return _mm512_setzero_ps(); }
inline Vec vec_load(const float* p) { return _mm512_loadu_ps(p); }
inline void vec_store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vec_broadcast(float x) { return _mm512_set1_ps(x); }
inline Vec vec_fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vec_mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec vec_add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kVecWidth = 8;
constexpr int kMR = 6;  // 6 x 2 accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm
constexpr int kVecsPerRow = 2;
constexpr int64_t kMC = 96;
using Vec = __m256;
inline Vec vec_zero() { return _mm256_setzero_ps(); }
inline Vec vec_load(const float* p) { return _mm256_loadu_ps(p); }
inline void vec_store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vec_broadcast(float x) { return _mm256_set1_ps(x); }
inline Vec vec_fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vec_mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec vec_add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
#else
constexpr int kVecWidth = 1;
constexpr int kMR = 4;
constexpr int kVecsPerRow = 8;
constexpr int64_t kMC = 64;
using Vec = float;
inline Vec vec_zero() { return 0.0f; }
inline Vec vec_load(const float* p) { return *p; }
inline void vec_store(float* p, Vec v) { *p = v; }
inline Vec vec_broadcast(float x) { return x; }
inline Vec vec_fma(Vec a, Vec b, Vec c) { return a * b + c; }
inline Vec vec_mul(Vec a, Vec b) { return a * b; }
inline Vec vec_add(Vec a, Vec b) { return a + b; }
#endif

constexpr int kNR = kVecWidth * kVecsPerRow;
constexpr int64_t kKC = 256;                 // k slice: a B micro-panel (kKC x kNR) stays in L1
constexpr int64_t kPanelFloats = kMR * kKC;  // one packed A micro-panel, either layout

static_assert(kMC % kMR == 0, "row blocks are whole micro-panels");

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// out = alpha * acc (+ beta * out when beta != 0) (+ bias[j]); beta == 0 never reads out.
struct Epilogue {
  float alpha;
  float beta;
  const float* bias;  // [columns of this tile] or null
};

// The source bytes of the next k slice, pulled toward L2 a few cache lines per
// micro-tile while this slice computes, so that packing them does not stall on DRAM.
class PrefetchStream {
 public:
  PrefetchStream() = default;
  // op(X)[rows r0.., cols c0..] of X stored [.., ld] (or transposed: X[c * ld + r]).
  PrefetchStream(const void* x, DType dtype, int64_t ld, bool transposed, int64_t r0, int64_t rows, int64_t c0,
                 int64_t cols) {
    const int64_t element = static_cast<int64_t>(dtype_size(dtype));
    first_ = static_cast<const char*>(x) + (transposed ? c0 * ld + r0 : r0 * ld + c0) * element;
    stride_bytes_ = ld * element;
    rows_ = transposed ? cols : rows;
    lines_per_row_ = ceil_div((transposed ? rows : cols) * element, 64);
  }
  int64_t total_lines() const { return rows_ * lines_per_row_; }
  void issue(int64_t lines) {
    for (; lines > 0 && row_ < rows_; --lines) {
      __builtin_prefetch(first_ + row_ * stride_bytes_ + line_ * 64, 0, 2);
      if (++line_ == lines_per_row_) line_ = 0, ++row_;
    }
  }

 private:
  const char* first_ = nullptr;
  int64_t stride_bytes_ = 0, rows_ = 0, lines_per_row_ = 1;
  int64_t row_ = 0, line_ = 0;  // the next line to fetch
};

// Rows [0, mc) x columns [0, nc) of a block of C from packed A panels (stride
// kPanelFloats; a_columns: the [kc][kMR] layout of a transposed A) and packed B
// panels (stride kc * kNR). Each micro-tile sums its kc products in index order.
// next_a / next_b, when given, are prefetched a share per micro-tile.
void macro_kernel(bool a_columns, int64_t mc, int64_t nc, int64_t kc, const float* a_panels, const float* b_panels,
                  float* c, int64_t ldc, const Epilogue& e, PrefetchStream* next_a = nullptr,
                  PrefetchStream* next_b = nullptr);

}  // namespace gc::kernels::cpu::gemm_detail
