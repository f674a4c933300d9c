// kernels/cuda/layernorm.h: the cuda bodies of kernels/layernorm.h, called by
// kernels/layernorm.cpp after validation (plain C++; definitions in layernorm.cu).
// x, out, grad_out, grad_x share one float dtype; gamma and beta share one;
// mean, rstd, grad_gamma, grad_beta are f32 (f64 when x is f64).
#pragma once

#include "runtime/tensor.h"

namespace gc::cuda {

// out [R, C], mean [R], rstd [R]; x [R, C]; gamma, beta [C].
void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, double eps);
// grad_x [R, C] (assigned), grad_gamma, grad_beta [C] (+=); grad_out, x [R, C];
// mean, rstd [R]; gamma [C]. scratch: the row blocks' partial sums of the
// parameter gradients, a cuda tensor of at least
// layernorm_backward_scratch_bytes(R, C, x.dtype()) (kernels/cuda/scratch.h),
// allocated by the caller. grad_gamma and grad_beta are bitwise the cpu's.
void layernorm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_out,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& gamma,
                        const Tensor& scratch);
// The same, and grad_bias [C] (+=, grad_gamma's dtype) the rows of grad_x summed:
// the gradient of a bias that was added into x. Rows of at most
// kLayerNormFusedColumns: the fused kernel sums the grad_x it wrote as a third
// parameter partial (the row blocks' order); wider rows: sum_rows afterwards.
// scratch: layernorm_backward_scratch_bytes(R, C, x.dtype(), true).
void layernorm_backward_bias(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, const Tensor& scratch);

}  // namespace gc::cuda
