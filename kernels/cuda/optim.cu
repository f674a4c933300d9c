// kernels/cuda/optim.cu: the AdamW update on the gpu, one pass over the
// parameters, the formula of kernels/cpu/optim.cpp element for element:
//   g = grad_scale * grad;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / bias1 / (sqrt(v / bias2) + eps) + weight_decay * p)
// The constants are formed in f64 on the host, once, and rounded to the storage
// type as the cpu does; weight decay uses p before the update.
#include "kernels/cuda/optim.h"

#include <cmath>

#include "kernels/cuda/common.h"

namespace gc::cuda {
namespace {

template <class T>
struct AdamWConstants {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, bias1, bias2, lr, eps, weight_decay, scale;
};

template <class T>
__global__ void adamw_kernel(T* param, const T* grad, T* m, T* v, int64_t n, AdamWConstants<T> k) {  // all [n]
  for (int64_t i = global_thread(); i < n; i += total_threads()) {
    const T g = k.scale * grad[i];
    const T mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const T vi = k.beta2 * v[i] + k.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const T m_hat = mi / k.bias1;
    const T v_hat = vi / k.bias2;
    const T p = param[i];
    param[i] = p - k.lr * (m_hat / (sqrt_compute(v_hat) + k.eps) + k.weight_decay * p);
  }
}

template <class T>
void launch_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const kernels::AdamWSettings& settings,
                  int64_t step, double grad_scale) {
  const double step_d = static_cast<double>(step);
  AdamWConstants<T> k;
  k.beta1 = static_cast<T>(settings.beta1);
  k.beta2 = static_cast<T>(settings.beta2);
  k.one_minus_beta1 = static_cast<T>(1.0 - settings.beta1);
  k.one_minus_beta2 = static_cast<T>(1.0 - settings.beta2);
  k.bias1 = static_cast<T>(1.0 - std::pow(settings.beta1, step_d));
  k.bias2 = static_cast<T>(1.0 - std::pow(settings.beta2, step_d));
  k.lr = static_cast<T>(settings.lr);
  k.eps = static_cast<T>(settings.eps);
  k.weight_decay = static_cast<T>(settings.weight_decay);
  k.scale = static_cast<T>(grad_scale);
  const int64_t n = param.numel();
  adamw_kernel<T><<<element_blocks(n), kThreadsPerBlock>>>(param.data_as<T>(), grad.data_as<T>(), m.data_as<T>(),
                                                           v.data_as<T>(), n, k);
  GC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const kernels::AdamWSettings& settings,
                int64_t step, double grad_scale) {
  const char* op = "adamw_step";
  require_on_cuda(op, {&param, &grad, &m, &v});
  if (param.numel() == 0) return;
  switch (param.dtype()) {
    case DType::f32: launch_adamw<float>(param, grad, m, v, settings, step, grad_scale); return;
    case DType::f64: launch_adamw<double>(param, grad, m, v, settings, step, grad_scale); return;
    default: throw std::invalid_argument(std::string(op) + ": param must be f32 (or f64), got " + param.describe());
  }
}

}  // namespace gc::cuda
