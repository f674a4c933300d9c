// test_linear.cpp: the linear ops on tensors: forward against an f64 reference in
// every dtype, backward against central finite differences in f64 and against
// the analytic products in f32/bf16/f16, gradient accumulation, matmul's
// transposes, meta (checks, then nothing) and rejected inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/linear.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using kernels::gemm_workspace_bytes;
using kernels::linear_backward_input;
using kernels::linear_backward_weight;
using kernels::linear_forward;
using kernels::linear_workspace_bytes;
using kernels::matmul;

Tensor workspace_tensor(size_t bytes, Device device = Device::cpu) {
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32, device);
}

// out[i, j] = sum_p op(a)[i, p] op(b)[p, j], a/b given row-major as stored.
std::vector<double> product(const std::vector<double>& a, bool ta, const std::vector<double>& b, bool tb, int64_t m,
                            int64_t n, int64_t k) {
  std::vector<double> out(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += a[ta ? p * m + i : i * k + p] * b[tb ? j * k + p : p * n + j];
      out[i * n + j] = sum;
    }
  return out;
}

// x [3, 11, K]: a 3-D activation, R = 33 rows.
constexpr int64_t kBatch = 3, kRowsPerBatch = 11, kRows = kBatch * kRowsPerBatch, kIn = 65, kOut = 31;

class LinearDtype : public ::testing::TestWithParam<DType> {};

TEST_P(LinearDtype, ForwardMatchesF64Reference) {
  const DType dtype = GetParam();
  Tensor x = test::random_tensor({kBatch, kRowsPerBatch, kIn}, dtype, 1);
  Tensor W = test::random_tensor({kIn, kOut}, dtype, 2);
  Tensor b = test::random_tensor({kOut}, dtype, 3);
  Tensor ws = workspace_tensor(linear_workspace_bytes(Device::cpu, kRows, kIn, kOut));
  for (bool with_bias : {true, false}) {
    Tensor y = Tensor::empty({kBatch, kRowsPerBatch, kOut}, dtype);
    linear_forward(y, x, W, with_bias ? b : Tensor(), ws);
    std::vector<double> ref = product(x.to_doubles(), false, W.to_doubles(), false, kRows, kOut, kIn);
    const std::vector<double> bias = b.to_doubles();
    if (with_bias)
      for (int64_t i = 0; i < kRows; ++i)
        for (int64_t j = 0; j < kOut; ++j) ref[i * kOut + j] += bias[j];
    EXPECT_TRUE(test::all_close(y.to_doubles(), ref, test::tolerance_for(dtype, kIn),
                                std::string("linear_forward bias=") + (with_bias ? "yes" : "no")));
  }
}

TEST_P(LinearDtype, BackwardMatchesAnalyticProducts) {
  const DType dtype = GetParam();
  Tensor x = test::random_tensor({kRows, kIn}, dtype, 4);
  Tensor W = test::random_tensor({kIn, kOut}, dtype, 5);
  Tensor grad_y = test::random_tensor({kRows, kOut}, dtype, 6);
  Tensor ws = workspace_tensor(linear_workspace_bytes(Device::cpu, kRows, kIn, kOut));

  Tensor grad_x = Tensor::empty({kRows, kIn}, dtype);
  linear_backward_input(grad_x, grad_y, W, ws);
  EXPECT_TRUE(test::all_close(grad_x.to_doubles(),
                              product(grad_y.to_doubles(), false, W.to_doubles(), true, kRows, kIn, kOut),
                              test::tolerance_for(dtype, kOut), "grad_x = grad_y W^T"));

  // grad_W accumulates: start from random values, call twice.
  const DType grad_dtype = accumulation_dtype(dtype);
  Tensor grad_W = test::random_tensor({kIn, kOut}, grad_dtype, 7);
  std::vector<double> expected = grad_W.to_doubles();
  const std::vector<double> xtg = product(x.to_doubles(), true, grad_y.to_doubles(), false, kIn, kOut, kRows);
  for (int call = 0; call < 2; ++call) {
    linear_backward_weight(grad_W, x, grad_y, ws);
    for (size_t i = 0; i < expected.size(); ++i) expected[i] += xtg[i];
    EXPECT_TRUE(test::all_close(grad_W.to_doubles(), expected, test::tolerance_for(grad_dtype, kRows * (call + 1)),
                                "grad_W += x^T grad_y, call " + std::to_string(call + 1)));
  }
}

INSTANTIATE_TEST_SUITE_P(Linear, LinearDtype, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Mixed storage: bf16 activations with f32 weights, f32 bias, bf16 output.
TEST(Linear, MixedDtypesForward) {
  Tensor x = test::random_tensor({kRows, kIn}, DType::bf16, 8);
  Tensor W = test::random_tensor({kIn, kOut}, DType::f32, 9);
  Tensor b = test::random_tensor({kOut}, DType::f32, 10);
  Tensor y = Tensor::empty({kRows, kOut}, DType::bf16);
  Tensor ws = workspace_tensor(gemm_workspace_bytes(Device::cpu, kRows, kOut, kIn));
  linear_forward(y, x, W, b, ws);
  std::vector<double> ref = product(x.to_doubles(), false, W.to_doubles(), false, kRows, kOut, kIn);
  const std::vector<double> bias = b.to_doubles();
  for (int64_t i = 0; i < kRows; ++i)
    for (int64_t j = 0; j < kOut; ++j) ref[i * kOut + j] += bias[j];
  EXPECT_TRUE(test::all_close(y.to_doubles(), ref, test::tolerance_for(DType::bf16, kIn), "bf16 x f32 -> bf16"));
}

// An f32 bias under a 16-bit C is rounded to C's dtype before it joins the f32
// accumulator (as autocast casts a linear's bias; cuBLASLt's bias epilogue takes
// C's dtype only, and the cpu adds what the GPU adds). Each row of x W is exactly 1
// and the bias u/2 + u/8192 (u: the dtype's spacing at 1): rounded to the dtype it is
// u/2, so 1 + u/2, a tie, rounds to 1; added unrounded, 1 + u/2 + u/8192 would round
// up to 1 + u. Through every path of the cpu GEMM: k = 1 (few flops), k = 0 (no
// product: C = bias) and a product large enough to run in parallel.
TEST(Linear, AnF32BiasUnderA16BitOutputIsRoundedToItFirst) {
  for (DType dtype : {DType::bf16, DType::f16}) {
    const double u = dtype == DType::bf16 ? std::ldexp(1.0, -7) : std::ldexp(1.0, -10);
    for (int64_t in : {int64_t(1), int64_t(0), int64_t(256)}) {
      const int64_t rows = 300, out = 40;
      std::vector<double> x(static_cast<size_t>(rows * in), 0.0), w(static_cast<size_t>(in * out), 0.0);
      if (in > 0) {
        for (int64_t r = 0; r < rows; ++r) x[static_cast<size_t>(r * in)] = 1.0;
        for (int64_t j = 0; j < out; ++j) w[static_cast<size_t>(j)] = 1.0;
      }
      const Tensor tx = Tensor::from_doubles(x, {rows, in}, dtype), tw = Tensor::from_doubles(w, {in, out}, dtype);
      const Tensor bias = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(out), u / 2 + u / 8192), {out},
                                               DType::f32);
      Tensor y = Tensor::empty({rows, out}, dtype);
      Tensor ws = workspace_tensor(gemm_workspace_bytes(Device::cpu, rows, out, in));
      linear_forward(y, tx, tw, bias, ws);
      const double expected = in > 0 ? 1.0 : u / 2;  // k = 0: C is the rounded bias alone
      for (double v : y.to_doubles()) ASSERT_EQ(v, expected) << dtype_name(dtype) << ", k = " << in;
    }
  }
}

// L = sum(linear(x, W, b) * G) for a fixed G: dL/dx = G W^T, dL/dW = x^T G.
TEST(Linear, BackwardMatchesFiniteDifferences) {
  Tensor x = test::random_tensor({kRows, kIn}, DType::f64, 11);
  Tensor W = test::random_tensor({kIn, kOut}, DType::f64, 12);
  Tensor b = test::random_tensor({kOut}, DType::f64, 13);
  Tensor G = test::random_tensor({kRows, kOut}, DType::f64, 14);
  Tensor ws = workspace_tensor(linear_workspace_bytes(Device::cpu, kRows, kIn, kOut));
  Tensor y = Tensor::empty({kRows, kOut}, DType::f64);
  auto loss = [&]() {
    linear_forward(y, x, W, b, ws);
    const std::vector<double> yv = y.to_doubles(), gv = G.to_doubles();
    double sum = 0;
    for (size_t i = 0; i < yv.size(); ++i) sum += yv[i] * gv[i];
    return sum;
  };
  Tensor grad_x = Tensor::empty({kRows, kIn}, DType::f64);
  linear_backward_input(grad_x, G, W, ws);
  EXPECT_TRUE(test::gradient_matches(grad_x, x, loss, "dL/dx"));
  Tensor grad_W = Tensor::zeros({kIn, kOut}, DType::f64);
  linear_backward_weight(grad_W, x, G, ws);
  EXPECT_TRUE(test::gradient_matches(grad_W, W, loss, "dL/dW"));
}

TEST(Linear, MatmulTransposesAndBeta) {
  const int64_t m = 17, n = 33, k = 31;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    Tensor a = test::random_tensor(ta ? Shape{k, m} : Shape{m, k}, DType::f32, 20 + t);
    Tensor b = test::random_tensor(tb ? Shape{n, k} : Shape{k, n}, DType::f32, 30 + t);
    Tensor out = test::random_tensor({m, n}, DType::f32, 40 + t);
    Tensor ws = workspace_tensor(gemm_workspace_bytes(Device::cpu, m, n, k));
    std::vector<double> ref = product(a.to_doubles(), ta, b.to_doubles(), tb, m, n, k);
    const std::vector<double> old = out.to_doubles();
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += -0.5 * old[i];
    matmul(out, a, ta, b, tb, -0.5, ws);
    EXPECT_TRUE(test::all_close(out.to_doubles(), ref, test::tolerance_for(DType::f32, k),
                                "matmul transpose_a=" + std::to_string(ta) + " transpose_b=" + std::to_string(tb)));
  }
}

TEST(Linear, MetaChecksThenDoesNothing) {
  const int64_t rows = 70000;  // real sizes cost nothing on meta
  set_meta_target(Device::cuda);  // a dry run for a GPU needs cuBLAS's workspace
  EXPECT_EQ(gemm_workspace_bytes(Device::meta, rows, 512, 1536), gemm_workspace_bytes(Device::cuda, rows, 512, 1536));
  set_meta_target(Device::cpu);
  EXPECT_EQ(gemm_workspace_bytes(Device::meta, rows, 512, 1536), gemm_workspace_bytes(Device::cpu, rows, 512, 1536));
  EXPECT_EQ(gemm_workspace_bytes(Device::meta, 1536, 512, rows), gemm_workspace_bytes(Device::cpu, 1536, 512, rows));
  Tensor x = Tensor::empty({rows, 1536}, DType::bf16, Device::meta);
  Tensor W = Tensor::empty({1536, 512}, DType::bf16, Device::meta);
  Tensor b = Tensor::empty({512}, DType::f32, Device::meta);
  Tensor y = Tensor::empty({rows, 512}, DType::bf16, Device::meta);
  Tensor grad_x = Tensor::empty({rows, 1536}, DType::bf16, Device::meta);
  Tensor grad_W = Tensor::empty({1536, 512}, DType::f32, Device::meta);
  Tensor ws = workspace_tensor(linear_workspace_bytes(Device::meta, rows, 1536, 512), Device::meta);
  EXPECT_NO_THROW(linear_forward(y, x, W, b, ws));
  EXPECT_NO_THROW(linear_backward_input(grad_x, y, W, ws));
  EXPECT_NO_THROW(linear_backward_weight(grad_W, x, y, ws));
  Tensor out = Tensor::empty({1536, 512}, DType::f32, Device::meta);
  EXPECT_NO_THROW(matmul(out, x, true, y, false, 0.0, ws));
  // The checks still run: a wrong shape or a short workspace is rejected on meta too.
  Tensor wrong_y = Tensor::empty({rows, 511}, DType::bf16, Device::meta);
  EXPECT_THROW(linear_forward(wrong_y, x, W, b, ws), std::invalid_argument);
  Tensor short_ws = workspace_tensor(1024, Device::meta);
  EXPECT_THROW(linear_forward(y, x, W, b, short_ws), std::invalid_argument);
}

TEST(Linear, RejectsBadInput) {
  Tensor x = test::random_tensor({kRows, kIn}, DType::f32, 50);
  Tensor W = test::random_tensor({kIn, kOut}, DType::f32, 51);
  Tensor y = Tensor::empty({kRows, kOut}, DType::f32);
  Tensor ws = workspace_tensor(linear_workspace_bytes(Device::cpu, kRows, kIn, kOut));
  Tensor wrong_W = test::random_tensor({kIn + 1, kOut}, DType::f32, 52);
  EXPECT_THROW(linear_forward(y, x, wrong_W, Tensor(), ws), std::invalid_argument);
  Tensor wrong_b = test::random_tensor({kOut + 1}, DType::f32, 53);
  EXPECT_THROW(linear_forward(y, x, W, wrong_b, ws), std::invalid_argument);
  Tensor x64 = test::random_tensor({kRows, kIn}, DType::f64, 54);
  EXPECT_THROW(linear_forward(y, x64, W, Tensor(), ws), std::invalid_argument);  // f64 mixed with f32
  Tensor x_int = Tensor::zeros({kRows, kIn}, DType::i32);
  EXPECT_THROW(linear_forward(y, x_int, W, Tensor(), ws), std::invalid_argument);
  Tensor grad_W_bf16 = Tensor::zeros({kIn, kOut}, DType::bf16);  // gradients accumulate in f32
  EXPECT_THROW(linear_backward_weight(grad_W_bf16, x, y, ws), std::invalid_argument);
  Tensor short_ws = workspace_tensor(64);
  EXPECT_THROW(linear_forward(y, x, W, Tensor(), short_ws), std::invalid_argument);
  Tensor x_meta = Tensor::empty({kRows, kIn}, DType::f32, Device::meta);
  EXPECT_THROW(linear_forward(y, x_meta, W, Tensor(), ws), std::invalid_argument);  // mixed devices
  Tensor undefined;
  EXPECT_THROW(linear_forward(undefined, x, W, Tensor(), ws), std::invalid_argument);
}

}  // namespace
}  // namespace gc
