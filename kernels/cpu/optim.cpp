// cpu/optim.cpp: the AdamW update, one pass over the parameters.
//
// Per element, in the storage type (f32 or f64):
//   g = grad_scale * grad;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / bias1 / (sqrt(v / bias2) + eps) + weight_decay * p)
// with bias_k = 1 - beta_k^step. The constants are formed in f64 once; weight
// decay is decoupled (it never enters m or v) and uses p before the update.
#include "kernels/cpu/optim.h"

#include <cmath>

#include "kernels/cpu/parallel.h"

namespace gc::kernels::cpu {
namespace {

template <class T>
void adamw_typed(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWSettings& settings,
                 int64_t step, double grad_scale) {
  T* p = param.data_as<T>();         // [n]
  const T* g = grad.data_as<T>();    // [n]
  T* pm = m.data_as<T>();            // [n]
  T* pv = v.data_as<T>();            // [n]
  const double step_d = static_cast<double>(step);
  const T beta1 = static_cast<T>(settings.beta1);
  const T beta2 = static_cast<T>(settings.beta2);
  const T one_minus_beta1 = static_cast<T>(1.0 - settings.beta1);
  const T one_minus_beta2 = static_cast<T>(1.0 - settings.beta2);
  const T bias1 = static_cast<T>(1.0 - std::pow(settings.beta1, step_d));
  const T bias2 = static_cast<T>(1.0 - std::pow(settings.beta2, step_d));
  const T lr = static_cast<T>(settings.lr);
  const T eps = static_cast<T>(settings.eps);
  const T weight_decay = static_cast<T>(settings.weight_decay);
  const T scale = static_cast<T>(grad_scale);
  const int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = scale * g[i];
    const T mi = beta1 * pm[i] + one_minus_beta1 * gi;
    const T vi = beta2 * pv[i] + one_minus_beta2 * gi * gi;
    pm[i] = mi;
    pv[i] = vi;
    const T m_hat = mi / bias1;
    const T v_hat = vi / bias2;
    p[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + weight_decay * p[i]);
  }
}

}  // namespace

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWSettings& settings,
                int64_t step, double grad_scale) {
  if (param.dtype() == DType::f64)
    adamw_typed<double>(param, grad, m, v, settings, step, grad_scale);
  else
    adamw_typed<float>(param, grad, m, v, settings, step, grad_scale);
}

}  // namespace gc::kernels::cpu
