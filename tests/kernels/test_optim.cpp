// test_optim.cpp: kernels/optim.h (AdamW) against a hand-written f64 reference of
// the update, for one and several steps, in f32 and f64, from zero and from
// non-zero moments; decoupled weight decay (a zero-gradient step shrinks p by
// lr * wd * p and leaves the moments alone); meta runs; bad operands.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/optim.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::test;

namespace {

struct AdamState {
  std::vector<double> param, m, v;
};

// The AdamW step written out in f64, element by element.
void reference_adamw_step(AdamState& s, const std::vector<double>& grad, const kernels::AdamWSettings& settings,
                          int64_t step, double grad_scale) {
  const double bias1 = 1.0 - std::pow(settings.beta1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(settings.beta2, static_cast<double>(step));
  for (size_t i = 0; i < s.param.size(); ++i) {
    const double g = grad[i] * grad_scale;
    s.m[i] = settings.beta1 * s.m[i] + (1.0 - settings.beta1) * g;
    s.v[i] = settings.beta2 * s.v[i] + (1.0 - settings.beta2) * g * g;
    const double m_hat = s.m[i] / bias1;
    const double v_hat = s.v[i] / bias2;
    s.param[i] -= settings.lr * (m_hat / (std::sqrt(v_hat) + settings.eps) + settings.weight_decay * s.param[i]);
  }
}

kernels::AdamWSettings test_settings() {
  kernels::AdamWSettings settings;
  settings.lr = 1e-2;
  settings.weight_decay = 0.1;
  return settings;
}

struct OptimCase {
  DType dtype;
  Shape shape;
};

std::vector<OptimCase> optim_cases() {
  std::vector<OptimCase> cases;
  for (DType dtype : {DType::f32, DType::f64})
    for (Shape shape : {Shape{1}, Shape{31}, Shape{33}, Shape{65}, Shape{1000, 7}}) cases.push_back({dtype, shape});
  return cases;
}

// Readable parameters in failure messages.
void PrintTo(const OptimCase& c, std::ostream* os) { *os << dtype_name(c.dtype) << shape_string(c.shape); }

std::string case_name(const ::testing::TestParamInfo<OptimCase>& info) {
  std::string name = dtype_name(info.param.dtype);
  for (size_t i = 0; i < info.param.shape.size(); ++i)
    name += (i == 0 ? "_" : "x") + std::to_string(info.param.shape[i]);
  return name;
}

class AdamWTest : public ::testing::TestWithParam<OptimCase> {
 protected:
  DType dtype() const { return GetParam().dtype; }
  const Shape& shape() const { return GetParam().shape; }

  // Runs `steps` steps from (m0, v0) with fresh random gradients each step, on
  // the kernel and on the reference, and compares param, m and v.
  void run_and_compare(int64_t first_step, int64_t steps, bool zero_moments, double grad_scale) {
    Tensor param = random_tensor(shape(), dtype(), 1);
    Tensor m = zero_moments ? Tensor::zeros(shape(), dtype()) : random_tensor(shape(), dtype(), 2, 0.1);
    Tensor v = zero_moments ? Tensor::zeros(shape(), dtype()) : random_tensor(shape(), dtype(), 3, 0.01);
    if (!zero_moments) {  // v is a running mean of squares: non-negative
      std::vector<double> squares = v.to_doubles();
      for (double& e : squares) e = std::fabs(e);
      v = Tensor::from_doubles(squares, shape(), dtype());
    }
    AdamState ref{param.to_doubles(), m.to_doubles(), v.to_doubles()};
    const kernels::AdamWSettings settings = test_settings();
    for (int64_t step = first_step; step < first_step + steps; ++step) {
      Tensor grad = random_tensor(shape(), dtype(), 100 + static_cast<uint64_t>(step), 3.0);
      kernels::adamw_step(param, grad, m, v, settings, step, grad_scale);
      reference_adamw_step(ref, grad.to_doubles(), settings, step, grad_scale);
    }
    const Tolerance tol = tolerance_for(dtype(), 8.0 * static_cast<double>(steps));
    EXPECT_TRUE(all_close(param.to_doubles(), ref.param, tol, "param"));
    EXPECT_TRUE(all_close(m.to_doubles(), ref.m, tol, "m"));
    EXPECT_TRUE(all_close(v.to_doubles(), ref.v, tol, "v"));
  }
};

TEST_P(AdamWTest, OneStepFromZeroMoments) { run_and_compare(1, 1, true, 1.0); }

TEST_P(AdamWTest, SeveralStepsWithGradScale) { run_and_compare(1, 5, true, 0.5); }

TEST_P(AdamWTest, ResumesFromNonZeroMomentsAtStepSeven) { run_and_compare(7, 3, false, 0.25); }

TEST_P(AdamWTest, ZeroGradientStepOnlyDecaysTheWeight) {
  Tensor param = random_tensor(shape(), dtype(), 4);
  Tensor grad = Tensor::zeros(shape(), dtype());
  Tensor m = Tensor::zeros(shape(), dtype()), v = Tensor::zeros(shape(), dtype());
  const kernels::AdamWSettings settings = test_settings();
  std::vector<double> expected = param.to_doubles();
  for (double& p : expected) p -= settings.lr * settings.weight_decay * p;
  kernels::adamw_step(param, grad, m, v, settings, 1, 1.0);
  EXPECT_TRUE(all_close(param.to_doubles(), expected, tolerance_for(dtype(), 2), "decayed param"));
  EXPECT_EQ(m.to_doubles(), std::vector<double>(static_cast<size_t>(m.numel()), 0.0));
  EXPECT_EQ(v.to_doubles(), std::vector<double>(static_cast<size_t>(v.numel()), 0.0));
}

INSTANTIATE_TEST_SUITE_P(AdamW, AdamWTest, ::testing::ValuesIn(optim_cases()), case_name);

TEST(AdamWDecoupled, WeightDecayNeverEntersTheMoments) {
  const Shape shape = {33, 7};
  Tensor grad = random_tensor(shape, DType::f32, 10);
  Tensor start = random_tensor(shape, DType::f32, 11);
  kernels::AdamWSettings with_decay = test_settings(), without_decay = test_settings();
  without_decay.weight_decay = 0;
  Tensor p1 = start.clone(), m1 = Tensor::zeros(shape, DType::f32), v1 = Tensor::zeros(shape, DType::f32);
  Tensor p0 = start.clone(), m0 = Tensor::zeros(shape, DType::f32), v0 = Tensor::zeros(shape, DType::f32);
  kernels::adamw_step(p1, grad, m1, v1, with_decay, 1, 1.0);
  kernels::adamw_step(p0, grad, m0, v0, without_decay, 1, 1.0);
  EXPECT_EQ(m1.to_doubles(), m0.to_doubles());
  EXPECT_EQ(v1.to_doubles(), v0.to_doubles());
  // The two runs differ by exactly the decay term lr * wd * p (of the old p).
  auto vp1 = p1.to_doubles(), vp0 = p0.to_doubles(), vstart = start.to_doubles();
  std::vector<double> difference(vp1.size()), decay(vp1.size());
  for (size_t i = 0; i < vp1.size(); ++i) {
    difference[i] = vp0[i] - vp1[i];
    decay[i] = with_decay.lr * with_decay.weight_decay * vstart[i];
  }
  // Each p carries one f32 rounding (relative FLT_EPSILON of p, |p| <= 1).
  EXPECT_TRUE(all_close(difference, decay, tolerance_for(DType::f32, 4), "p(wd = 0) - p(wd)"));
}

TEST(AdamWMeta, RunsAndAllocatesNothing) {
  Tensor param = Tensor::empty({1000, 7}, DType::f32, Device::meta);
  Tensor grad = Tensor::empty({1000, 7}, DType::f32, Device::meta);
  Tensor m = Tensor::empty({1000, 7}, DType::f32, Device::meta), v = Tensor::empty({1000, 7}, DType::f32, Device::meta);
  auto& allocator = allocator_for(Device::meta);
  const AllocatorStats before = allocator.stats();
  kernels::adamw_step(param, grad, m, v, test_settings(), 1, 1.0);
  const AllocatorStats after = allocator.stats();
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_EQ(after.num_allocs, before.num_allocs);
}

TEST(AdamWValidation, RejectsBadOperandsAndSettings) {
  Tensor param = random_tensor({31}, DType::f32, 20), grad = random_tensor({31}, DType::f32, 21);
  Tensor m = Tensor::zeros({31}, DType::f32), v = Tensor::zeros({31}, DType::f32);
  const kernels::AdamWSettings settings = test_settings();
  const std::vector<double> untouched = param.to_doubles();
  EXPECT_THROW(kernels::adamw_step(param, grad, m, v, settings, 0, 1.0), std::invalid_argument);
  Tensor short_grad = random_tensor({30}, DType::f32, 22);
  EXPECT_THROW(kernels::adamw_step(param, short_grad, m, v, settings, 1, 1.0), std::invalid_argument);
  Tensor bf16_grad = random_tensor({31}, DType::bf16, 23);
  EXPECT_THROW(kernels::adamw_step(param, bf16_grad, m, v, settings, 1, 1.0), std::invalid_argument);
  Tensor bf16_param = random_tensor({31}, DType::bf16, 24);
  EXPECT_THROW(kernels::adamw_step(bf16_param, bf16_grad, m, v, settings, 1, 1.0), std::invalid_argument);
  kernels::AdamWSettings bad = settings;
  bad.beta1 = 1.0;
  EXPECT_THROW(kernels::adamw_step(param, grad, m, v, bad, 1, 1.0), std::invalid_argument);
  bad = settings;
  bad.lr = -1e-3;
  EXPECT_THROW(kernels::adamw_step(param, grad, m, v, bad, 1, 1.0), std::invalid_argument);
  EXPECT_THROW(kernels::adamw_step(param, grad, m, v, settings, 1, std::nan("")), std::invalid_argument);
  EXPECT_EQ(param.to_doubles(), untouched) << "a rejected step changed the parameters";
  try {
    kernels::adamw_step(param, short_grad, m, v, settings, 1, 1.0);
    ADD_FAILURE() << "adamw_step accepted a gradient of another shape";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("adamw_step"), std::string::npos) << message;
    EXPECT_NE(message.find(short_grad.describe()), std::string::npos) << message;
  }
}

}  // namespace
