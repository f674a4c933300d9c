// kernels/cuda/layernorm.cu: LayerNorm forward and backward on the gpu, the
// formulas of kernels/cpu/layernorm.cpp.
//
// Fusion: the forward is one kernel, one warp per row: the row is read for the
// mean, again (from cache) for the centred variance, and once more to write the
// output and the statistics. The backward reads x and grad_out once: grad_x
// needs two row sums per row and grad_gamma, grad_beta a column reduction over
// all rows, the two-pass column sums of column_sums.h (row groups, fixed trees,
// bitwise repeatable without atomics; the partials live in the caller's
// scratch, scratch.h). For rows of at most kPassColumns columns (one pass of the
// column sums) the first pass is folded into the grad_x kernel: one block per
// row group, whose warp w walks the rows the column sums' row lane w takes, in
// the same order, writing each row's grad_x and adding its column terms to
// per-column registers; the lane totals then combine by the column sums' own
// tree, so the partials and the totals are bitwise those of the separate pass.
// Wider rows keep the separate kernels: a grad_x kernel with one warp per row,
// then both column-sum passes, which read x and grad_out again.
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

// The backward of rows of at most kPassColumns columns in one kernel: grad_x as
// layernorm_backward_rows_kernel computes it, and pass 1 of the column sums of
// grad_gamma (terms grad_out * xhat) and grad_beta (terms grad_out), in exactly
// column_partials_kernel's order, into partials [2, kRowGroups, cols].
//
// Order: block `group` (blocks loop over the groups when fewer run) owns the
// rows [begin, end) of column_partials_kernel's partition. Its warp w (threadIdx.y)
// is that kernel's row lane w: it takes rows begin + w, begin + w + kRowLanes, ...
// in sequence, and lane l keeps the running sums of columns l, l + 32, ... in
// registers (kFusedColumnsPerLane of each), starting from 0 and adding each row's
// terms as the row lane does. The 32 lane totals of each run of 32 columns then
// combine through shared memory by the same tree (strides 16, 8, ..., 1) and the
// result is stored as a double, as column_partials_kernel stores it. The terms
// are written as in ParameterGradientTerms and grad_x as in
// layernorm_backward_rows_kernel (each product feeds the same sum or difference,
// so where a compiler contracts a * b + c into a fused multiply-add it does so
// alike); a row's grad_x does not depend on which warp computes it.
//
// Parallelism: the order fixes kRowGroups x kRowLanes sequential walks over the
// rows, so the kernel runs kRowGroups blocks of kRowLanes warps: fewer
// multiprocessors than the separate kernels occupy, the price of reading the
// rows once with the same bits.
constexpr int kFusedColumnsPerLane = kPassColumns / 32;
static_assert(kPassColumns % 32 == 0, "a lane keeps whole runs of 32 columns");

template <class T, class P>
__global__ void __launch_bounds__(kColumnTile * kRowLanes)
    layernorm_backward_fused_kernel(T* grad_x,                  // [R, C]
                                    double* partials,           // [2, kRowGroups, C]
                                    const T* grad_out,          // [R, C]
                                    const T* x,                 // [R, C]
                                    const compute_t<T>* mean,   // [R]
                                    const compute_t<T>* rstd,   // [R]
                                    const P* gamma,             // [C]
                                    int64_t rows, int64_t cols, compute_t<T> inv_cols) {
  static_assert(kColumnTile == 32, "a run of columns is one warp's lanes");
  using Acc = compute_t<T>;
  __shared__ Acc lane_totals[2][kRowLanes][kColumnTile + 1];
  const int lane = threadIdx.x, row_lane = threadIdx.y;
  const int64_t rows_per_group = (rows + kRowGroups - 1) / kRowGroups;
  for (int group = blockIdx.x; group < kRowGroups; group += gridDim.x) {
    const int64_t begin = min(rows, group * rows_per_group), end = min(rows, begin + rows_per_group);
    Acc sum_gamma[kFusedColumnsPerLane], sum_beta[kFusedColumnsPerLane];
#pragma unroll
    for (int j = 0; j < kFusedColumnsPerLane; ++j) sum_gamma[j] = sum_beta[j] = 0;
    for (int64_t r = begin + row_lane; r < end; r += kRowLanes) {
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
      // The second loop over the row (from cache) writes grad_x and adds the column terms.
#pragma unroll
      for (int j = 0; j < kFusedColumnsPerLane; ++j) {
        const int64_t c = lane + 32 * j;
        if (c < cols) {
          const Acc dy = static_cast<Acc>(load_value(dyr[c]));
          const Acc xhat = (static_cast<Acc>(load_value(xr[c])) - row_mean) * row_rstd;
          const Acc g = dy * static_cast<Acc>(load_value(gamma[c]));
          dxr[c] = to_storage<T>(row_rstd * (g - mean_g - xhat * mean_g_xhat));
          sum_gamma[j] += dy * xhat;
          sum_beta[j] += dy;
        }
      }
    }
    // Columns 32 j + lane: the row lanes' totals by column_partials_kernel's tree.
#pragma unroll
    for (int j = 0; j < kFusedColumnsPerLane; ++j) {
      if (32 * j >= cols) break;  // the same for the whole block: the barriers stay uniform
      const int64_t c = lane + 32 * j;
      lane_totals[0][row_lane][lane] = sum_gamma[j];
      lane_totals[1][row_lane][lane] = sum_beta[j];
      __syncthreads();
      for (int stride = kRowLanes / 2; stride > 0; stride >>= 1) {
        if (row_lane < stride) {
#pragma unroll
          for (int s = 0; s < 2; ++s) lane_totals[s][row_lane][lane] += lane_totals[s][row_lane + stride][lane];
        }
        __syncthreads();
      }
      if (row_lane == 0 && c < cols) {
#pragma unroll
        for (int s = 0; s < 2; ++s)
          partials[partial_index(s, group, c, cols)] = static_cast<double>(lane_totals[s][0][lane]);
      }
      __syncthreads();  // row lane 0 has read the totals before the next run overwrites them
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
  if (cols <= kPassColumns) {
    // One pass of the column sums: its first kernel is the fused one.
    double* partials = static_cast<double*>(scratch.data());  // [2, kRowGroups, cols]
    visit_float_dtypes(op, x.dtype(), gamma.dtype(), [&](auto x_tag, auto gamma_tag) {
      using T = decltype(x_tag);
      using P = decltype(gamma_tag);
      using Acc = compute_t<T>;
      const dim3 block(kColumnTile, kRowLanes);  // warp w: row lane w
      layernorm_backward_fused_kernel<T, P><<<kRowGroups, block>>>(
          grad_x.data_as<T>(), partials, grad_out.data_as<T>(), x.data_as<T>(), mean.data_as<Acc>(),
          rstd.data_as<Acc>(), gamma.data_as<P>(), rows, cols, Acc(1) / static_cast<Acc>(cols));
      GC_CUDA_CHECK(cudaGetLastError());
      launch_column_totals<2, Acc>(
          partials, cols, 0, cols,
          AccumulateParameterGradients<Acc>{grad_gamma.data_as<Acc>(), grad_beta.data_as<Acc>()});
    });
    return;
  }
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
