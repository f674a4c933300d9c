// kernels/cpu/layernorm.h: the cpu math of LayerNorm (kernels/layernorm.h is the
// public entry; it validates shapes, dtypes and devices before calling these).
//
// Both functions dispatch on the storage dtypes at run time: x, out, grad_out and
// grad_x share one float dtype; gamma and beta share one (possibly different)
// float dtype; mean, rstd, grad_gamma and grad_beta are f32 (f64 when x is f64).
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels::cpu {

// out [R, C], mean [R], rstd [R]; x [R, C]; gamma, beta [C].
void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, double eps);
// grad_x [R, C] (assigned), grad_gamma, grad_beta [C] (+=); grad_out, x [R, C];
// mean, rstd [R]; gamma [C].
void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma);

}  // namespace gc::kernels::cpu
