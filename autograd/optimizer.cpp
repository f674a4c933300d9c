// optimizer.cpp: AdamW and the global gradient norm.
#include "autograd/optimizer.h"

#include <cmath>
#include <utility>
#include <vector>

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
  MemoryScope category(Category::temporary);
  // Every gradient's sum of squares lands in its slot of one tensor per
  // accumulation dtype, all of a dtype's in one sum_squares_many (a few launches
  // on cuda for all the gradients, not two each), read back once (one host
  // synchronization on cuda, not one per parameter); the total adds them in
  // parameter order, as doubles.
  struct Sums {
    DType dtype;
    Tensor values;
    std::vector<Tensor> grads;  // in slot order
  };
  std::vector<Sums> sums;
  std::vector<std::pair<size_t, int64_t>> slot_of;  // per gradient: (which tensor, slot)
  for (const Var& p : params_) {
    if (!p.grad().defined()) continue;
    const DType d = accumulation_dtype(p.grad().dtype());
    size_t k = 0;
    while (k < sums.size() && sums[k].dtype != d) ++k;
    if (k == sums.size()) sums.push_back({d, Tensor(), {}});
    slot_of.push_back({k, static_cast<int64_t>(sums[k].grads.size())});
    sums[k].grads.push_back(p.grad());
  }
  if (slot_of.empty()) return 0.0;
  for (Sums& s : sums) s.values = Tensor::empty({static_cast<int64_t>(s.grads.size())}, s.dtype, params_[0].device());
  for (Sums& s : sums) kernels::sum_squares_many(s.values, s.grads);
  std::vector<std::vector<double>> read(sums.size());
  for (size_t k = 0; k < sums.size(); ++k) {
    if (sums[k].values.is_meta()) {  // no values; the one read-back a real run makes, in the modelled cost
      const OpScope scope(OpFamily::copy_cast, "item", Device::meta,
                          copy_cost(Device::cpu, Device::meta, static_cast<double>(sums[k].values.nbytes())));
      read[k].assign(sums[k].grads.size(), 0.0);
    } else {
      read[k] = sums[k].values.to_doubles();
    }
  }
  double total = 0;
  for (const auto& [k, slot] : slot_of) total += read[k][static_cast<size_t>(slot)];
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
