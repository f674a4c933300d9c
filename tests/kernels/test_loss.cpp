// test_loss.cpp: kernels/loss.h (weighted MSE) against an f64 reference of the
// formula in every pred dtype at odd shapes; the backward against the formula
// and against central finite differences of the forward in f64; the loss bitwise
// equal for 1, 2 and 3 threads; meta runs; bad operands.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/loss.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::test;

namespace {

// Positive weights with mean 1, as the latitude weights are.
std::vector<double> positive_weights(int64_t n, uint64_t seed) {
  std::vector<double> w = random_values(static_cast<size_t>(n), seed);
  double sum = 0;
  for (double& v : w) sum += (v = 0.25 + std::fabs(v));
  for (double& v : w) v *= static_cast<double>(n) / sum;
  return w;
}

struct Problem {
  Tensor pred, target, row_weight, col_weight;  // [R, C], [R, C], [R], [C]
  int64_t rows() const { return pred.size(0); }
  int64_t cols() const { return pred.size(1); }
};

Problem make_problem(int64_t rows, int64_t cols, DType pred_dtype, DType target_dtype, DType weight_dtype,
                     uint64_t seed) {
  return {random_tensor({rows, cols}, pred_dtype, seed, 2.0), random_tensor({rows, cols}, target_dtype, seed + 1, 2.0),
          Tensor::from_doubles(positive_weights(rows, seed + 2), {rows}, weight_dtype),
          Tensor::from_doubles(positive_weights(cols, seed + 3), {cols}, weight_dtype)};
}

double reference_loss(const Problem& p) {
  auto pred = p.pred.to_doubles(), target = p.target.to_doubles();
  auto rw = p.row_weight.to_doubles(), cw = p.col_weight.to_doubles();
  double sum = 0;
  for (int64_t r = 0; r < p.rows(); ++r)
    for (int64_t c = 0; c < p.cols(); ++c) {
      const size_t i = static_cast<size_t>(r * p.cols() + c);
      const double diff = pred[i] - target[i];
      sum += rw[static_cast<size_t>(r)] * cw[static_cast<size_t>(c)] * diff * diff;
    }
  return sum / static_cast<double>(p.rows());
}

std::vector<double> reference_grad(const Problem& p, double grad_loss) {
  auto pred = p.pred.to_doubles(), target = p.target.to_doubles();
  auto rw = p.row_weight.to_doubles(), cw = p.col_weight.to_doubles();
  std::vector<double> grad(pred.size());
  for (int64_t r = 0; r < p.rows(); ++r)
    for (int64_t c = 0; c < p.cols(); ++c) {
      const size_t i = static_cast<size_t>(r * p.cols() + c);
      grad[i] = grad_loss * 2.0 * rw[static_cast<size_t>(r)] * cw[static_cast<size_t>(c)] * (pred[i] - target[i]) /
                static_cast<double>(p.rows());
    }
  return grad;
}

struct LossCase {
  DType dtype;
  int64_t rows, cols;
};

std::vector<LossCase> loss_cases() {
  std::vector<LossCase> cases;
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {31, 33}, {33, 31}, {65, 7}, {1000, 7}})
      cases.push_back({dtype, rows, cols});
  return cases;
}

// Readable parameters in failure messages.
void PrintTo(const LossCase& c, std::ostream* os) {
  *os << dtype_name(c.dtype) << "[" << c.rows << ", " << c.cols << "]";
}

std::string case_name(const ::testing::TestParamInfo<LossCase>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_" + std::to_string(info.param.rows) + "x" +
         std::to_string(info.param.cols);
}

class LossTest : public ::testing::TestWithParam<LossCase> {};

TEST_P(LossTest, ForwardMatchesReference) {
  const LossCase& c = GetParam();
  Problem p = make_problem(c.rows, c.cols, c.dtype, c.dtype, DType::f32, 1);
  const DType loss_dtype = accumulation_dtype(c.dtype);
  Tensor loss = Tensor::empty({1}, loss_dtype);
  kernels::weighted_mse_forward(loss, p.pred, p.target, p.row_weight, p.col_weight);
  EXPECT_TRUE(all_close(loss.to_doubles(), {reference_loss(p)},
                        tolerance_for(loss_dtype, static_cast<double>(c.rows * c.cols)), "loss"));
}

TEST_P(LossTest, BackwardMatchesFormula) {
  const LossCase& c = GetParam();
  Problem p = make_problem(c.rows, c.cols, c.dtype, c.dtype, DType::f32, 2);
  Tensor grad = Tensor::empty({c.rows, c.cols}, c.dtype);
  kernels::weighted_mse_backward(grad, 0.7, p.pred, p.target, p.row_weight, p.col_weight);
  EXPECT_TRUE(all_close(grad.to_doubles(), reference_grad(p, 0.7), tolerance_for(c.dtype, 6), "grad_pred"));
}

INSTANTIATE_TEST_SUITE_P(WeightedMse, LossTest, ::testing::ValuesIn(loss_cases()), case_name);

TEST(WeightedMseMixed, Bf16PredictionAgainstF32Target) {
  Problem p = make_problem(65, 33, DType::bf16, DType::f32, DType::f32, 3);
  Tensor loss = Tensor::empty({1}, DType::f32), grad = Tensor::empty({65, 33}, DType::bf16);
  kernels::weighted_mse_forward(loss, p.pred, p.target, p.row_weight, p.col_weight);
  EXPECT_TRUE(all_close(loss.to_doubles(), {reference_loss(p)}, tolerance_for(DType::f32, 65 * 33), "loss"));
  kernels::weighted_mse_backward(grad, 1.0, p.pred, p.target, p.row_weight, p.col_weight);
  EXPECT_TRUE(all_close(grad.to_doubles(), reference_grad(p, 1.0), tolerance_for(DType::bf16, 6), "grad_pred"));
}

TEST(WeightedMseGradient, BackwardMatchesFiniteDifferences) {
  for (DType weight_dtype : {DType::f32, DType::f64}) {
    Problem p = make_problem(31, 33, DType::f64, DType::f64, weight_dtype, 4);
    const double grad_loss = 0.7;
    Tensor loss = Tensor::empty({1}, DType::f64), grad = Tensor::empty({31, 33}, DType::f64);
    auto f = [&] {
      kernels::weighted_mse_forward(loss, p.pred, p.target, p.row_weight, p.col_weight);
      return grad_loss * loss.item();
    };
    kernels::weighted_mse_backward(grad, grad_loss, p.pred, p.target, p.row_weight, p.col_weight);
    EXPECT_TRUE(gradient_matches(grad, p.pred, f, std::string("weighted_mse, weights ") + dtype_name(weight_dtype)));
    // Called twice: the gradient is assigned, not accumulated.
    kernels::weighted_mse_backward(grad, grad_loss, p.pred, p.target, p.row_weight, p.col_weight);
    EXPECT_TRUE(gradient_matches(grad, p.pred, f, "weighted_mse, second call"));
  }
}

TEST(WeightedMseDeterminism, LossBitwiseEqualForAnyThreadCount) {
  Problem p = make_problem(5003, 83, DType::bf16, DType::f32, DType::f32, 5);
  auto compute = [&] {
    Tensor loss = Tensor::empty({1}, DType::f32);
    kernels::weighted_mse_forward(loss, p.pred, p.target, p.row_weight, p.col_weight);
    return loss.data_as<float>()[0];
  };
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const float single = compute();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    const float multi = compute();
    EXPECT_EQ(float_bits(single), float_bits(multi)) << threads << " threads";
  }
  omp_set_num_threads(saved_threads);
  EXPECT_TRUE(all_close({static_cast<double>(single)}, {reference_loss(p)}, tolerance_for(DType::f32, 5003 * 83),
                        "large loss"));
}

TEST(WeightedMseMeta, RunsAndAllocatesNothing) {
  Tensor pred = Tensor::empty({1000, 7}, DType::bf16, Device::meta);
  Tensor target = Tensor::empty({1000, 7}, DType::f32, Device::meta);
  Tensor row_weight = Tensor::empty({1000}, DType::f32, Device::meta);
  Tensor col_weight = Tensor::empty({7}, DType::f32, Device::meta);
  Tensor loss = Tensor::empty({1}, DType::f32, Device::meta);
  Tensor grad = Tensor::empty({1000, 7}, DType::bf16, Device::meta);
  auto& allocator = allocator_for(Device::meta);
  const AllocatorStats before = allocator.stats();
  kernels::weighted_mse_forward(loss, pred, target, row_weight, col_weight);
  kernels::weighted_mse_backward(grad, 1.0, pred, target, row_weight, col_weight);
  const AllocatorStats after = allocator.stats();
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_EQ(after.num_allocs, before.num_allocs);
}

TEST(WeightedMseValidation, RejectsBadOperands) {
  Problem p = make_problem(31, 33, DType::f32, DType::f32, DType::f32, 6);
  Tensor loss = Tensor::empty({1}, DType::f32);
  Tensor short_target = random_tensor({31, 32}, DType::f32, 7);
  EXPECT_THROW(kernels::weighted_mse_forward(loss, p.pred, short_target, p.row_weight, p.col_weight),
               std::invalid_argument);
  EXPECT_THROW(kernels::weighted_mse_forward(loss, p.pred, p.target, p.col_weight, p.col_weight),
               std::invalid_argument);
  Tensor bf16_weights = Tensor::from_doubles(positive_weights(33, 8), {33}, DType::bf16);
  EXPECT_THROW(kernels::weighted_mse_forward(loss, p.pred, p.target, p.row_weight, bf16_weights),
               std::invalid_argument);
  Tensor f64_loss = Tensor::empty({1}, DType::f64);
  EXPECT_THROW(kernels::weighted_mse_forward(f64_loss, p.pred, p.target, p.row_weight, p.col_weight),
               std::invalid_argument);
  Tensor bf16_grad = Tensor::empty({31, 33}, DType::bf16);
  EXPECT_THROW(kernels::weighted_mse_backward(bf16_grad, 1.0, p.pred, p.target, p.row_weight, p.col_weight),
               std::invalid_argument);
  Tensor no_rows = Tensor::empty({0, 33}, DType::f32);
  Tensor no_row_weights = Tensor::empty({0}, DType::f32);
  EXPECT_THROW(kernels::weighted_mse_forward(loss, no_rows, no_rows, no_row_weights, p.col_weight),
               std::invalid_argument);
  try {
    kernels::weighted_mse_forward(loss, p.pred, short_target, p.row_weight, p.col_weight);
    ADD_FAILURE() << "weighted_mse_forward accepted a target of another shape";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("weighted_mse_forward"), std::string::npos) << message;
    EXPECT_NE(message.find(short_target.describe()), std::string::npos) << message;
  }
}

}  // namespace
