// optimizer.h: AdamW over a list of parameters, with global gradient-norm
// clipping. Moments are f32 (f64 for f64 parameters), categorized
// `optimizer_state`, allocated when the optimizer is made (so the first step's
// peak already contains them, as every later step's does).
#pragma once

#include <vector>

#include "autograd/tape.h"
#include "kernels/optim.h"

namespace gc {

class AdamW {
 public:
  AdamW(std::vector<Var> params, kernels::AdamWSettings settings);

  // sqrt(sum of squared gradients) over all parameters (0 on meta).
  double grad_norm() const;
  // One update at learning rate lr. Gradients are multiplied by grad_scale
  // (e.g. clip factor / loss scale) before use. Parameters without a gradient
  // are left alone.
  void step(double lr, double grad_scale = 1.0);
  void zero_grad();

  int64_t steps() const { return step_; }
  void set_steps(int64_t steps) { step_ = steps; }
  const std::vector<Var>& params() const { return params_; }
  std::vector<Tensor>& first_moments() { return m_; }
  std::vector<Tensor>& second_moments() { return v_; }
  kernels::AdamWSettings& settings() { return settings_; }

 private:
  std::vector<Var> params_;
  std::vector<Tensor> m_, v_;
  kernels::AdamWSettings settings_;
  int64_t step_ = 0;
};

// The factor that scales the gradients to a global norm of at most max_norm
// (1 when the norm is already below it or not finite-known, e.g. on meta).
double clip_factor(double grad_norm, double max_norm);

}  // namespace gc
