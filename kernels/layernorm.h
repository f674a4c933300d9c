// layernorm.h: LayerNorm over the last dim of x [R, C], population variance.
// Statistics in f32 (f64 for f64): mean [R] and rstd = 1/sqrt(var + eps) [R] are
// saved for backward in f32 (f64 for f64 x). gamma, beta [C] any float dtype (the
// same for both). out, grad_out and grad_x have x's dtype and shape; x may have
// more than 2 dims ([..., C]; R is the product of the leading dims).
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, double eps);
// grad_x assigned; grad_gamma and grad_beta accumulated (+=), f32 (f64 for f64).
void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma);
// The same, and grad_bias [C] += grad_x's rows summed (grad_gamma's dtype): the
// gradient of a bias that was added into x, which autograd takes from here where
// kernels::bias_gradient_folds holds. cpu: layernorm_backward then sum_rows
// (bitwise); cuda: rows of up to 512 columns sum the grad_x they write as a third
// parameter partial (the row blocks' order of grad_gamma, not sum_rows'), wider
// rows run sum_rows afterwards.
void layernorm_backward_bias(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma);

}  // namespace gc::kernels
