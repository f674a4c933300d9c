// kernels/cuda/reduce.cu: sums over whole tensors and over rows on the gpu, in
// the fixed orders of reduce_common.h (whole tensors) and below (rows).
//
// sum_rows: one block owns a tile of kColumnTile columns and all rows; its
// kRowLanes row lanes take rows lane, lane + kRowLanes, ... in sequence, and the
// lane totals are combined by a fixed tree. No partial crosses blocks, so there
// are no atomics and no scratch, and the bits depend on (R, C) alone.
#include "kernels/cuda/reduce.h"

#include "kernels/cuda/common.h"
#include "kernels/cuda/reduce_common.h"

namespace gc::cuda {
namespace {

constexpr int kColumnTile = 32;
constexpr int kRowLanes = 32;

template <class T, class Acc>
struct ValueItem {
  const T* x;  // [n]
  __device__ Acc operator()(int64_t i) const { return static_cast<Acc>(load_value(x[i])); }
};

template <class T, class Acc>
struct SquareItem {
  const T* x;  // [n]
  __device__ Acc operator()(int64_t i) const {
    const Acc v = static_cast<Acc>(load_value(x[i]));
    return v * v;
  }
};

template <class T, class Acc>
__global__ void __launch_bounds__(kColumnTile * kRowLanes)
    column_sums_kernel(Acc* out,       // [C]
                       const T* x,     // [R, C]
                       int64_t rows, int64_t cols, bool accumulate) {
  __shared__ Acc lane_totals[kRowLanes][kColumnTile + 1];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnTile + threadIdx.x;
  Acc sum = 0;
  if (c < cols) {
#pragma unroll 4
    for (int64_t r = threadIdx.y; r < rows; r += kRowLanes) sum += static_cast<Acc>(load_value(x[r * cols + c]));
  }
  lane_totals[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kRowLanes / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.y) < stride)
      lane_totals[threadIdx.y][threadIdx.x] += lane_totals[threadIdx.y + stride][threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < cols) out[c] = accumulate ? out[c] + lane_totals[0][threadIdx.x] : lane_totals[0][threadIdx.x];
}

// out [1] = (sum of Item over x) / divisor.
template <template <class, class> class Item>
void launch_whole_sum(const char* op, Tensor& out, const Tensor& x, double divisor) {
  visit_float_dtype(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = compute_t<T>;
    const T* data = x.numel() ? x.data_as<T>() : nullptr;
    launch_fixed_order_sum<Acc>(x.numel(), Item<T, Acc>{data},
                                StoreQuotient<Acc>{out.data_as<Acc>(), static_cast<Acc>(divisor)});
  });
}

}  // namespace

void sum_all(Tensor& out, const Tensor& x) {
  require_on_cuda("sum_all", {&out, &x});
  launch_whole_sum<ValueItem>("sum_all", out, x, 1.0);
}

void mean_all(Tensor& out, const Tensor& x) {
  require_on_cuda("mean_all", {&out, &x});
  launch_whole_sum<ValueItem>("mean_all", out, x, static_cast<double>(x.numel()));
}

void sum_squares(Tensor& out, const Tensor& x) {
  require_on_cuda("sum_squares", {&out, &x});
  launch_whole_sum<SquareItem>("sum_squares", out, x, 1.0);
}

void sum_rows(Tensor& out, const Tensor& x, bool accumulate) {
  require_on_cuda("sum_rows", {&out, &x});
  const int64_t rows = x.size(0), cols = x.size(1);
  if (cols == 0) return;
  visit_float_dtype("sum_rows", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = compute_t<T>;
    const dim3 block(kColumnTile, kRowLanes);
    const unsigned tiles = static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile);
    column_sums_kernel<T, Acc><<<tiles, block>>>(out.data_as<Acc>(), rows ? x.data_as<T>() : nullptr, rows, cols,
                                                 accumulate);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gc::cuda
