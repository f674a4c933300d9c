// cpu/loss.cpp: weighted mean squared error, forward and backward.
//
// The forward sums each row's channels (weighted by col_weight) with lane_sum,
// weights the row, and sums rows in the fixed order of cpu/reduce.h, so the loss
// is bitwise the same for any thread count. Arithmetic is f32, f64 when pred is
// f64 (a f64 target is then read through f32 when pred is not f64).
#include "kernels/cpu/loss.h"

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"

namespace gc::cpu {
namespace {

// Runs visit(P{}, T{}, W{}) for pred, target and weight storage types.
template <class Visit>
void visit_loss_dtypes(const Tensor& pred, const Tensor& target, const Tensor& weight, const Visit& visit) {
  visit_float_dtype(pred.dtype(), [&](auto p) {
    visit_float_dtype(target.dtype(), [&](auto t) {
      if (weight.dtype() == DType::f64)
        visit(p, t, double{});
      else
        visit(p, t, float{});
    });
  });
}

}  // namespace

void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight) {
  visit_loss_dtypes(pred, target, row_weight, [&](auto p_tag, auto t_tag, auto w_tag) {
    using P = decltype(p_tag);
    using T = decltype(t_tag);
    using W = decltype(w_tag);
    using Acc = compute_t<P>;
    const int64_t rows = pred.size(0);
    const int64_t cols = pred.size(1);
    const P* pp = pred.data_as<P>();            // [R, C]
    const T* pt = target.data_as<T>();          // [R, C]
    const W* rw = row_weight.data_as<W>();      // [R]
    const W* cw = col_weight.data_as<W>();      // [C]
    const Acc total = fixed_order_sum<Acc>(
        rows,
        [=](int64_t r) {
          const P* pred_row = pp + r * cols;
          const T* target_row = pt + r * cols;
          const Acc row_sum = lane_sum<Acc>(0, cols, [=](int64_t c) {
            const Acc diff = static_cast<Acc>(to_compute(pred_row[c])) - static_cast<Acc>(to_compute(target_row[c]));
            return static_cast<Acc>(cw[c]) * diff * diff;
          });
          return static_cast<Acc>(rw[r]) * row_sum;
        },
        rows * cols >= kReduceParallelMinElements);
    loss.data_as<Acc>()[0] = total / static_cast<Acc>(rows);
  });
}

void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight) {
  visit_loss_dtypes(pred, target, row_weight, [&](auto p_tag, auto t_tag, auto w_tag) {
    using P = decltype(p_tag);
    using T = decltype(t_tag);
    using W = decltype(w_tag);
    using Acc = compute_t<P>;
    const int64_t rows = pred.size(0);
    const int64_t cols = pred.size(1);
    P* grad = grad_pred.data_as<P>();           // [R, C]
    const P* pp = pred.data_as<P>();            // [R, C]
    const T* pt = target.data_as<T>();          // [R, C]
    const W* rw = row_weight.data_as<W>();      // [R]
    const W* cw = col_weight.data_as<W>();      // [C]
    const Acc scale = static_cast<Acc>(grad_loss * 2.0 / static_cast<double>(rows));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r) {
      const Acc row_scale = scale * static_cast<Acc>(rw[r]);
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t i = r * cols + c;
        const Acc diff = static_cast<Acc>(to_compute(pp[i])) - static_cast<Acc>(to_compute(pt[i]));
        grad[i] = to_storage<P>(row_scale * static_cast<Acc>(cw[c]) * diff);
      }
    }
  });
}

}  // namespace gc::cpu
