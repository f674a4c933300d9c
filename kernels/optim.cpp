// optim.cpp: validation and device dispatch of kernels/optim.h.
//
// param, grad, m and v must share one shape, device and dtype (f32, or f64 for
// tests); the settings are checked here so a bad learning rate fails on meta as
// it would on a real run.
#include "kernels/optim.h"

#include <cmath>
#include <string>

#include "kernels/cpu/optim.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/optim.h"
#include "kernels/dispatch.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

constexpr const char* kOp = "adamw_step";

void require_setting(bool ok, const char* what, double value) {
  require(ok, kOp, std::string(what) + ", got " + std::to_string(value));
}

void check_settings(const AdamWSettings& settings, int64_t step, double grad_scale) {
  if (step < 1) fail(kOp, "step is 1-based, got " + std::to_string(step));
  require_setting(settings.lr >= 0 && std::isfinite(settings.lr), "lr must be finite and >= 0", settings.lr);
  require_setting(settings.beta1 >= 0 && settings.beta1 < 1, "beta1 must be in [0, 1)", settings.beta1);
  require_setting(settings.beta2 >= 0 && settings.beta2 < 1, "beta2 must be in [0, 1)", settings.beta2);
  require_setting(settings.eps >= 0 && std::isfinite(settings.eps), "eps must be finite and >= 0", settings.eps);
  require_setting(settings.weight_decay >= 0 && std::isfinite(settings.weight_decay),
                  "weight_decay must be finite and >= 0", settings.weight_decay);
  require_setting(std::isfinite(grad_scale), "grad_scale must be finite", grad_scale);
}

}  // namespace

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWSettings& settings, int64_t step,
                double grad_scale) {
  struct Named {
    const char* name;
    const Tensor& tensor;
  };
  for (const Named& t : {Named{"param", param}, Named{"grad", grad}, Named{"m", m}, Named{"v", v}})
    if (!t.tensor.defined()) fail(kOp, std::string(t.name) + " is undefined");
  if (param.dtype() != DType::f32 && param.dtype() != DType::f64)
    fail(kOp, "param must be f32 (or f64), got " + param.describe());
  for (const Named& t : {Named{"grad", grad}, Named{"m", m}, Named{"v", v}})
    if (t.tensor.dtype() != param.dtype() || t.tensor.shape() != param.shape() || t.tensor.device() != param.device())
      fail(kOp, std::string(t.name) + " " + t.tensor.describe() + " must match param " + param.describe());
  check_settings(settings, step, grad_scale);
  if (param.numel() == 0) return;
  const OpScope scope(OpFamily::optimizer, kOp, param.device(), traffic::adamw_step(param));
  if (runs_on_cuda(param)) GC_CUDA_RUN(kOp, cuda::adamw_step(param, grad, m, v, settings, step, grad_scale));
  else if (runs_on_cpu(param)) cpu::adamw_step(param, grad, m, v, settings, step, grad_scale);
}

}  // namespace gc::kernels
