// kernels/layernorm.cpp: LayerNorm entry points: validation and device dispatch.
//
// Every check runs on every device, meta included, so a dry run rejects exactly
// what a real run rejects; meta then returns without touching data. The cuda
// backward's column partial sums come from a scratch tensor allocated here, on cuda
// and on meta standing for cuda alike (kernels/cuda/scratch.h), so the dry run
// requests what the real run requests.
#include "kernels/layernorm.h"

#include <cmath>
#include <string>

#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

bool is_float(DType dtype) { return dtype_is_floating(dtype); }

// Checks shared by forward and backward: x [..., C] float with C > 0; gamma [C]
// (and beta [C], same dtype as gamma); mean, rstd [R] in the statistics dtype.
void check_common(const char* op, const Tensor& x, const Tensor& gamma, const Tensor* beta, const Tensor& mean,
                  const Tensor& rstd) {
  require(x.dim() >= 1 && is_float(x.dtype()), op, "x must be a float tensor [R, C]; got " + x.describe());
  const int64_t cols = x.size(-1);
  require(cols > 0, op, "x has an empty last dim: " + x.describe());
  const int64_t rows = x.numel() / cols;
  require(is_float(gamma.dtype()) && gamma.numel() == cols, op,
          "gamma must be a float tensor of " + std::to_string(cols) + " elements; got " + gamma.describe() +
              " for x " + x.describe());
  if (beta)
    require(beta->dtype() == gamma.dtype() && beta->numel() == cols, op,
            "beta must match gamma " + gamma.describe() + "; got " + beta->describe());
  const DType sd = accumulation_dtype(x.dtype());
  for (const Tensor* s : {&mean, &rstd})
    require(s->dtype() == sd && s->numel() == rows, op,
            std::string("mean and rstd must be ") + dtype_name(sd) + " with " + std::to_string(rows) +
                " elements for x " + x.describe() + "; got " + s->describe());
}

void require_like_x(const char* op, const char* name, const Tensor& t, const Tensor& x) {
  require(t.dtype() == x.dtype() && t.shape() == x.shape(), op,
          std::string(name) + " must have x's dtype and shape " + x.describe() + "; got " + t.describe());
}

}  // namespace

void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, double eps) {
  const char* op = "layernorm_forward";
  require_defined(op, {{"out", &out}, {"mean", &mean}, {"rstd", &rstd}, {"x", &x}, {"gamma", &gamma}, {"beta", &beta}});
  check_common(op, x, gamma, &beta, mean, rstd);
  require_like_x(op, "out", out, x);
  require(eps >= 0 && std::isfinite(eps), op, "eps must be finite and >= 0; got " + std::to_string(eps));
  require_same_device(op, x, {&out, &mean, &rstd, &gamma, &beta});
  const OpScope scope(OpFamily::layernorm, op, x.device(), traffic::layernorm_forward(x, gamma));
  if (runs_on_cuda(x)) GC_CUDA_RUN(op, cuda::layernorm_forward(out, mean, rstd, x, gamma, beta, eps));
  else if (runs_on_cpu(x)) cpu::layernorm_forward(out, mean, rstd, x, gamma, beta, eps);
}

namespace {

void layernorm_backward_checked(const char* op, Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta,
                                Tensor* grad_bias, const Tensor& grad_out, const Tensor& x, const Tensor& mean,
                                const Tensor& rstd, const Tensor& gamma) {
  require_defined(op, {{"grad_x", &grad_x}, {"grad_gamma", &grad_gamma}, {"grad_beta", &grad_beta},
                       {"grad_out", &grad_out}, {"x", &x}, {"mean", &mean}, {"rstd", &rstd}, {"gamma", &gamma}});
  if (grad_bias) require_defined(op, {{"grad_bias", grad_bias}});
  check_common(op, x, gamma, nullptr, mean, rstd);
  require_like_x(op, "grad_x", grad_x, x);
  require_like_x(op, "grad_out", grad_out, x);
  const DType sd = accumulation_dtype(x.dtype());
  for (const Tensor* g : {&grad_gamma, &grad_beta})
    require(g->dtype() == sd && g->numel() == gamma.numel(), op,
            std::string("grad_gamma and grad_beta must be ") + dtype_name(sd) + " like gamma " + gamma.describe() +
                "; got " + g->describe());
  if (grad_bias)
    require(grad_bias->dtype() == sd && grad_bias->numel() == gamma.numel(), op,
            std::string("grad_bias must be ") + dtype_name(sd) + " like gamma " + gamma.describe() + "; got " +
                grad_bias->describe());
  require_same_device(op, x, {&grad_x, &grad_gamma, &grad_beta, &grad_out, &mean, &rstd, &gamma});
  if (grad_bias) require_same_device(op, x, {grad_bias});
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const Tensor scratch = cuda::allocate_scratch(
      x.device(), cuda::layernorm_backward_scratch_bytes(rows, cols, x.dtype(), grad_bias != nullptr));
  const OpScope scope(OpFamily::layernorm, op, x.device(), traffic::layernorm_backward(x, gamma, grad_bias != nullptr));
  if (runs_on_cuda(x)) {
    if (grad_bias)
      GC_CUDA_RUN(op, cuda::layernorm_backward_bias(grad_x, grad_gamma, grad_beta, *grad_bias, grad_out, x, mean, rstd,
                                                    gamma, scratch));
    else
      GC_CUDA_RUN(op, cuda::layernorm_backward(grad_x, grad_gamma, grad_beta, grad_out, x, mean, rstd, gamma, scratch));
  } else if (runs_on_cpu(x)) {
    cpu::layernorm_backward(grad_x, grad_gamma, grad_beta, grad_out, x, mean, rstd, gamma);
    if (grad_bias && rows > 0) cpu::sum_rows(*grad_bias, grad_x.reshape({rows, cols}), true);
  }
}

}  // namespace

void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma) {
  layernorm_backward_checked("layernorm_backward", grad_x, grad_gamma, grad_beta, nullptr, grad_out, x, mean, rstd,
                             gamma);
}

void layernorm_backward_bias(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma) {
  layernorm_backward_checked("layernorm_backward_bias", grad_x, grad_gamma, grad_beta, &grad_bias, grad_out, x, mean,
                             rstd, gamma);
}

}  // namespace gc::kernels
