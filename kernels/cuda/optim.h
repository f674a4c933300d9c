// kernels/cuda/optim.h: the cuda body of kernels/optim.h (AdamW), called by
// kernels/optim.cpp after validation (plain C++; definition in optim.cu).
#pragma once

#include "kernels/optim.h"

namespace gc::cuda {

// param, grad, m, v [n], one dtype (f32, or f64 for tests); m and v updated in place.
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const kernels::AdamWSettings& settings,
                int64_t step, double grad_scale);

}  // namespace gc::cuda
