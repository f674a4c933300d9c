// kernels/cpu/layernorm.cpp: LayerNorm forward and backward on the cpu, the
// reference the cuda kernels are tested against.
//
// Determinism: every row (statistics, output, grad_x) is computed by one thread
// with a fixed summation order (kLanes interleaved partial sums combined
// pairwise), and each column of grad_gamma/grad_beta is summed by one thread over
// the rows in fixed blocks of kRowBlock. Results are therefore bitwise the same
// for any thread count. Scratch is a few small stack arrays, never sized by R.
#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/dtype_dispatch.h"
#include "kernels/cpu/parallel.h"

namespace gc::kernels::cpu {
namespace {

constexpr int kLanes = 8;             // interleaved partial sums of a row reduction
constexpr int64_t kColumnTile = 32;   // columns of grad_gamma/grad_beta owned by one task
constexpr int64_t kRowBlock = 256;    // rows summed before folding into the column total (= cuda kLayerNormRowBlock)

// Sum of term(c) for c in [0, cols): lane l sums the columns c = l (mod kLanes),
// so the loop vectorizes while the order stays fixed by cols alone.
template <class Acc, class Term>
inline Acc lane_sum(int64_t cols, const Term& term) {
  Acc lanes[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += term(c + l);
  for (int l = 0; c < cols; ++c, ++l) lanes[l] += term(c);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

template <class T, class P>
void forward_impl(T* out,              // [R, C]
                  compute_t<T>* mean,  // [R]
                  compute_t<T>* rstd,  // [R]
                  const T* x,          // [R, C]
                  const P* gamma,      // [C]
                  const P* beta,       // [C]
                  int64_t rows, int64_t cols, double eps) {
  using Acc = compute_t<T>;
  const Acc inv_cols = Acc(1) / static_cast<Acc>(cols);
  const Acc eps_c = static_cast<Acc>(eps);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* outr = out + r * cols;
    const Acc row_mean = lane_sum<Acc>(cols, [&](int64_t c) { return Acc(to_compute(xr[c])); }) * inv_cols;
    // Second pass over the centred values: no cancellation for rows with a large mean.
    const Acc row_var = lane_sum<Acc>(cols, [&](int64_t c) {
                          const Acc d = Acc(to_compute(xr[c])) - row_mean;
                          return d * d;
                        }) * inv_cols;
    const Acc row_rstd = Acc(1) / std::sqrt(row_var + eps_c);
    for (int64_t c = 0; c < cols; ++c) {
      const Acc xhat = (Acc(to_compute(xr[c])) - row_mean) * row_rstd;
      outr[c] = from_compute_d<T>(xhat * Acc(to_compute(gamma[c])) + Acc(to_compute(beta[c])));
    }
    mean[r] = row_mean;
    rstd[r] = row_rstd;
  }
}

// grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = grad_out * gamma.
template <class T, class P>
void backward_rows(T* grad_x,                  // [R, C]
                   const T* grad_out,          // [R, C]
                   const T* x,                 // [R, C]
                   const compute_t<T>* mean,   // [R]
                   const compute_t<T>* rstd,   // [R]
                   const P* gamma,             // [C]
                   int64_t rows, int64_t cols) {
  using Acc = compute_t<T>;
  const Acc inv_cols = Acc(1) / static_cast<Acc>(cols);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* dyr = grad_out + r * cols;
    T* dxr = grad_x + r * cols;
    const Acc row_mean = mean[r], row_rstd = rstd[r];
    const Acc mean_g =
        lane_sum<Acc>(cols, [&](int64_t c) { return Acc(to_compute(dyr[c])) * Acc(to_compute(gamma[c])); }) *
        inv_cols;
    const Acc mean_g_xhat = lane_sum<Acc>(cols, [&](int64_t c) {
                              const Acc xhat = (Acc(to_compute(xr[c])) - row_mean) * row_rstd;
                              return Acc(to_compute(dyr[c])) * Acc(to_compute(gamma[c])) * xhat;
                            }) * inv_cols;
    for (int64_t c = 0; c < cols; ++c) {
      const Acc xhat = (Acc(to_compute(xr[c])) - row_mean) * row_rstd;
      const Acc g = Acc(to_compute(dyr[c])) * Acc(to_compute(gamma[c]));
      dxr[c] = from_compute_d<T>(row_rstd * (g - mean_g - xhat * mean_g_xhat));
    }
  }
}

// grad_gamma[c] += sum_r grad_out[r, c] * xhat[r, c]; grad_beta[c] += sum_r grad_out[r, c].
// One task owns a tile of columns and walks all rows, so no partials cross
// threads; blocks of kRowBlock rows are summed first and then folded into the
// total, which keeps the rounding error of a million-row sum small.
//
// The cuda backward (kernels/cuda/layernorm.cu) repeats this order bitwise: the
// block partials from 0 in row order, folded from 0 in block order, the total
// added once. The grad_gamma term is an explicit fused multiply-add, so its
// rounding does not depend on whether the compiler contracts a * b + c (g++
// does with -march=native on an FMA machine, not without) and nvcc's fmaf/fma
// gives the same bits.
template <class T>
void backward_params(compute_t<T>* grad_gamma,   // [C]
                     compute_t<T>* grad_beta,    // [C]
                     const T* grad_out,          // [R, C]
                     const T* x,                 // [R, C]
                     const compute_t<T>* mean,   // [R]
                     const compute_t<T>* rstd,   // [R]
                     int64_t rows, int64_t cols) {
  using Acc = compute_t<T>;
  const int64_t tiles = (cols + kColumnTile - 1) / kColumnTile;
#pragma omp parallel for schedule(dynamic, 1) if (rows * cols >= kParallelMinElements)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t c0 = tile * kColumnTile;
    const int64_t width = std::min(kColumnTile, cols - c0);
    Acc total_gamma[kColumnTile] = {}, total_beta[kColumnTile] = {};
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      Acc block_gamma[kColumnTile] = {}, block_beta[kColumnTile] = {};
      const int64_t r_end = std::min(rows, r0 + kRowBlock);
      for (int64_t r = r0; r < r_end; ++r) {
        const T* xr = x + r * cols + c0;
        const T* dyr = grad_out + r * cols + c0;
        const Acc row_mean = mean[r], row_rstd = rstd[r];
        for (int64_t j = 0; j < width; ++j) {
          const Acc dy = Acc(to_compute(dyr[j]));
          block_gamma[j] = std::fma(dy, (Acc(to_compute(xr[j])) - row_mean) * row_rstd, block_gamma[j]);
          block_beta[j] += dy;
        }
      }
      for (int64_t j = 0; j < width; ++j) {
        total_gamma[j] += block_gamma[j];
        total_beta[j] += block_beta[j];
      }
    }
    for (int64_t j = 0; j < width; ++j) {
      grad_gamma[c0 + j] += total_gamma[j];
      grad_beta[c0 + j] += total_beta[j];
    }
  }
}

}  // namespace

void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, double eps) {
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  if (rows == 0) return;
  visit_float_dtypes(x.dtype(), gamma.dtype(), [&](auto x_tag, auto gamma_tag) {
    using T = decltype(x_tag);
    using P = decltype(gamma_tag);
    forward_impl<T, P>(out.data_as<T>(), mean.data_as<compute_t<T>>(), rstd.data_as<compute_t<T>>(),
                       x.data_as<T>(), gamma.data_as<P>(), beta.data_as<P>(), rows, cols, eps);
  });
}

void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma) {
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  if (rows == 0) return;
  visit_float_dtype(x.dtype(), [&](auto x_tag) {
    using T = decltype(x_tag);
    using Acc = compute_t<T>;
    visit_float_dtype(gamma.dtype(), [&](auto gamma_tag) {
      using P = decltype(gamma_tag);
      backward_rows<T, P>(grad_x.data_as<T>(), grad_out.data_as<T>(), x.data_as<T>(), mean.data_as<Acc>(),
                          rstd.data_as<Acc>(), gamma.data_as<P>(), rows, cols);
    });
    backward_params<T>(grad_gamma.data_as<Acc>(), grad_beta.data_as<Acc>(), grad_out.data_as<T>(),
                       x.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(), rows, cols);
  });
}

}  // namespace gc::kernels::cpu
