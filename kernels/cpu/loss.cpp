// cpu/loss.cpp: weighted mean squared error, forward and backward.
//
// The forward sums each row's channels (weighted by col_weight) with lane_sum,
// weights the row, and sums rows in the fixed order of cpu/reduce.h, so the loss
// is bitwise the same for any thread count. Arithmetic is f32, f64 when pred is
// f64 (a f64 target is then read through f32 when pred is not f64).
#include "kernels/cpu/loss.h"

#include <type_traits>

#include "kernels/cpu/dtype_dispatch.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/reduce.h"

namespace gc::kernels::cpu {
namespace {

// The operands of a loss kernel in their storage types: P of pred, T of target
// and W of both weights (f32 or f64).
template <class P, class T, class W>
struct LossOperands {
  using Pred = P;
  using Acc = compute_t<P>;  // the arithmetic: f32, f64 when pred is f64
  int64_t rows, cols;
  const P* pred;          // [R, C]
  const T* target;        // [R, C]
  const W* row_weight;    // [R]
  const W* col_weight;    // [C]
};

// Runs visit(LossOperands<P, T, W>) for the storage types of pred, target and
// the weights.
template <class Visit>
void visit_loss_operands(const Tensor& pred, const Tensor& target, const Tensor& row_weight, const Tensor& col_weight,
                         const Visit& visit) {
  auto visit_weights = [&](auto p, auto t, auto w) {
    using P = decltype(p);
    using T = decltype(t);
    using W = decltype(w);
    visit(LossOperands<P, T, W>{pred.size(0), pred.size(1), pred.data_as<P>(), target.data_as<T>(),
                                row_weight.data_as<W>(), col_weight.data_as<W>()});
  };
  visit_float_dtype(pred.dtype(), [&](auto p) {
    visit_float_dtype(target.dtype(), [&](auto t) {
      if (row_weight.dtype() == DType::f64)
        visit_weights(p, t, double{});
      else
        visit_weights(p, t, float{});
    });
  });
}

}  // namespace

void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight) {
  visit_loss_operands(pred, target, row_weight, col_weight, [&](const auto& in) {
    using Acc = typename std::decay_t<decltype(in)>::Acc;
    const int64_t cols = in.cols;
    const Acc total = fixed_order_sum<Acc>(
        in.rows,
        [=](int64_t r) {
          const auto* pred_row = in.pred + r * cols;
          const auto* target_row = in.target + r * cols;
          const auto* cw = in.col_weight;
          const Acc row_sum = lane_sum<Acc>(0, cols, [=](int64_t c) {
            const Acc diff = static_cast<Acc>(to_compute(pred_row[c])) - static_cast<Acc>(to_compute(target_row[c]));
            return static_cast<Acc>(cw[c]) * diff * diff;
          });
          return static_cast<Acc>(in.row_weight[r]) * row_sum;
        },
        in.rows * cols >= kParallelMinElements);
    loss.data_as<Acc>()[0] = total / static_cast<Acc>(in.rows);
  });
}

void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight) {
  visit_loss_operands(pred, target, row_weight, col_weight, [&](const auto& in) {
    using P = typename std::decay_t<decltype(in)>::Pred;
    using Acc = typename std::decay_t<decltype(in)>::Acc;
    const int64_t rows = in.rows, cols = in.cols;
    P* grad = grad_pred.data_as<P>();  // [R, C]
    const Acc scale = static_cast<Acc>(grad_loss * 2.0 / static_cast<double>(rows));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r) {
      const Acc row_scale = scale * static_cast<Acc>(in.row_weight[r]);
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t i = r * cols + c;
        const Acc diff = static_cast<Acc>(to_compute(in.pred[i])) - static_cast<Acc>(to_compute(in.target[i]));
        grad[i] = to_storage<P>(row_scale * static_cast<Acc>(in.col_weight[c]) * diff);
      }
    }
  });
}

}  // namespace gc::kernels::cpu
