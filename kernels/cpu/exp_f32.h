// kernels/cpu/exp_f32.h: e^x of f32 values, many at a time, for SiLU and sigmoid.
//
// The method of glibc's expf (since 2.28; ARM's optimized-routines, MIT): in
// doubles, x N / ln 2 = k + r with N = 32, k an integer found by adding and
// subtracting 1.5 2^52 (round to nearest), 2^(k/N) from a table of the 32 values
// 2^(i/32) with k's upper bits added to the exponent, and 2^(r/N) by a cubic;
// one rounding to f32 at the end (at most 0.502 ULP from e^x). The same
// operations (multiply-adds fused), the same coefficients and the same table give
// the same bits as glibc's expf: on all 2^32 inputs against glibc 2.36, in the
// AVX-512, AVX2 and scalar paths (tests/kernels/test_elementwise.cpp samples them
// on every run). So the cpu's SiLU and sigmoid keep the bits they had when they
// called std::exp one element at a time, and no longer depend on the C library.
//
// exp_f32 runs 8 values a step with AVX-512 (the table in four registers, picked
// by permutes), 4 with AVX2 (a gather), one at a time otherwise: the same
// arithmetic in every path. (The AVX-512 conversions and shift are the maskz forms
// with every lane set: the plain ones trip g++ 12's -Wmaybe-uninitialized.) Values with |x| >= 88 or NaN take the scalar
// special cases (overflow to inf above log(2^128), 0 below log(2^-150), NaN and
// infinities as glibc returns them).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace gc::kernels::cpu {

namespace exp_detail {

constexpr int kTableBits = 5;
constexpr int kTableSize = 1 << kTableBits;  // N
constexpr double kInvLn2N = 0x1.71547652b82fep+0 * kTableSize;
constexpr double kShift = 0x1.8p+52;
// The cubic's coefficients for r / N (optimized-routines' exp2f_data poly, scaled).
constexpr double kC0 = 0x1.c6af84b912394p-5 / kTableSize / kTableSize / kTableSize;
constexpr double kC1 = 0x1.ebfce50fac4f3p-3 / kTableSize / kTableSize;
constexpr double kC2 = 0x1.62e42ff0c52d6p-1 / kTableSize;

inline uint64_t bits_of(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
inline double double_of(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}
inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Table entry i: the bits of 2^(i/N) less i << (52 - kTableBits), so that adding
// k << (52 - kTableBits) gives 2^(k/N) for any integer k in range. Filled once
// from std::exp2, whose values for these 32 arguments are glibc's table's (an entry
// one bit off would show in ExpF32.IsGlibcExpfBitForBit).
struct Table {
  alignas(64) uint64_t entry[kTableSize];
  Table();
};
const Table& table();

// |x| >= 88 or NaN (the top 12 bits of x, as glibc tests them).
inline bool is_special(float x) { return ((bits_of(x) >> 20) & 0x7ffu) >= (bits_of(88.0f) >> 20); }

// The ordinary case, for |x| < 88 (and for 88 <= |x| within the bounds below).
// Every multiply-add is one fused operation, spelled out: glibc's x86-64 expf on
// a processor with FMA (its runtime choice here) fuses them, and a build that
// left them to the compiler would round k or r differently where it has no FMA
// (2 of the 2^32 inputs differ then).
inline float core(float x, const uint64_t* entry) {
  const double xd = static_cast<double>(x);
  const double shifted = std::fma(kInvLn2N, xd, kShift);  // k in the low bits
  const uint64_t ki = bits_of(shifted);
  const double kd = shifted - kShift;
  const double r = std::fma(kInvLn2N, xd, -kd);
  const double s = double_of(entry[ki % kTableSize] + (ki << (52 - kTableBits)));
  const double p = std::fma(kC0, r, kC1);
  const double r2 = r * r;
  double y = std::fma(kC2, r, 1.0);
  y = std::fma(p, r2, y);
  return static_cast<float>(y * s);
}

inline float special(float x, const uint64_t* entry) {
  if (bits_of(x) == bits_of(-__builtin_inff())) return 0.0f;
  if (((bits_of(x) >> 20) & 0x7ffu) >= (bits_of(__builtin_inff()) >> 20)) return x + x;  // NaN, +inf
  if (x > 0x1.62e42ep6f) return __builtin_inff();                                          // overflows
  if (x < -0x1.9fe368p6f) return 0.0f;                                                     // underflows
  return core(x, entry);
}

}  // namespace exp_detail

// y[i] = e^x[i], or e^-x[i] with negate (sigmoid's; -x flips the sign bit, NaNs
// included, as the unary minus does), for i < n; y may be x.
inline void exp_f32(float* y, const float* x, int64_t n, bool negate = false) {
  using namespace exp_detail;
  const uint64_t* entry = table().entry;
  int64_t i = 0;
#if defined(__AVX512F__)
  {
    const __m512d t0 = _mm512_load_pd(reinterpret_cast<const double*>(entry));
    const __m512d t1 = _mm512_load_pd(reinterpret_cast<const double*>(entry + 8));
    const __m512d t2 = _mm512_load_pd(reinterpret_cast<const double*>(entry + 16));
    const __m512d t3 = _mm512_load_pd(reinterpret_cast<const double*>(entry + 24));
    const __m512d inv_ln2_n = _mm512_set1_pd(kInvLn2N), shift = _mm512_set1_pd(kShift);
    const __m512d c0 = _mm512_set1_pd(kC0), c1 = _mm512_set1_pd(kC1), c2 = _mm512_set1_pd(kC2);
    const __m512d one = _mm512_set1_pd(1.0);
    const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(negate ? static_cast<int>(0x80000000u) : 0));
    const __m256i special_top = _mm256_set1_epi32(static_cast<int>(bits_of(88.0f) >> 20));
    for (; i + 8 <= n; i += 8) {
      const __m256 xf = _mm256_xor_ps(_mm256_loadu_ps(x + i), sign_bit);
      const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(xf), 20), _mm256_set1_epi32(0x7ff));
      const int special_lanes = _mm256_movemask_ps(_mm256_castsi256_ps(
          _mm256_or_si256(_mm256_cmpgt_epi32(top, special_top), _mm256_cmpeq_epi32(top, special_top))));
      const __m512d xd = _mm512_maskz_cvtps_pd(0xff, xf);
      const __m512d shifted = _mm512_fmadd_pd(inv_ln2_n, xd, shift);
      const __m512i ki = _mm512_castpd_si512(shifted);
      const __m512d kd = _mm512_sub_pd(shifted, shift);
      const __m512d r = _mm512_fmsub_pd(inv_ln2_n, xd, kd);
      const __m512i index = _mm512_and_si512(ki, _mm512_set1_epi64(kTableSize - 1));
      const __m512d low = _mm512_permutex2var_pd(t0, index, t1);    // entries 0 .. 15 (index bit 3 picks t1)
      const __m512d high = _mm512_permutex2var_pd(t2, index, t3);   // entries 16 .. 31
      const __mmask8 upper = _mm512_test_epi64_mask(index, _mm512_set1_epi64(16));
      const __m512i t = _mm512_add_epi64(_mm512_castpd_si512(_mm512_mask_blend_pd(upper, low, high)),
                                         _mm512_maskz_slli_epi64(0xff, ki, 52 - kTableBits));
      const __m512d s = _mm512_castsi512_pd(t);
      const __m512d p = _mm512_fmadd_pd(c0, r, c1);
      const __m512d r2 = _mm512_mul_pd(r, r);
      __m512d v = _mm512_fmadd_pd(c2, r, one);
      v = _mm512_fmadd_pd(p, r2, v);
      _mm256_storeu_ps(y + i, _mm512_maskz_cvtpd_ps(0xff, _mm512_mul_pd(v, s)));
      if (special_lanes)
        for (int j = 0; j < 8; ++j)
          if (special_lanes >> j & 1) y[i + j] = special(negate ? -x[i + j] : x[i + j], entry);
    }
  }
#elif defined(__AVX2__) && defined(__FMA__)
  {
    const __m256d inv_ln2_n = _mm256_set1_pd(kInvLn2N), shift = _mm256_set1_pd(kShift);
    const __m256d c0 = _mm256_set1_pd(kC0), c1 = _mm256_set1_pd(kC1), c2 = _mm256_set1_pd(kC2);
    const __m256d one = _mm256_set1_pd(1.0);
    const __m128 sign_bit = _mm_castsi128_ps(_mm_set1_epi32(negate ? static_cast<int>(0x80000000u) : 0));
    const __m128i special_top = _mm_set1_epi32(static_cast<int>(bits_of(88.0f) >> 20));
    for (; i + 4 <= n; i += 4) {
      const __m128 xf = _mm_xor_ps(_mm_loadu_ps(x + i), sign_bit);
      const __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_castps_si128(xf), 20), _mm_set1_epi32(0x7ff));
      const int special_lanes =
          _mm_movemask_ps(_mm_castsi128_ps(_mm_or_si128(_mm_cmpgt_epi32(top, special_top), _mm_cmpeq_epi32(top, special_top))));
      const __m256d xd = _mm256_cvtps_pd(xf);
      const __m256d shifted = _mm256_fmadd_pd(inv_ln2_n, xd, shift);
      const __m256i ki = _mm256_castpd_si256(shifted);
      const __m256d kd = _mm256_sub_pd(shifted, shift);
      const __m256d r = _mm256_fmsub_pd(inv_ln2_n, xd, kd);
      const __m256i index = _mm256_and_si256(ki, _mm256_set1_epi64x(kTableSize - 1));
      const __m256i looked_up =
          _mm256_castpd_si256(_mm256_i64gather_pd(reinterpret_cast<const double*>(entry), index, 8));
      const __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(looked_up, _mm256_slli_epi64(ki, 52 - kTableBits)));
      const __m256d p = _mm256_fmadd_pd(c0, r, c1);
      const __m256d r2 = _mm256_mul_pd(r, r);
      __m256d v = _mm256_fmadd_pd(c2, r, one);
      v = _mm256_fmadd_pd(p, r2, v);
      _mm_storeu_ps(y + i, _mm256_cvtpd_ps(_mm256_mul_pd(v, s)));
      if (special_lanes)
        for (int j = 0; j < 4; ++j)
          if (special_lanes >> j & 1) y[i + j] = special(negate ? -x[i + j] : x[i + j], entry);
    }
  }
#endif
  for (; i < n; ++i) {
    const float v = negate ? -x[i] : x[i];
    y[i] = is_special(v) ? special(v, entry) : core(v, entry);
  }
}

}  // namespace gc::kernels::cpu
