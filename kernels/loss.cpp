// loss.cpp: validation and device dispatch of kernels/loss.h.
//
// pred and target [R, C] (any float dtypes, R > 0); row_weight [R] and
// col_weight [C] both f32 (f64 is accepted too, for f64 gradient checks); loss
// [1] f32, f64 when pred is f64; grad_pred has pred's shape and dtype. The cuda
// forward's partial sums come from a scratch tensor allocated here, on cuda and on
// meta standing for cuda alike (kernels/cuda/scratch.h).
#include "kernels/loss.h"

#include <string>

#include "kernels/cpu/loss.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

void require_float(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) fail(op, std::string(name) + " is undefined");
  if (!dtype_is_floating(t.dtype())) fail(op, std::string(name) + " must be a float tensor, got " + t.describe());
}

void check_loss_inputs(const char* op, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                       const Tensor& col_weight) {
  require_float(op, "pred", pred);
  require_float(op, "target", target);
  require_float(op, "row_weight", row_weight);
  require_float(op, "col_weight", col_weight);
  if (pred.dim() != 2) fail(op, "pred must be 2-D [rows, channels], got " + pred.describe());
  if (pred.size(0) == 0) fail(op, "the mean over zero rows of pred " + pred.describe() + " is undefined");
  if (target.shape() != pred.shape())
    fail(op, "target " + target.describe() + " does not match pred " + pred.describe());
  if (row_weight.dim() != 1 || row_weight.size(0) != pred.size(0))
    fail(op, "row_weight must be [" + std::to_string(pred.size(0)) + "] for pred " + pred.describe() + ", got " +
                 row_weight.describe());
  if (col_weight.dim() != 1 || col_weight.size(0) != pred.size(1))
    fail(op, "col_weight must be [" + std::to_string(pred.size(1)) + "] for pred " + pred.describe() + ", got " +
                 col_weight.describe());
  if (row_weight.dtype() != DType::f32 && row_weight.dtype() != DType::f64)
    fail(op, "row_weight must be f32 (or f64), got " + row_weight.describe());
  if (col_weight.dtype() != row_weight.dtype())
    fail(op, "col_weight " + col_weight.describe() + " and row_weight " + row_weight.describe() +
                 " must have the same dtype");
  for (const Tensor* t : {&target, &row_weight, &col_weight})
    if (t->device() != pred.device())
      fail(op, "pred is " + pred.describe() + " but " + t->describe() + " is on another device");
}

}  // namespace

void weighted_mse_forward(Tensor& loss, const Tensor& pred, const Tensor& target, const Tensor& row_weight,
                          const Tensor& col_weight) {
  const char* op = "weighted_mse_forward";
  check_loss_inputs(op, pred, target, row_weight, col_weight);
  if (!loss.defined()) fail(op, "loss is undefined");
  const DType loss_dtype = accumulation_dtype(pred.dtype());
  if (loss.dtype() != loss_dtype || loss.numel() != 1 || loss.device() != pred.device())
    fail(op, std::string("loss must be ") + dtype_name(loss_dtype) + "[1] on " + device_name(pred.device()) +
                 " for pred " + pred.describe() + ", got " + loss.describe());
  const Tensor scratch = cuda::allocate_scratch(pred.device(), cuda::whole_sum_scratch_bytes());
  const OpScope scope(OpFamily::loss, op, pred.device(), traffic::weighted_mse_forward(pred, target, row_weight));
  if (runs_on_cuda(pred))
    GC_CUDA_RUN(op, cuda::weighted_mse_forward(loss, pred, target, row_weight, col_weight, scratch));
  else if (runs_on_cpu(pred)) cpu::weighted_mse_forward(loss, pred, target, row_weight, col_weight);
}

void weighted_mse_backward(Tensor& grad_pred, double grad_loss, const Tensor& pred, const Tensor& target,
                           const Tensor& row_weight, const Tensor& col_weight) {
  const char* op = "weighted_mse_backward";
  check_loss_inputs(op, pred, target, row_weight, col_weight);
  if (!grad_pred.defined()) fail(op, "grad_pred is undefined");
  if (grad_pred.shape() != pred.shape() || grad_pred.dtype() != pred.dtype() || grad_pred.device() != pred.device())
    fail(op, "grad_pred " + grad_pred.describe() + " must match pred " + pred.describe());
  if (pred.numel() == 0) return;
  const OpScope scope(OpFamily::loss, op, pred.device(), traffic::weighted_mse_backward(pred, target, row_weight));
  if (runs_on_cuda(pred))
    GC_CUDA_RUN(op, cuda::weighted_mse_backward(grad_pred, grad_loss, pred, target, row_weight, col_weight));
  else if (runs_on_cpu(pred))
    cpu::weighted_mse_backward(grad_pred, grad_loss, pred, target, row_weight, col_weight);
}

}  // namespace gc::kernels
