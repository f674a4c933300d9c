// kernels/cuda/loss.cu: weighted mean squared error on the gpu, forward and
// backward, mirroring kernels/cpu/loss.cpp.
//
// The forward sums the R*C weighted squared differences in the fixed order of
// reduce_common.h (bitwise repeatable; the order differs from the cpu's, so the
// two agree to rounding). The backward is element by element, the cpu's formula.
// Arithmetic is f32, f64 when pred is f64.
#include "kernels/cuda/loss.h"

#include "kernels/cuda/common.h"
#include "kernels/cuda/reduce_common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

template <class P, class T, class W>
struct WeightedSquareItem {
  using Acc = compute_t<P>;
  const P* pred;         // [R, C]
  const T* target;       // [R, C]
  const W* row_weight;   // [R]
  const W* col_weight;   // [C]
  int64_t cols;
  __device__ Acc operator()(int64_t i) const {
    const int64_t r = i / cols, c = i - r * cols;
    const Acc diff = static_cast<Acc>(load_value(pred[i])) - static_cast<Acc>(load_value(target[i]));
    return static_cast<Acc>(row_weight[r]) * (static_cast<Acc>(col_weight[c]) * diff * diff);
  }
};

template <class P, class T, class W>
__global__ void weighted_mse_backward_kernel(P* grad_pred,            // [R, C]
                                             const P* pred,           // [R, C]
                                             const T* target,         // [R, C]
                                             const W* row_weight,     // [R]
                                             const W* col_weight,     // [C]
                                             int64_t rows, int64_t cols, compute_t<P> scale) {
  using Acc = compute_t<P>;
  for (int64_t r = global_warp(); r < rows; r += total_warps()) {
    const Acc row_scale = scale * static_cast<Acc>(row_weight[r]);
    for (int64_t c = lane_id(); c < cols; c += 32) {
      const int64_t i = r * cols + c;
      const Acc diff = static_cast<Acc>(load_value(pred[i])) - static_cast<Acc>(load_value(target[i]));
      grad_pred[i] = to_storage<P>(row_scale * static_cast<Acc>(col_weight[c]) * diff);
    }
  }
}

// Runs visit(P{}, T{}, W{}) for pred, target and weight storage types (W f32 or f64).
template <class Visit>
void visit_loss_dtypes(const char* op, const Tensor& pred, const Tensor& target, const Tensor& weight,
                       const Visit& visit) {
  visit_float_dtypes(op, pred.dtype(), target.dtype(), [&](auto p, auto t) {
    if (weight.dtype() == DType::f64)
      visit(p, t, double{});
    else if (weight.dtype() == DType::f32)
      visit(p, t, float{});
    else
      throw std::invalid_argument(std::string(op) + ": weights must be f32 or f64, got " + weight.describe());
  });
}

}  // namespace

void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight, const Tensor& scratch) {
  const char* op = "weighted_mse_forward";
  require_on_cuda(op, {&loss, &pred, &target, &row_weight, &col_weight});
  require_scratch(op, scratch, whole_sum_scratch_bytes());
  visit_loss_dtypes(op, pred, target, row_weight, [&](auto p_tag, auto t_tag, auto w_tag) {
    using P = decltype(p_tag);
    using T = decltype(t_tag);
    using W = decltype(w_tag);
    using Acc = compute_t<P>;
    const int64_t rows = pred.size(0), cols = pred.size(1);
    const bool empty = pred.numel() == 0;
    const WeightedSquareItem<P, T, W> item{empty ? nullptr : pred.data_as<P>(), empty ? nullptr : target.data_as<T>(),
                                           row_weight.data_as<W>(), cols ? col_weight.data_as<W>() : nullptr,
                                           cols};
    launch_fixed_order_sum<Acc>(scratch, pred.numel(), item,
                                StoreQuotient<Acc>{loss.data_as<Acc>(), static_cast<Acc>(rows)});
  });
}

void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight) {
  const char* op = "weighted_mse_backward";
  require_on_cuda(op, {&grad_pred, &pred, &target, &row_weight, &col_weight});
  if (pred.numel() == 0) return;
  visit_loss_dtypes(op, pred, target, row_weight, [&](auto p_tag, auto t_tag, auto w_tag) {
    using P = decltype(p_tag);
    using T = decltype(t_tag);
    using W = decltype(w_tag);
    using Acc = compute_t<P>;
    const int64_t rows = pred.size(0), cols = pred.size(1);
    const Acc scale = static_cast<Acc>(grad_loss * 2.0 / static_cast<double>(rows));
    weighted_mse_backward_kernel<<<row_blocks(rows), kThreadsPerBlock>>>(
        grad_pred.data_as<P>(), pred.data_as<P>(), target.data_as<T>(), row_weight.data_as<W>(),
        col_weight.data_as<W>(), rows, cols, scale);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gc::cuda
