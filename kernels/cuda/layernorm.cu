// kernels/cuda/layernorm.cu: LayerNorm forward and backward on the gpu, the
// formulas of kernels/cpu/layernorm.cpp.
//
// Fusion: the forward is one kernel, one warp per row: the row is read for the
// mean, again (from cache) for the centred variance, and once more to write the
// output and the statistics; a row of at most kLayerNormFusedColumns columns is
// read once into registers (all its loads in flight together) and used thrice.
// The backward reads x and grad_out once: grad_x
// needs two row sums per row, grad_gamma and grad_beta a column reduction over
// all rows, which follows the cpu's order so that both are bitwise the cpu's:
// blocks of kLayerNormRowBlock (256) rows, one partial per block and column,
// folded in block order (scratch.h; the partials live in the caller's scratch).
// For rows of at most kLayerNormFusedColumns (512) columns one kernel does both:
// one thread block per row block walks its rows in order, a tile of rows (one
// per warp) at a time: each warp writes its row's grad_x and leaves the row's
// terms in shared memory, from which each thread adds them, in row order, into
// its columns' partials (registers); a small kernel folds the partials.
// Wider rows run a grad_x kernel (one warp per row), then the partials kernel,
// which reads x and grad_out again, and the same fold. The rows of the fused
// kernels move as 16-byte packs when they are whole packs (lane_columns.h).
// layernorm_backward_bias also sums grad_x's columns (the gradient of the bias of
// the product that made x): the fused kernel adds the grad_x rows it has just
// stored as a third partial in the same order, so no later pass reads grad_x for
// it; wider rows run sum_rows afterwards.
#include "kernels/cuda/layernorm.h"

#include "kernels/cuda/common.h"
#include "kernels/cuda/lane_columns.h"
#include "kernels/cuda/reduce.h"
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

// A row of at most kLayerNormFusedColumns columns, held in registers: lane l
// holds kRowSlots columns, in packs of 16 bytes (lane_columns.h: columns
// 8l .. 8l + 7 and 256 + 8l .. 256 + 8l + 7 of a bf16 row), all loaded at once,
// so a row costs one trip to memory instead of one per 32 columns. kPacked (the
// rows whole packs, the tensors 16-byte aligned) moves them as 16-byte loads and
// stores, else one element at a time: the same slots, so the same sums and bits.
constexpr int kRowSlots = static_cast<int>(kLayerNormFusedColumns / 32);
template <class T>
using RowColumns = LaneColumns<T, kRowSlots>;

// layernorm_forward_kernel for rows of at most kLayerNormFusedColumns columns,
// from registers: lane l adds its slots in order, then warp_sum (a different
// order of the row sums from the wider rows' kernel, which no row takes both).
template <bool kPacked, class T, class P>
__global__ void layernorm_forward_short_kernel(T* out, compute_t<T>* mean, compute_t<T>* rstd, const T* x,
                                               const P* gamma, const P* beta, int64_t rows, int64_t cols,
                                               compute_t<T> eps, compute_t<T> inv_cols) {
  using Acc = compute_t<T>;
  using Columns = RowColumns<T>;
  const int lane = lane_id();
  for (int64_t r = global_warp(); r < rows; r += total_warps()) {
    Acc v[kRowSlots];
    Columns::template load<kPacked>(v, x + r * cols, cols, 0, lane);
    Acc sum = 0;
#pragma unroll
    for (int j = 0; j < kRowSlots; ++j)
      if (Columns::column(0, lane, j) < cols) sum += v[j];
    const Acc row_mean = warp_sum(sum) * inv_cols;
    Acc squares = 0;
#pragma unroll
    for (int j = 0; j < kRowSlots; ++j) {
      if (Columns::column(0, lane, j) < cols) {
        const Acc d = v[j] - row_mean;
        squares += d * d;
      }
    }
    const Acc row_var = warp_sum(squares) * inv_cols;
    const Acc row_rstd = Acc(1) / sqrt_compute(row_var + eps);
    T y[kRowSlots]{};
#pragma unroll
    for (int j = 0; j < kRowSlots; ++j) {
      const int64_t c = Columns::column(0, lane, j);
      if (c < cols) {
        const Acc xhat = (v[j] - row_mean) * row_rstd;
        y[j] = to_storage<T>(xhat * static_cast<Acc>(load_value(gamma[c])) + static_cast<Acc>(load_value(beta[c])));
      }
    }
    Columns::template store<kPacked>(out + r * cols, y, cols, 0, lane);
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

// grad_gamma[c] += sum_r grad_out[r, c] * xhat[r, c], grad_beta[c] += sum_r grad_out[r, c]
// in the cpu's order (kernels/cpu/layernorm.cpp, backward_params), bitwise: the
// rows are cut into blocks of kLayerNormRowBlock; each block's partial of a
// column starts from 0 and takes its rows in order (the gamma term as one fused
// multiply-add, fma(dy, xhat, partial), as the cpu spells it); the partials are
// folded into a total from 0 in block order, and the total is added once. The
// partials live in partials [2, row_block_count, C] (Acc); the fold runs in
// layernorm_param_totals_kernel. Rows of at most kLayerNormFusedColumns columns:
// a thread block per row block (layernorm_backward_fused_kernel, below). Wider
// rows: one warp per row block and chunk of kLayerNormFusedColumns columns, lane l
// keeping the partials of columns l, l + 32, ... of the chunk in registers
// (kColumnsPerLane of each sum).
constexpr int kColumnsPerLane = static_cast<int>(kLayerNormFusedColumns / 32);
static_assert(kLayerNormFusedColumns % 32 == 0, "a lane keeps whole runs of 32 columns");

__device__ __forceinline__ int64_t param_partial_index(int sum, int64_t block, int64_t c, int64_t cols,
                                                       int64_t row_block_count) {
  return (static_cast<int64_t>(sum) * row_block_count + block) * cols + c;
}

// Adds row r's terms for the columns first + lane + 32 j of [first, end) to the
// lane's partials.
template <class T, class Acc>
__device__ __forceinline__ void add_param_terms(Acc (&gamma_partial)[kColumnsPerLane],
                                                Acc (&beta_partial)[kColumnsPerLane], const T* xr, const T* dyr,
                                                Acc row_mean, Acc row_rstd, int64_t first, int64_t end, int lane) {
#pragma unroll
  for (int j = 0; j < kColumnsPerLane; ++j) {
    const int64_t c = first + lane + 32 * j;
    if (c < end) {
      const Acc dy = static_cast<Acc>(load_value(dyr[c]));
      const Acc xhat = (static_cast<Acc>(load_value(xr[c])) - row_mean) * row_rstd;
      gamma_partial[j] = fma_compute(dy, xhat, gamma_partial[j]);
      beta_partial[j] += dy;
    }
  }
}

template <class Acc>
__device__ __forceinline__ void store_param_partials(Acc* partials, const Acc (&gamma_partial)[kColumnsPerLane],
                                                     const Acc (&beta_partial)[kColumnsPerLane], int64_t block,
                                                     int64_t row_block_count, int64_t first, int64_t end, int64_t cols,
                                                     int lane) {
#pragma unroll
  for (int j = 0; j < kColumnsPerLane; ++j) {
    const int64_t c = first + lane + 32 * j;
    if (c < end) {
      partials[param_partial_index(0, block, c, cols, row_block_count)] = gamma_partial[j];
      partials[param_partial_index(1, block, c, cols, row_block_count)] = beta_partial[j];
    }
  }
}

// Rows of at most kLayerNormFusedColumns columns: one block per row block (a
// grid-stride loop over row blocks), so a million rows give ~4,000 blocks and a
// few thousand rows still fill the GPU. The block walks its row block
// kTileRows rows at a time: warp w takes row tile + w, reads it into registers
// at its lanes' slots (RowColumns, as the forward) and writes its grad_x from
// the same expressions as layernorm_backward_rows_kernel (its row sums in the
// slots' order), leaving the row's dy and xhat in shared memory; then thread t
// adds the tile's rows, in order, into the partials of columns t, t +
// kThreadsPerBlock (registers). So each column's partial takes the block's
// rows in order, as the cpu's does, and x and grad_out are read once.
// Rows a tile holds: one per warp (f64 sums: half the warps, within 48 KB of shared memory).
template <class Acc>
constexpr int kTileRows = sizeof(Acc) > 4 ? kWarpsPerBlock / 2 : kWarpsPerBlock;
constexpr int kColumnsPerThread = static_cast<int>(kLayerNormFusedColumns / kThreadsPerBlock);
static_assert(kLayerNormFusedColumns % kThreadsPerBlock == 0, "a thread keeps whole columns");
// A tile row's column c sits at c + c / 32 in shared memory: a lane writes whole
// packs (8 consecutive columns of a bf16 row), and the skipped word every 32
// columns spreads one store instruction's 32 lanes over 32 banks; the threads
// that read a column each still read consecutive words.
constexpr int64_t kTileStride = kLayerNormFusedColumns + kLayerNormFusedColumns / 32;
__device__ __forceinline__ int64_t tile_slot(int64_t c) { return c + c / 32; }

template <bool kPacked, bool kBias, class T, class P>
__global__ void __launch_bounds__(kThreadsPerBlock)
    layernorm_backward_fused_kernel(T* grad_x,                  // [R, C]
                                    compute_t<T>* partials,     // [kBias ? 3 : 2, row_block_count, C]
                                    const T* grad_out,          // [R, C]
                                    const T* x,                 // [R, C]
                                    const compute_t<T>* mean,   // [R]
                                    const compute_t<T>* rstd,   // [R]
                                    const P* gamma,             // [C]
                                    int64_t rows, int64_t row_block_count, int64_t cols,
                                    compute_t<T> inv_cols) {
  using Acc = compute_t<T>;
  using Columns = RowColumns<T>;
  constexpr int tile_size = kTileRows<Acc>;
  __shared__ Acc tile_dy[tile_size][kTileStride];
  __shared__ Acc tile_xhat[tile_size][kTileStride];
  const int lane = lane_id(), warp = static_cast<int>(threadIdx.x) / 32;
  // Every thread of a block runs the same row blocks and tiles, so the barriers are uniform.
  for (int64_t block = blockIdx.x; block < row_block_count; block += gridDim.x) {
    const int64_t begin = block * kLayerNormRowBlock, end = min(rows, begin + kLayerNormRowBlock);
    Acc gamma_partial[kColumnsPerThread], beta_partial[kColumnsPerThread], bias_partial[kColumnsPerThread];
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) gamma_partial[j] = beta_partial[j] = bias_partial[j] = 0;
    for (int64_t tile = begin; tile < end; tile += tile_size) {
      const int64_t r = tile + warp;
      if (warp < tile_size && r < end) {
        // The row in registers (one trip to memory), then the sums and grad_x.
        Acc xv[kRowSlots], dyv[kRowSlots];
        Columns::template load<kPacked>(xv, x + r * cols, cols, 0, lane);
        Columns::template load<kPacked>(dyv, grad_out + r * cols, cols, 0, lane);
        const Acc row_mean = mean[r], row_rstd = rstd[r];
        Acc sum_g = 0, sum_g_xhat = 0;
#pragma unroll
        for (int j = 0; j < kRowSlots; ++j) {
          const int64_t c = Columns::column(0, lane, j);
          if (c < cols) {
            const Acc xhat = (xv[j] - row_mean) * row_rstd;
            const Acc g = dyv[j] * static_cast<Acc>(load_value(gamma[c]));
            sum_g += g;
            sum_g_xhat += g * xhat;
          }
        }
        const Acc mean_g = warp_sum(sum_g) * inv_cols;
        const Acc mean_g_xhat = warp_sum(sum_g_xhat) * inv_cols;
        T dx[kRowSlots]{};
#pragma unroll
        for (int j = 0; j < kRowSlots; ++j) {
          const int64_t c = Columns::column(0, lane, j);
          if (c < cols) {
            const Acc xhat = (xv[j] - row_mean) * row_rstd;
            const Acc dy = dyv[j];
            const Acc g = dy * static_cast<Acc>(load_value(gamma[c]));
            dx[j] = to_storage<T>(row_rstd * (g - mean_g - xhat * mean_g_xhat));
            tile_dy[warp][tile_slot(c)] = dy;
            tile_xhat[warp][tile_slot(c)] = xhat;
          }
        }
        Columns::template store<kPacked>(grad_x + r * cols, dx, cols, 0, lane);
      }
      __syncthreads();
      const int tile_rows = static_cast<int>(min(static_cast<int64_t>(tile_size), end - tile));
#pragma unroll
      for (int j = 0; j < kColumnsPerThread; ++j) {
        const int64_t c = threadIdx.x + static_cast<int64_t>(kThreadsPerBlock) * j;
        if (c < cols) {
          for (int i = 0; i < tile_rows; ++i) {
            const Acc dy = tile_dy[i][tile_slot(c)];
            gamma_partial[j] = fma_compute(dy, tile_xhat[i][tile_slot(c)], gamma_partial[j]);
            beta_partial[j] += dy;
            // The bias gradient sums the grad_x this block just stored (visible after
            // the barrier; a tile of rows, read back from the cache), as sum_rows would load it.
            if constexpr (kBias) bias_partial[j] += static_cast<Acc>(load_value(grad_x[(tile + i) * cols + c]));
          }
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(kThreadsPerBlock) * j;
      if (c < cols) {
        partials[param_partial_index(0, block, c, cols, row_block_count)] = gamma_partial[j];
        partials[param_partial_index(1, block, c, cols, row_block_count)] = beta_partial[j];
        if constexpr (kBias) partials[param_partial_index(2, block, c, cols, row_block_count)] = bias_partial[j];
      }
    }
  }
}

// Wider rows (after layernorm_backward_rows_kernel): the same partials, one warp
// per (row block, chunk of kLayerNormFusedColumns columns), which reads grad_out,
// x and the statistics again.
template <class T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    layernorm_param_partials_kernel(compute_t<T>* partials,     // [2, row_block_count, C]
                                    const T* grad_out,          // [R, C]
                                    const T* x,                 // [R, C]
                                    const compute_t<T>* mean,   // [R]
                                    const compute_t<T>* rstd,   // [R]
                                    int64_t rows, int64_t row_block_count, int64_t cols) {
  using Acc = compute_t<T>;
  const int lane = lane_id();
  const int64_t chunks = (cols + kLayerNormFusedColumns - 1) / kLayerNormFusedColumns;
  for (int64_t item = global_warp(); item < row_block_count * chunks; item += total_warps()) {
    const int64_t block = item / chunks, first = (item % chunks) * kLayerNormFusedColumns;
    const int64_t last = min(cols, first + kLayerNormFusedColumns);
    const int64_t begin = block * kLayerNormRowBlock, end = min(rows, begin + kLayerNormRowBlock);
    Acc gamma_partial[kColumnsPerLane], beta_partial[kColumnsPerLane];
#pragma unroll
    for (int j = 0; j < kColumnsPerLane; ++j) gamma_partial[j] = beta_partial[j] = 0;
    for (int64_t r = begin; r < end; ++r)
      add_param_terms(gamma_partial, beta_partial, x + r * cols, grad_out + r * cols, mean[r], rstd[r], first, last,
                      lane);
    store_param_partials(partials, gamma_partial, beta_partial, block, row_block_count, first, last, cols, lane);
  }
}

// The fold: thread item (sum, column) adds the column's block partials from 0 in
// block order, then adds the total once into grad_gamma or grad_beta (which
// accumulate), as the cpu does. The order is a chain of row_block_count additions per
// column, so the loads run ahead in batches of kTotalsBatch (independent of the
// additions) and the blocks are small (kTotalsThreads), spreading 2 C columns
// over as many multiprocessors as there are.
constexpr int kTotalsThreads = 32;
constexpr int kTotalsBatch = 16;

template <class Acc>
__global__ void layernorm_param_totals_kernel(Acc* grad_gamma,        // [C]
                                              Acc* grad_beta,         // [C]
                                              Acc* grad_bias,         // [C], or null: two sums
                                              const Acc* partials,    // [2 or 3, row_block_count, C]
                                              int64_t row_block_count, int64_t cols) {
  const int sums = grad_bias ? 3 : 2;
  for (int64_t item = global_thread(); item < sums * cols; item += total_threads()) {
    const int sum = static_cast<int>(item / cols);
    const int64_t c = item % cols;
    const Acc* column = partials + param_partial_index(sum, 0, c, cols, row_block_count);
    Acc total = 0;
    int64_t block = 0;
    for (; block + kTotalsBatch <= row_block_count; block += kTotalsBatch) {
      Acc batch[kTotalsBatch];
#pragma unroll
      for (int k = 0; k < kTotalsBatch; ++k) batch[k] = column[(block + k) * cols];
#pragma unroll
      for (int k = 0; k < kTotalsBatch; ++k) total += batch[k];
    }
    for (; block < row_block_count; ++block) total += column[block * cols];
    Acc* grad = sum == 0 ? grad_gamma : sum == 1 ? grad_beta : grad_bias;
    grad[c] += total;
  }
}

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
    if (cols <= kLayerNormFusedColumns && row_packs_fit<T>(cols, {out.data(), x.data()}))
      layernorm_forward_short_kernel<true, T, P><<<row_blocks(rows), kThreadsPerBlock>>>(
          out.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(), x.data_as<T>(), gamma.data_as<P>(),
          beta.data_as<P>(), rows, cols, static_cast<Acc>(eps), Acc(1) / static_cast<Acc>(cols));
    else if (cols <= kLayerNormFusedColumns)
      layernorm_forward_short_kernel<false, T, P><<<row_blocks(rows), kThreadsPerBlock>>>(
          out.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(), x.data_as<T>(), gamma.data_as<P>(),
          beta.data_as<P>(), rows, cols, static_cast<Acc>(eps), Acc(1) / static_cast<Acc>(cols));
    else
      layernorm_forward_kernel<T, P><<<row_blocks(rows), kThreadsPerBlock>>>(
          out.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(), x.data_as<T>(), gamma.data_as<P>(),
          beta.data_as<P>(), rows, cols, static_cast<Acc>(eps), Acc(1) / static_cast<Acc>(cols));
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

namespace {

// grad_bias null: the plain backward; else also grad_bias += grad_x's column sums.
void layernorm_backward_impl(const char* op, Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, Tensor* grad_bias,
                             const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, const Tensor& scratch) {
  require_on_cuda(op, {&grad_x, &grad_gamma, &grad_beta, &grad_out, &x, &mean, &rstd, &gamma});
  if (grad_bias) require_on_cuda(op, {grad_bias});
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  if (rows == 0) return;
  require_scratch(op, scratch, layernorm_backward_scratch_bytes(rows, cols, x.dtype(), grad_bias != nullptr));
  const int64_t row_block_count = layernorm_row_blocks(rows);
  const bool fused = cols <= kLayerNormFusedColumns;
  visit_float_dtypes(op, x.dtype(), gamma.dtype(), [&](auto x_tag, auto gamma_tag) {
    using T = decltype(x_tag);
    using P = decltype(gamma_tag);
    using Acc = compute_t<T>;
    Acc* partials = static_cast<Acc*>(scratch.data());  // [2 or 3, row_block_count, cols]
    const Acc inv_cols = Acc(1) / static_cast<Acc>(cols);
    if (fused) {
      // One block per row block writes grad_x and the block partials.
      const bool packed = row_packs_fit<T>(cols, {grad_x.data(), grad_out.data(), x.data()});
      const unsigned grid = blocks_for(row_block_count, 1);
      T* gx = grad_x.data_as<T>();
      const T* dy = grad_out.data_as<T>();
      const T* xs = x.data_as<T>();
      const Acc* mu = mean.data_as<Acc>();
      const Acc* rs = rstd.data_as<Acc>();
      const P* g = gamma.data_as<P>();
      if (packed && grad_bias)
        layernorm_backward_fused_kernel<true, true, T, P><<<grid, kThreadsPerBlock>>>(
            gx, partials, dy, xs, mu, rs, g, rows, row_block_count, cols, inv_cols);
      else if (packed)
        layernorm_backward_fused_kernel<true, false, T, P><<<grid, kThreadsPerBlock>>>(
            gx, partials, dy, xs, mu, rs, g, rows, row_block_count, cols, inv_cols);
      else if (grad_bias)
        layernorm_backward_fused_kernel<false, true, T, P><<<grid, kThreadsPerBlock>>>(
            gx, partials, dy, xs, mu, rs, g, rows, row_block_count, cols, inv_cols);
      else
        layernorm_backward_fused_kernel<false, false, T, P><<<grid, kThreadsPerBlock>>>(
            gx, partials, dy, xs, mu, rs, g, rows, row_block_count, cols, inv_cols);
      GC_CUDA_CHECK(cudaGetLastError());
    } else {
      layernorm_backward_rows_kernel<T, P><<<row_blocks(rows), kThreadsPerBlock>>>(
          grad_x.data_as<T>(), grad_out.data_as<T>(), x.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(),
          gamma.data_as<P>(), rows, cols, inv_cols);
      GC_CUDA_CHECK(cudaGetLastError());
      const int64_t chunks = (cols + kLayerNormFusedColumns - 1) / kLayerNormFusedColumns;
      layernorm_param_partials_kernel<T><<<row_blocks(row_block_count * chunks), kThreadsPerBlock>>>(
          partials, grad_out.data_as<T>(), x.data_as<T>(), mean.data_as<Acc>(), rstd.data_as<Acc>(), rows,
          row_block_count, cols);
      GC_CUDA_CHECK(cudaGetLastError());
    }
    Acc* bias_total = fused && grad_bias ? grad_bias->data_as<Acc>() : nullptr;
    const int sums = bias_total ? 3 : 2;
    layernorm_param_totals_kernel<Acc><<<blocks_for(sums * cols, kTotalsThreads), kTotalsThreads>>>(
        grad_gamma.data_as<Acc>(), grad_beta.data_as<Acc>(), bias_total, partials, row_block_count, cols);
    GC_CUDA_CHECK(cudaGetLastError());
  });
  // Wider rows: the bias gradient by sum_rows, its partials in the same scratch
  // (one stream: the fold above has read the parameter partials by then).
  if (grad_bias && !fused) sum_rows(*grad_bias, grad_x.reshape({rows, cols}), true, scratch);
}

}  // namespace

void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma,
                        const Tensor& scratch) {
  layernorm_backward_impl("layernorm_backward", grad_x, grad_gamma, grad_beta, nullptr, grad_out, x, mean, rstd, gamma,
                          scratch);
}

void layernorm_backward_bias(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, const Tensor& scratch) {
  layernorm_backward_impl("layernorm_backward_bias", grad_x, grad_gamma, grad_beta, &grad_bias, grad_out, x, mean,
                          rstd, gamma, scratch);
}

}  // namespace gc::cuda
