// kernels/cuda/layernorm.cu: LayerNorm forward and backward on the gpu, the
// formulas of kernels/cpu/layernorm.cpp.
//
// Fusion: the forward is one kernel, one warp per row: the row is read for the
// mean, again (from cache) for the centred variance, and once more to write the
// output and the statistics. grad_x is one kernel, one warp per row, with both
// row sums in one pass. The parameter gradients are a column reduction over all
// rows, the two-pass column sums of column_sums.h (row groups, fixed trees), so
// grad_gamma and grad_beta are bitwise repeatable without atomics; their
// partials live in the caller's scratch (scratch.h).
#include "kernels/cuda/layernorm.h"

#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

template <class T, class P>
__global__ void layernorm_forward_kernel(T* out,              // [R, C]
                                         compute_t<T>* mean,  // [R]
                                         compute_t<T>* rstd,  // [R]
                                         const T* x,          // [R, C]
                                         const P* gamma,      // [C]
                                         const P* beta,       // [C]
                                         int64_t rows, int64_t cols, compute_t<T> eps, compute_t<T> inv_cols) {
  using Acc = compute_t<T>;
  const int lane = lane_id();
  for (int64_t r = global_warp(); r < rows; r += total_warps()) {
    const T* xr = x + r * cols;
    T* outr = out + r * cols;
    Acc sum = 0;
    for (int64_t c = lane; c < cols; c += 32) sum += static_cast<Acc>(load_value(xr[c]));
    const Acc row_mean = warp_sum(sum) * inv_cols;
    // Second pass over the centred values: no cancellation for rows with a large mean.
    Acc squares = 0;
    for (int64_t c = lane; c < cols; c += 32) {
      const Acc d = static_cast<Acc>(load_value(xr[c])) - row_mean;
      squares += d * d;
    }
    const Acc row_var = warp_sum(squares) * inv_cols;
    const Acc row_rstd = Acc(1) / sqrt_compute(row_var + eps);
    for (int64_t c = lane; c < cols; c += 32) {
      const Acc xhat = (static_cast<Acc>(load_value(xr[c])) - row_mean) * row_rstd;
      outr[c] = to_storage<T>(xhat * static_cast<Acc>(load_value(gamma[c])) + static_cast<Acc>(load_value(beta[c])));
    }
    if (lane == 0) {
      mean[r] = row_mean;
      rstd[r] = row_rstd;
    }
  }
}

// grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = grad_out * gamma.
template <class T, class P>
__global__ void layernorm_backward_rows_kernel(T* grad_x,                  // [R, C]
                                               const T* grad_out,          // [R, C]
                                               const T* x,                 // [R, C]
                                               const compute_t<T>* mean,   // [R]
                                               const compute_t<T>* rstd,   // [R]
                                               const P* gamma,             // [C]
                                               int64_t rows, int64_t cols, compute_t<T> inv_cols) {
  using Acc = compute_t<T>;
  const int lane = lane_id();
  for (int64_t r = global_warp(); r < rows; r += total_warps()) {
    const T* xr = x + r * cols;
    const T* dyr = grad_out + r * cols;
    T* dxr = grad_x + r * cols;
    const Acc row_mean = mean[r], row_rstd = rstd[r];
    Acc sum_g = 0, sum_g_xhat = 0;
    for (int64_t c = lane; c < cols; c += 32) {
      const Acc xhat = (static_cast<Acc>(load_value(xr[c])) - row_mean) * row_rstd;
      const Acc g = static_cast<Acc>(load_value(dyr[c])) * static_cast<Acc>(load_value(gamma[c]));
      sum_g += g;
      sum_g_xhat += g * xhat;
    }
    const Acc mean_g = warp_sum(sum_g) * inv_cols;
    const Acc mean_g_xhat = warp_sum(sum_g_xhat) * inv_cols;
    for (int64_t c = lane; c < cols; c += 32) {
      const Acc xhat = (static_cast<Acc>(load_value(xr[c])) - row_mean) * row_rstd;
      const Acc g = static_cast<Acc>(load_value(dyr[c])) * static_cast<Acc>(load_value(gamma[c]));
      dxr[c] = to_storage<T>(row_rstd * (g - mean_g - xhat * mean_g_xhat));
    }
  }
}

// Terms of grad_gamma[c] += sum_r grad_out[r, c] * xhat[r, c] and grad_beta[c] += sum_r grad_out[r, c].
template <class T>
struct ParameterGradientTerms {
  using Acc = compute_t<T>;
  const T* grad_out;   // [R, C]
  const T* x;          // [R, C]
  const Acc* mean;     // [R]
  const Acc* rstd;     // [R]
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, Acc (&terms)[2]) const {
    const int64_t i = r * cols + c;
    const Acc dy = static_cast<Acc>(load_value(grad_out[i]));
    terms[0] = dy * ((static_cast<Acc>(load_value(x[i])) - mean[r]) * rstd[r]);
    terms[1] = dy;
  }
};

template <class Acc>
struct AccumulateParameterGradients {
  Acc* grad_gamma;  // [C]
  Acc* grad_beta;   // [C]
  __device__ void operator()(int64_t c, const Acc (&totals)[2]) const {
    grad_gamma[c] += totals[0];
    grad_beta[c] += totals[1];
  }
};

}  // namespace

void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, double eps) {
  const char* op = "layernorm_forward";
  require_on_cuda(op, {&out, &mean, &rstd, &x, &gamma, &beta});
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  if (rows == 0) return;
  visit_float_dtypes(op, x.dtype(), gamma.dtype(), [&](auto x_tag, auto gamma_tag) {
    using T = decltype(x_tag);
    using P = decltype(gamma_tag);
    using Acc = compute_t<T>;
    layernorm_forward_kernel<T, P><<<row_blocks(rows), kThreadsPerBlock>>>(
        out.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(), x.data_as<T>(), gamma.data_as<P>(),
        beta.data_as<P>(), rows, cols, static_cast<Acc>(eps), Acc(1) / static_cast<Acc>(cols));
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma,
                        const Tensor& scratch) {
  const char* op = "layernorm_backward";
  require_on_cuda(op, {&grad_x, &grad_gamma, &grad_beta, &grad_out, &x, &mean, &rstd, &gamma});
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  if (rows == 0) return;
  require_scratch(op, scratch, layernorm_backward_scratch_bytes(rows, cols));
  visit_float_dtypes(op, x.dtype(), gamma.dtype(), [&](auto x_tag, auto gamma_tag) {
    using T = decltype(x_tag);
    using P = decltype(gamma_tag);
    using Acc = compute_t<T>;
    layernorm_backward_rows_kernel<T, P><<<row_blocks(rows), kThreadsPerBlock>>>(
        grad_x.data_as<T>(), grad_out.data_as<T>(), x.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(),
        gamma.data_as<P>(), rows, cols, Acc(1) / static_cast<Acc>(cols));
  });
  GC_CUDA_CHECK(cudaGetLastError());
  visit_float_dtype(op, x.dtype(), [&](auto x_tag) {
    using T = decltype(x_tag);
    using Acc = compute_t<T>;
    const ParameterGradientTerms<T> terms{grad_out.data_as<T>(), x.data_as<T>(), mean.data_as<Acc>(),
                                          rstd.data_as<Acc>(), cols};
    launch_column_sums<2, Acc>(scratch, rows, cols, terms,
                               AccumulateParameterGradients<Acc>{grad_gamma.data_as<Acc>(), grad_beta.data_as<Acc>()});
  });
}

}  // namespace gc::cuda
