// gemm.cpp: packed, cache-blocked GEMM with a register-tiled SIMD micro-kernel
// (AVX-512, AVX2/FMA or scalar, chosen by the build's -march), parallel with OpenMP.
//
// Two drivers share the packing routines and the micro-kernel:
//   - whole-k (k <= kWholeKMax, every GraphCast forward and grad_x): B is packed
//     once for all of k; each thread takes blocks of kMC rows (by runs of B
//     panels when there are few blocks) and runs the k loop inside, so its block
//     of C (or its f32 tile, for a bf16/f16 C) stays in L2;
//   - k-outer (long reductions such as grad_W = x^T grad_y): each thread owns
//     a block of C (rows, and a group of column panels when C has few rows) for
//     all of k and packs its own kKC slices of A and B (so no thread ever waits
//     at a barrier), prefetching the next slice while it computes. Its buffers do
//     not grow with k.
// Determinism: the k loop is split at fixed kKC boundaries and every micro-tile
// sums its slice in index order, whatever the thread count; threads only decide
// who computes a tile, never how.
//
// Files: gemm_micro_kernel.{h,cpp} (the ISA layer: SIMD vocabulary, tile shape,
// micro- and macro-kernel), gemm_pack.{h,cpp} (dtype conversion, packing,
// finishing C) and this one (workspace layout, the two drivers, the f64 path and
// the entry points).
#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm_micro_kernel.h"
#include "kernels/cpu/gemm_pack.h"

namespace gc::kernels::cpu {
namespace {

using namespace gemm_detail;

constexpr int64_t kWholeKMax = 3072;                // whole-k driver up to this k
constexpr int64_t kWholeBBytes = int64_t(3) << 20;  // packed B budget of the whole-k driver
constexpr int64_t kWholeNCMax = 768;                // C columns per pass of the whole-k driver
constexpr int64_t kOuterNC = 512;                   // C columns per pass of the k-outer driver
constexpr int64_t kOuterRowsMax = kMR * 40;         // rows of C one thread of the k-outer driver owns at a time
constexpr size_t kAlignBytes = 64;

static_assert(kWholeBBytes / (4 * kWholeKMax) >= kNR, "the whole-k driver fits at least one panel");

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
size_t float_bytes(int64_t count) { return static_cast<size_t>(round_up(count * 4, kAlignBytes)); }

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
  if (g.bias) widen_bias_run(g, 0, bias, g.n);
  const int64_t k_slices = ceil_div(g.k, kKC);
  const int64_t row_blocks = ceil_div(g.m, kMC);

  for (int64_t j0 = 0; j0 < g.n; j0 += l.nc) {
    const int64_t nc = std::min(l.nc, g.n - j0);
    const int64_t b_panels = ceil_div(nc, kNR);
    // Column runs per row block: enough units for two per thread. Every C element
    // is summed the same way whichever unit holds it (runs split at panel edges).
    const int64_t wanted_units = threads > 1 ? 2 * static_cast<int64_t>(threads) : 1;
    const int64_t col_chunks = std::min(b_panels, std::max<int64_t>(1, ceil_div(wanted_units, row_blocks)));
    const int64_t panels_per_chunk = ceil_div(b_panels, col_chunks);
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
      // A unit is a block of rows by a run of whole B panels: with few row blocks
      // (a weight gradient's m is a layer's width) the panels give every thread work.
#pragma omp for schedule(dynamic, 1)
      for (int64_t unit = 0; unit < row_blocks * col_chunks; ++unit) {
        const int64_t block = unit / col_chunks, chunk = unit % col_chunks;
        const int64_t q0 = chunk * panels_per_chunk, q1 = std::min(b_panels, q0 + panels_per_chunk);
        if (q0 >= q1) continue;
        const int64_t c0 = q0 * kNR, cols = std::min(nc, q1 * kNR) - c0;  // this unit's columns of the pass
        const int64_t i0 = block * kMC, mc = std::min(kMC, g.m - i0);
        for (int64_t s = 0; s < k_slices; ++s) {
          const int64_t p0 = s * kKC, kc = std::min(kKC, g.k - p0);
          for (int64_t ir = 0; ir < mc; ir += kMR)
            pack_a_panel(g, i0 + ir, std::min<int64_t>(kMR, mc - ir), p0, kc, packed_a + (ir / kMR) * kPanelFloats);
          Epilogue e{1.0f, s == 0 ? 0.0f : 1.0f, nullptr};  // the f32 tile: plain sums
          if (direct)
            e = s == 0 ? Epilogue{alpha, beta, g.bias ? bias + j0 + c0 : nullptr} : Epilogue{alpha, 1.0f, nullptr};
          float* c = direct ? static_cast<float*>(g.c) + i0 * g.ldc + j0 + c0 : tile + c0;
          macro_kernel(g.transpose_a, mc, cols, kc, packed_a, packed_b + s * kKC * l.nc + q0 * kc * kNR, c,
                       direct ? g.ldc : l.nc, e);
        }
        if (!direct) finish_rows(g, tile + c0, l.nc, i0, mc, j0 + c0, cols);
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
  if (g.bias) widen_bias_run(g, 0, bias, g.n);
  const int64_t k_slices = ceil_div(g.k, kKC);
  // A weight gradient's few rows of C split unevenly into kMR-row units (64 rows:
  // 42 + 22); groups of whole column panels then even the threads out, within the
  // same buffers. Every C element is summed the same way whichever unit holds it.
  const int64_t n_panels = ceil_div(g.n, kNR);
  const int64_t col_groups =
      threads > 1 ? std::min(n_panels, std::max<int64_t>(1, ceil_div(2 * static_cast<int64_t>(threads), l.units))) : 1;
  const int64_t group_cols = ceil_div(n_panels, col_groups) * kNR;

#pragma omp parallel num_threads(threads)
  {
    char* mine = thread_base + static_cast<size_t>(omp_get_thread_num()) * l.per_thread_bytes();
    float* packed_a = carve(mine, l.a_bytes);
    float* tile = carve(mine, l.tile_bytes);
    float* packed_b = carve(mine, l.b_bytes);
#pragma omp for schedule(dynamic, 1)
    for (int64_t unit = 0; unit < l.units * col_groups; ++unit) {
      const int64_t i0 = (unit / col_groups) * l.unit_rows, rows = std::min(l.unit_rows, g.m - i0);
      const int64_t g0 = (unit % col_groups) * group_cols, g1 = std::min(g.n, g0 + group_cols);
      if (rows <= 0) continue;
      for (int64_t j0 = g0; j0 < g1; j0 += l.nc) {
        const int64_t nc = std::min(l.nc, g1 - j0);
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

namespace {
// The team at start-up: read during static initialization, before main can
// lower it (libgomp has read OMP_NUM_THREADS by then: its constructor runs first).
const int g_threads_at_start = std::max(1, omp_get_max_threads());
}  // namespace

int gemm_cpu_workspace_threads() { return std::max(g_threads_at_start, omp_get_max_threads()); }

size_t gemm_cpu_workspace_bytes_for(int64_t m, int64_t n, int64_t k, int threads) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  return make_layout(m, n, k, std::max(1, threads)).total_bytes();
}

size_t gemm_cpu_workspace_bytes(int64_t m, int64_t n, int64_t k) {
  return gemm_cpu_workspace_bytes_for(m, n, k, gemm_cpu_workspace_threads());
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
