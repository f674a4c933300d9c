// gemm.cpp: packed, cache-blocked GEMM with a register-tiled SIMD micro-kernel
// (AVX-512, AVX2/FMA or scalar, chosen by the build's -march), parallel with OpenMP.
//
// Two drivers share the packing routines and the micro-kernel:
//   - whole-k (k <= kWholeKMax, every GraphCast forward and grad_x): B is packed
//     once for all of k; each thread takes blocks of kMC rows and runs the k loop
//     inside, so its block of C (or its f32 tile, for a bf16/f16 C) stays in L2;
//   - k-outer (long reductions such as grad_W = x^T grad_y): each thread owns
//     whole rows of C for all of k and packs its own kKC slices of A and B (so no
//     thread ever waits at a barrier), prefetching the next slice while it
//     computes. Its buffers do not grow with k.
// Determinism: the k loop is split at fixed kKC boundaries and every micro-tile
// sums its slice in index order, whatever the thread count; threads only decide
// who computes a tile, never how.
#include "kernels/cpu/gemm.h"

#include <omp.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace gc::kernels::cpu {
namespace {

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
constexpr int64_t kKC = 256;                        // k slice: a B micro-panel (kKC x kNR) stays in L1
constexpr int64_t kWholeKMax = 3072;                // whole-k driver up to this k
constexpr int64_t kWholeBBytes = int64_t(3) << 20;  // packed B budget of the whole-k driver
constexpr int64_t kWholeNCMax = 768;                // C columns per pass of the whole-k driver
constexpr int64_t kOuterNC = 512;                   // C columns per pass of the k-outer driver
constexpr int64_t kOuterRowsMax = kMR * 40;         // rows of C one thread of the k-outer driver owns at a time
constexpr int64_t kPanelFloats = kMR * kKC;         // one packed A micro-panel, either layout
constexpr size_t kAlignBytes = 64;

static_assert(kMC % kMR == 0, "row blocks are whole micro-panels");
static_assert(kWholeBBytes / (4 * kWholeKMax) >= kNR, "the whole-k driver fits at least one panel");

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
size_t float_bytes(int64_t count) { return static_cast<size_t>(round_up(count * 4, kAlignBytes)); }

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

// A micro-panel holds kMR rows of op(A)[i0.., p0..p0+kc), zero-padded to kMR rows:
// rows layout [kMR][kKC] when A is stored [m, k] (each row is a contiguous copy),
// columns layout [kc][kMR] when A is stored transposed (each k step is contiguous).
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

// A B micro-panel holds op(B)[p0..p0+kc, j0..j0+nr) as [kc][kNR], zero-padded to kNR columns.
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

// ---- micro-kernel ------------------------------------------------------------------
// out = alpha * acc (+ beta * out when beta != 0) (+ bias[j]); beta == 0 never reads out.
struct Epilogue {
  float alpha;
  float beta;
  const float* bias;  // [columns of this tile] or null
};

// kVecs vectors of each B row are used: a narrow tail panel (nr <= kVecWidth)
// skips the FMAs of its zero padding.
template <bool kAColumns, int kVecs>
void micro_tile(int64_t kc, const float* __restrict a, const float* __restrict b, float* c, int64_t ldc, int64_t mr,
                int64_t nr, const Epilogue& e) {
  Vec acc[kMR][kVecs];
#pragma GCC unroll 16
  for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < kVecs; ++v) acc[r][v] = vec_zero();

  for (int64_t p = 0; p < kc; ++p) {
    Vec bv[kVecs];
#pragma GCC unroll 8
    for (int v = 0; v < kVecs; ++v) bv[v] = vec_load(b + p * kNR + v * kVecWidth);
#pragma GCC unroll 16
    for (int r = 0; r < kMR; ++r) {
      const Vec ar = vec_broadcast(kAColumns ? a[p * kMR + r] : a[r * kKC + p]);
#pragma GCC unroll 8
      for (int v = 0; v < kVecs; ++v) acc[r][v] = vec_fma(ar, bv[v], acc[r][v]);
    }
  }

  const Vec alpha = vec_broadcast(e.alpha);
  const Vec beta = vec_broadcast(e.beta);
  if (mr == kMR && nr == kVecs * kVecWidth) {
#pragma GCC unroll 16
    for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < kVecs; ++v) {
        float* out = c + r * ldc + v * kVecWidth;
        Vec value = vec_mul(alpha, acc[r][v]);
        if (e.beta != 0.0f) value = vec_add(value, vec_mul(beta, vec_load(out)));
        if (e.bias) value = vec_add(value, vec_load(e.bias + v * kVecWidth));
        vec_store(out, value);
      }
    return;
  }
  float tile[kMR * kNR];  // row stride kNR whatever kVecs
#pragma GCC unroll 16
  for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < kVecs; ++v) vec_store(tile + r * kNR + v * kVecWidth, acc[r][v]);
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t j = 0; j < nr; ++j) {
      float value = e.alpha * tile[r * kNR + j];
      if (e.beta != 0.0f) value = value + e.beta * c[r * ldc + j];
      if (e.bias) value = value + e.bias[j];
      c[r * ldc + j] = value;
    }
}

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
// kPanelFloats) and packed B panels (stride kc * kNR). B panel outer, so each B
// micro-panel is reused from L1 across the A panels.
void macro_kernel(bool a_columns, int64_t mc, int64_t nc, int64_t kc, const float* a_panels, const float* b_panels,
                  float* c, int64_t ldc, const Epilogue& e, PrefetchStream* next_a = nullptr,
                  PrefetchStream* next_b = nullptr) {
  const int64_t tiles = ceil_div(mc, kMR) * ceil_div(nc, kNR);
  const int64_t a_quota = next_a ? ceil_div(next_a->total_lines(), tiles) : 0;
  const int64_t b_quota = next_b ? ceil_div(next_b->total_lines(), tiles) : 0;
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t nr = std::min<int64_t>(kNR, nc - jr);
    const float* b = b_panels + (jr / kNR) * kc * kNR;
    const Epilogue tile_e{e.alpha, e.beta, e.bias ? e.bias + jr : nullptr};
    for (int64_t ir = 0; ir < mc; ir += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, mc - ir);
      const float* a = a_panels + (ir / kMR) * kPanelFloats;
      if (next_a) next_a->issue(a_quota);
      if (next_b) next_b->issue(b_quota);
      float* out = c + ir * ldc + jr;
      if (nr > kVecWidth || kVecsPerRow == 1) {
        if (a_columns)
          micro_tile<true, kVecsPerRow>(kc, a, b, out, ldc, mr, nr, tile_e);
        else
          micro_tile<false, kVecsPerRow>(kc, a, b, out, ldc, mr, nr, tile_e);
      } else {
        if (a_columns)
          micro_tile<true, 1>(kc, a, b, out, ldc, mr, nr, tile_e);
        else
          micro_tile<false, 1>(kc, a, b, out, ldc, mr, nr, tile_e);
      }
    }
  }
}

// C[rows, cols] = alpha * acc + beta * C + bias, converted to C's dtype; acc may be
// null (k == 0). Same operation order as the micro-kernel's epilogue.
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
      if (g.bias) widen_run(g.bias, g.bias_dtype, j0 + j, bias_values, count);
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

// ---- workspace layout -----------------------------------------------------------
// Shared: [bias, f32: n] and, for the whole-k driver, [packed B, all of k]. Then per
// thread: [packed A] [f32 C tile] and, for the k-outer driver, [packed B slice].
// Every piece is 64-byte aligned.
struct Layout {
  bool whole_k = true;
  int64_t nc = 0;         // C columns per pass (multiple of kNR)
  int64_t unit_rows = 0;  // k-outer: rows of C per work unit
  int64_t units = 0;      // k-outer: work units (a multiple of the thread count)
  size_t bias_bytes = 0, b_bytes = 0, a_bytes = 0, tile_bytes = 0;
  int threads = 1;
  size_t shared_bytes() const { return bias_bytes + (whole_k ? b_bytes : 0); }
  size_t per_thread_bytes() const { return a_bytes + tile_bytes + (whole_k ? 0 : b_bytes); }
  size_t total_bytes() const {
    return kAlignBytes + shared_bytes() + static_cast<size_t>(threads) * per_thread_bytes();
  }
};

// The k-outer driver's units depend on the thread count (each thread owns whole
// rows of C for the entire reduction, so no thread ever waits for another); which
// thread computes a row never changes how it is computed.
Layout make_layout(int64_t m, int64_t n, int64_t k, int threads) {
  Layout l;
  l.threads = threads;
  const int64_t n_padded = round_up(n, kNR);
  l.whole_k = k <= kWholeKMax;
  if (l.whole_k) {
    const int64_t budget_columns = kWholeBBytes / (4 * std::max<int64_t>(k, 1)) / kNR * kNR;
    l.nc = std::min({n_padded, kWholeNCMax, budget_columns});
    l.b_bytes = float_bytes(k * l.nc);
    const int64_t block_rows = std::min(kMC, round_up(m, kMR));
    l.a_bytes = float_bytes(ceil_div(block_rows, kMR) * kPanelFloats);
    l.tile_bytes = float_bytes(block_rows * l.nc);
  } else {
    l.nc = std::min(n_padded, kOuterNC);
    l.units = round_up(ceil_div(m, kOuterRowsMax), threads);
    l.unit_rows = round_up(ceil_div(m, l.units), kMR);
    l.b_bytes = float_bytes(kKC * l.nc);
    l.tile_bytes = float_bytes(l.unit_rows * l.nc);
    l.a_bytes = float_bytes(ceil_div(l.unit_rows, kMR) * kPanelFloats);
  }
  l.bias_bytes = float_bytes(n_padded);
  return l;
}

float* carve(char*& cursor, size_t bytes) {
  float* p = reinterpret_cast<float*>(cursor);
  cursor += bytes;
  return p;
}

// ---- drivers ------------------------------------------------------------------------
void run_whole_k(const GemmProblem& g, const Layout& l, char* base, int threads) {
  const bool direct = g.c_dtype == DType::f32;  // accumulate straight into C
  const float alpha = static_cast<float>(g.alpha), beta = static_cast<float>(g.beta);
  char* cursor = base;
  float* bias = carve(cursor, l.bias_bytes);
  float* packed_b = carve(cursor, l.b_bytes);
  char* thread_base = cursor;
  if (g.bias) widen_run(g.bias, g.bias_dtype, 0, bias, g.n);
  const int64_t k_slices = ceil_div(g.k, kKC);
  const int64_t row_blocks = ceil_div(g.m, kMC);

  for (int64_t j0 = 0; j0 < g.n; j0 += l.nc) {
    const int64_t nc = std::min(l.nc, g.n - j0);
    const int64_t b_panels = ceil_div(nc, kNR);
#pragma omp parallel num_threads(threads)
    {
      // Slice s of packed B starts at s * kKC * l.nc; within it, panel q at q * kc * kNR.
#pragma omp for schedule(static)
      for (int64_t unit = 0; unit < k_slices * b_panels; ++unit) {
        const int64_t s = unit / b_panels, q = unit % b_panels;
        const int64_t p0 = s * kKC, kc = std::min(kKC, g.k - p0);
        pack_b_panel(g, p0, kc, j0 + q * kNR, std::min<int64_t>(kNR, nc - q * kNR),
                     packed_b + s * kKC * l.nc + q * kc * kNR);
      }
      char* mine = thread_base + static_cast<size_t>(omp_get_thread_num()) * l.per_thread_bytes();
      float* packed_a = carve(mine, l.a_bytes);
      float* tile = carve(mine, l.tile_bytes);
#pragma omp for schedule(dynamic, 1)
      for (int64_t block = 0; block < row_blocks; ++block) {
        const int64_t i0 = block * kMC, mc = std::min(kMC, g.m - i0);
        for (int64_t s = 0; s < k_slices; ++s) {
          const int64_t p0 = s * kKC, kc = std::min(kKC, g.k - p0);
          for (int64_t ir = 0; ir < mc; ir += kMR)
            pack_a_panel(g, i0 + ir, std::min<int64_t>(kMR, mc - ir), p0, kc, packed_a + (ir / kMR) * kPanelFloats);
          Epilogue e{1.0f, s == 0 ? 0.0f : 1.0f, nullptr};  // the f32 tile: plain sums
          if (direct) e = s == 0 ? Epilogue{alpha, beta, g.bias ? bias + j0 : nullptr} : Epilogue{alpha, 1.0f, nullptr};
          float* c = direct ? static_cast<float*>(g.c) + i0 * g.ldc + j0 : tile;
          macro_kernel(g.transpose_a, mc, nc, kc, packed_a, packed_b + s * kKC * l.nc, c, direct ? g.ldc : l.nc, e);
        }
        if (!direct) finish_rows(g, tile, l.nc, i0, mc, j0, nc);
      }
    }
  }
}

void run_k_outer(const GemmProblem& g, const Layout& l, char* base, int threads) {
  const bool direct = g.c_dtype == DType::f32;
  const float alpha = static_cast<float>(g.alpha), beta = static_cast<float>(g.beta);
  char* cursor = base;
  float* bias = carve(cursor, l.bias_bytes);
  char* thread_base = cursor;
  if (g.bias) widen_run(g.bias, g.bias_dtype, 0, bias, g.n);
  const int64_t k_slices = ceil_div(g.k, kKC);

#pragma omp parallel num_threads(threads)
  {
    char* mine = thread_base + static_cast<size_t>(omp_get_thread_num()) * l.per_thread_bytes();
    float* packed_a = carve(mine, l.a_bytes);
    float* tile = carve(mine, l.tile_bytes);
    float* packed_b = carve(mine, l.b_bytes);
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < l.units; ++unit) {
      const int64_t i0 = unit * l.unit_rows, rows = std::min(l.unit_rows, g.m - i0);
      if (rows <= 0) continue;
      for (int64_t j0 = 0; j0 < g.n; j0 += l.nc) {
        const int64_t nc = std::min(l.nc, g.n - j0);
        float* c = direct ? static_cast<float*>(g.c) + i0 * g.ldc + j0 : tile;
        const int64_t ldc = direct ? g.ldc : l.nc;
        for (int64_t s = 0; s < k_slices; ++s) {
          const int64_t p0 = s * kKC, kc = std::min(kKC, g.k - p0);
          for (int64_t ir = 0; ir < rows; ir += kMR)
            pack_a_panel(g, i0 + ir, std::min<int64_t>(kMR, rows - ir), p0, kc, packed_a + (ir / kMR) * kPanelFloats);
          for (int64_t jr = 0; jr < nc; jr += kNR)
            pack_b_panel(g, p0, kc, j0 + jr, std::min<int64_t>(kNR, nc - jr), packed_b + (jr / kNR) * kc * kNR);
          Epilogue e{1.0f, s == 0 ? 0.0f : 1.0f, nullptr};
          if (direct) e = s == 0 ? Epilogue{alpha, beta, g.bias ? bias + j0 : nullptr} : Epilogue{alpha, 1.0f, nullptr};
          const int64_t next_kc = std::min(kKC, g.k - p0 - kc);  // <= 0 on the last slice
          PrefetchStream next_a, next_b;
          if (next_kc > 0) {
            next_a = PrefetchStream(g.a, g.a_dtype, g.lda, g.transpose_a, i0, rows, p0 + kc, next_kc);
            next_b = PrefetchStream(g.b, g.b_dtype, g.ldb, g.transpose_b, p0 + kc, next_kc, j0, nc);
          }
          macro_kernel(g.transpose_a, rows, nc, kc, packed_a, packed_b, c, ldc, e, &next_a, &next_b);
        }
        if (!direct) finish_rows(g, tile, l.nc, i0, rows, j0, nc);
      }
    }
  }
}

// Below about a million multiply-adds, starting a team costs more than it saves
// (and far more when other processes hold the cores).
bool parallel_worth_it(const GemmProblem& g) {
  return static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k) >= double(1 << 20);
}

// Simple all-f64 path: one row per iteration, k summed in order.
void run_f64(const GemmProblem& g) {
  const double* a = static_cast<const double*>(g.a);
  const double* b = static_cast<const double*>(g.b);
  const double* bias = static_cast<const double*>(g.bias);
  double* c = static_cast<double*>(g.c);
  constexpr int64_t kChunk = 64;
#pragma omp parallel for schedule(static) if (parallel_worth_it(g))
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j0 = 0; j0 < g.n; j0 += kChunk) {
      const int64_t count = std::min(kChunk, g.n - j0);
      double acc[kChunk] = {};
      for (int64_t p = 0; p < g.k; ++p) {
        const double x = g.transpose_a ? a[p * g.lda + i] : a[i * g.lda + p];
        if (g.transpose_b)
          for (int64_t t = 0; t < count; ++t) acc[t] += x * b[(j0 + t) * g.ldb + p];
        else
          for (int64_t t = 0; t < count; ++t) acc[t] += x * b[p * g.ldb + j0 + t];
      }
      for (int64_t t = 0; t < count; ++t) {
        double value = g.alpha * acc[t];
        double& out = c[i * g.ldc + j0 + t];
        if (g.beta != 0.0) value += g.beta * out;
        if (bias) value += bias[j0 + t];
        out = value;
      }
    }
  }
}

bool is_half_or_single(DType d) { return d == DType::f32 || d == DType::bf16 || d == DType::f16; }

void validate(const GemmProblem& g) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("gemm_cpu: " + what); };
  if (g.m < 0 || g.n < 0 || g.k < 0)
    fail("negative size m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k));
  const bool all_f64 = g.a_dtype == DType::f64 && g.b_dtype == DType::f64 && g.c_dtype == DType::f64;
  if (!all_f64 && !(is_half_or_single(g.a_dtype) && is_half_or_single(g.b_dtype) && is_half_or_single(g.c_dtype)))
    fail(std::string("unsupported dtypes A ") + dtype_name(g.a_dtype) + ", B " + dtype_name(g.b_dtype) + ", C " +
         dtype_name(g.c_dtype) + " (each of f32/bf16/f16, or all f64)");
  if (g.bias && (all_f64 ? g.bias_dtype != DType::f64 : !is_half_or_single(g.bias_dtype)))
    fail(std::string("bias dtype ") + dtype_name(g.bias_dtype) + " does not match the product's dtypes");
  if (g.m == 0 || g.n == 0) return;
  if (!g.c) fail("C is null");
  if (g.ldc < g.n) fail("ldc " + std::to_string(g.ldc) + " < n " + std::to_string(g.n));
  if (g.k == 0) return;
  if (!g.a || !g.b) fail("A or B is null");
  const int64_t a_cols = g.transpose_a ? g.m : g.k, b_cols = g.transpose_b ? g.k : g.n;
  if (g.lda < a_cols) fail("lda " + std::to_string(g.lda) + " < " + std::to_string(a_cols) + " columns of A");
  if (g.ldb < b_cols) fail("ldb " + std::to_string(g.ldb) + " < " + std::to_string(b_cols) + " columns of B");
}

}  // namespace

int gemm_cpu_micro_rows() { return kMR; }
int gemm_cpu_micro_cols() { return kNR; }

size_t gemm_cpu_workspace_bytes(int64_t m, int64_t n, int64_t k) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  return make_layout(m, n, k, std::max(1, omp_get_max_threads())).total_bytes();
}

void gemm_cpu(const GemmProblem& g, void* workspace, size_t workspace_bytes) {
  validate(g);
  if (g.m == 0 || g.n == 0) return;
  if (g.a_dtype == DType::f64) {
    run_f64(g);
    return;
  }
  if (g.k == 0) {
    finish_rows(g, nullptr, 0, 0, g.m, 0, g.n);
    return;
  }
  // As many threads as the workspace has buffers for: the result does not depend on it.
  Layout layout = make_layout(g.m, g.n, g.k, parallel_worth_it(g) ? std::max(1, omp_get_max_threads()) : 1);
  while (layout.threads > 1 && layout.total_bytes() > workspace_bytes)
    layout = make_layout(g.m, g.n, g.k, layout.threads - 1);
  if (!workspace || layout.total_bytes() > workspace_bytes)
    throw std::invalid_argument("gemm_cpu: workspace of " + std::to_string(workspace_bytes) + " bytes, need " +
                                std::to_string(layout.total_bytes()) + " for m=" + std::to_string(g.m) +
                                " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k));
  char* base = reinterpret_cast<char*>(round_up(reinterpret_cast<intptr_t>(workspace), kAlignBytes));
  if (layout.whole_k)
    run_whole_k(g, layout, base, layout.threads);
  else
    run_k_outer(g, layout, base, layout.threads);
}

}  // namespace gc::kernels::cpu
