// optim.h: the AdamW update on f32 (or f64) master weights with f32 moments.
// Decoupled weight decay: p -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * p).
// step is 1-based (bias correction uses beta^step). grad_scale multiplies the
// gradient before use (1/clip factor, 1/loss scale). meta does nothing.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

struct AdamWSettings {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWSettings& settings, int64_t step,
                double grad_scale);

}  // namespace gc::kernels
