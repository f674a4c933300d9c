// optimizer.cpp: AdamW and the global gradient norm.
#include "autograd/optimizer.h"

#include <cmath>

#include "autograd/ops.h"
#include "kernels/reduce.h"
#include "runtime/profile.h"

namespace gc {

AdamW::AdamW(std::vector<Var> params, kernels::AdamWSettings settings)
    : params_(std::move(params)), settings_(settings) {
  MemoryScope category(Category::optimizer_state);
  for (const Var& p : params_) {
    const DType d = accumulation_dtype(p.dtype());
    LabelOverride label(p.name() + ".adam");
    m_.push_back(Tensor::zeros(p.shape(), d, p.device()));
    v_.push_back(Tensor::zeros(p.shape(), d, p.device()));
  }
}

double AdamW::grad_norm() const {
  ProfilePhase phase(Phase::optimizer);
  double total = 0;
  MemoryScope category(Category::temporary);
  for (const Var& p : params_) {
    if (!p.grad().defined()) continue;
    Tensor sq = Tensor::empty({1}, accumulation_dtype(p.grad().dtype()), p.device());
    kernels::sum_squares(sq, p.grad());
    total += scalar_value(sq);
  }
  return std::sqrt(total);
}

void AdamW::step(double lr, double grad_scale) {
  ProfilePhase phase(Phase::optimizer);
  ++step_;
  kernels::AdamWSettings s = settings_;
  s.lr = lr;
  for (size_t i = 0; i < params_.size(); ++i) {
    Var& p = params_[i];
    if (!p.grad().defined()) continue;
    kernels::adamw_step(p.mutable_value(), p.grad(), m_[i], v_[i], s, step_, grad_scale);
  }
}

void AdamW::zero_grad() {
  ProfilePhase phase(Phase::optimizer);
  for (Var& p : params_) p.zero_grad();
}

double clip_factor(double grad_norm, double max_norm) {
  if (!(grad_norm > max_norm) || !std::isfinite(grad_norm)) return 1.0;
  return max_norm / grad_norm;
}

}  // namespace gc
