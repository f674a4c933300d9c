// gemm_micro_kernel.cpp: the register-tiled micro-kernel of the cpu GEMM and the
// macro-kernel that walks it over a block of C (see gemm_micro_kernel.h).
//
// A micro-tile keeps kMR x kNR sums in registers for a whole k slice and touches C
// once, in its epilogue. Its k loop runs in index order, one multiply-add per product,
// so a tile's result depends only on its packed inputs; a tile at the edge of C
// runs over the zero-padded panels and stores only its mr x nr corner.
#include "kernels/cpu/gemm_micro_kernel.h"

#include <algorithm>

namespace gc::kernels::cpu::gemm_detail {
namespace {

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

}  // namespace

// B panel outer, so each B micro-panel is reused from L1 across the A panels.
void macro_kernel(bool a_columns, int64_t mc, int64_t nc, int64_t kc, const float* a_panels, const float* b_panels,
                  float* c, int64_t ldc, const Epilogue& e, PrefetchStream* next_a, PrefetchStream* next_b) {
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

}  // namespace gc::kernels::cpu::gemm_detail
