// cpu/optim.h: the cpu body of kernels/optim.h (AdamW). Inputs are validated by
// kernels/optim.cpp: param, grad, m, v share one dtype, f32 or f64, and a shape.
#pragma once

#include "kernels/optim.h"

namespace gc::kernels::cpu {

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWSettings& settings,
                int64_t step, double grad_scale);

}  // namespace gc::kernels::cpu
