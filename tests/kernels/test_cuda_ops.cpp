// test_cuda_ops.cpp: every op family on the cuda device against the cpu, the
// oracle: the same inputs run on both, and the results must agree bitwise where
// both devices perform the same roundings in the same order (element-by-element
// ops, casts, copies, CSR group sums, the loss gradient), and within the one
// tolerance formula of test_util.h elsewhere (reductions and GEMMs in another
// order, expf, fused multiply-adds). Determinism: ops run twice on the gpu give
// the same bits. A tiny GraphCast trains one step on both devices, and its dry
// run on meta standing for cuda allocates what the gpu step allocates.
//
// Without a usable GPU every test here skips and says why; only the checks that
// need no device (the cuBLAS workspace figure) run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/precision.h"
#include "kernels/accumulation.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/linear.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
#include "kernels/reduce.h"
#include "model/graphcast.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using kernels::accumulation_dtype;
using test::all_close;
using test::random_tensor;
using test::tolerance_for;

constexpr Device kCuda = Device::cuda;

// ---- helpers ---------------------------------------------------------------------------------

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  }
};

class CudaDtypeTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  }
};

std::string dtype_test_name(const ::testing::TestParamInfo<DType>& info) { return dtype_name(info.param); }

Tensor on_cuda(const Tensor& t) { return t.to(kCuda); }

Tensor i32_tensor(const std::vector<int32_t>& values, Device device = Device::cpu) {
  return Tensor::from_host(values.data(), {static_cast<int64_t>(values.size())}, DType::i32, device);
}

// Same dtype, shape and bytes (copied to the host when on the gpu).
::testing::AssertionResult bitwise_equal(const Tensor& got, const Tensor& ref, const std::string& what) {
  if (got.dtype() != ref.dtype() || got.shape() != ref.shape())
    return ::testing::AssertionFailure() << what << ": " << got.describe() << " vs " << ref.describe();
  const Tensor g = got.device() == Device::cpu ? got : got.to(Device::cpu);
  const Tensor r = ref.device() == Device::cpu ? ref : ref.to(Device::cpu);
  const size_t element_bytes = dtype_size(g.dtype());
  const auto* gb = static_cast<const unsigned char*>(g.numel() ? g.data() : nullptr);
  const auto* rb = static_cast<const unsigned char*>(r.numel() ? r.data() : nullptr);
  for (int64_t i = 0; i < g.numel(); ++i)
    if (std::memcmp(gb + i * element_bytes, rb + i * element_bytes, element_bytes) != 0)
      return ::testing::AssertionFailure() << what << ": first difference at element " << i << ": got " << g.item(i)
                                           << ", expected " << r.item(i) << " (" << g.describe() << ")";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult close(const Tensor& got, const Tensor& ref, test::Tolerance tol, const std::string& what) {
  if (got.shape() != ref.shape())
    return ::testing::AssertionFailure() << what << ": " << got.describe() << " vs " << ref.describe();
  return all_close(got.to_doubles(), ref.to_doubles(), tol, what);
}

std::string shape_name(const Shape& shape) { return shape_string(shape); }

// ---- needs no device ---------------------------------------------------------------------------

TEST(CudaLinearWorkspace, IsTheFixedCublasWorkspaceWhateverTheProduct) {
  for (int64_t m : {1, 33, 100000})
    EXPECT_EQ(kernels::gemm_workspace_bytes(kCuda, m, 65, 31), cuda::kCublasWorkspaceBytes) << m;
  EXPECT_EQ(kernels::linear_workspace_bytes(kCuda, 3, 5, 7), cuda::kCublasWorkspaceBytes);
  EXPECT_EQ(cuda::kCublasWorkspaceBytes, size_t(32) << 20);
}

// ---- elementwise -------------------------------------------------------------------------------

class CudaElementwise : public CudaDtypeTest {};

// add, mul, scale and accumulate round once in the same compute type on both
// devices (mixed with f32 operands), so the bits agree.
TEST_P(CudaElementwise, ArithmeticIsBitwiseTheCpus) {
  const DType d = GetParam();
  for (int64_t n : {1, 33, 2015}) {
    const std::string at = std::string(dtype_name(d)) + "/" + std::to_string(n);
    Tensor a = random_tensor({n}, d, 1), b = random_tensor({n}, DType::f32, 2, 3.0);
    Tensor ga = on_cuda(a), gb = on_cuda(b);
    Tensor ref = Tensor::empty({n}, d), got = Tensor::empty({n}, d, kCuda);
    kernels::add_forward(ref, a, b);
    kernels::add_forward(got, ga, gb);
    EXPECT_TRUE(bitwise_equal(got, ref, "add " + at));
    kernels::mul_forward(ref, a, b);
    kernels::mul_forward(got, ga, gb);
    EXPECT_TRUE(bitwise_equal(got, ref, "mul " + at));
    kernels::scale_forward(ref, a, -0.37);
    kernels::scale_forward(got, ga, -0.37);
    EXPECT_TRUE(bitwise_equal(got, ref, "scale " + at));
    // acc += x with acc of this dtype and x f32, twice (the tensor used twice).
    Tensor acc = random_tensor({n}, d, 3), gacc = on_cuda(acc);
    for (int i = 0; i < 2; ++i) {
      kernels::accumulate(acc, b);
      kernels::accumulate(gacc, gb);
    }
    EXPECT_TRUE(bitwise_equal(gacc, acc, "accumulate " + at));
    // out aliasing an input: a = a + a, then a *= 0.5.
    kernels::add_forward(a, a, a);
    kernels::add_forward(ga, ga, ga);
    kernels::scale_inplace(a, 0.5);
    kernels::scale_inplace(ga, 0.5);
    EXPECT_TRUE(bitwise_equal(ga, a, "aliased add and scale_inplace " + at));
  }
}

TEST_P(CudaElementwise, SiluForwardAndBackwardMatchTheCpu) {
  const DType d = GetParam();
  for (int64_t n : {1, 31, 4097}) {
    Tensor x = random_tensor({n}, d, 4, 6.0), grad_out = random_tensor({n}, d, 5);
    Tensor ref = Tensor::empty({n}, d), got = Tensor::empty({n}, d, kCuda);
    kernels::silu_forward(ref, x);
    kernels::silu_forward(got, on_cuda(x));
    // expf differs from the host's by an ulp or two: a few roundings.
    EXPECT_TRUE(close(got, ref, tolerance_for(d, 4), "silu_forward"));
    Tensor ref_grad = Tensor::empty({n}, d), got_grad = Tensor::empty({n}, d, kCuda);
    kernels::silu_backward(ref_grad, grad_out, x);
    kernels::silu_backward(got_grad, on_cuda(grad_out), on_cuda(x));
    EXPECT_TRUE(close(got_grad, ref_grad, tolerance_for(d, 8), "silu_backward"));
  }
}

TEST_P(CudaElementwise, FillConcatSplitAndAllFiniteAreTheCpus) {
  const DType d = GetParam();
  Tensor filled = Tensor::empty({65}, d, kCuda), ref = Tensor::empty({65}, d);
  kernels::fill(filled, 0.1);
  kernels::fill(ref, 0.1);
  EXPECT_TRUE(bitwise_equal(filled, ref, "fill"));

  const int64_t rows = 65;
  std::vector<Tensor> parts = {random_tensor({rows, 1}, d, 6), random_tensor({rows, 31}, d, 7),
                               random_tensor({rows, 0}, d, 8), random_tensor({rows, 33}, d, 9)};
  std::vector<Tensor> gpu_parts;
  for (const Tensor& p : parts) gpu_parts.push_back(on_cuda(p));
  Tensor whole = Tensor::empty({rows, 65}, d), gpu_whole = Tensor::empty({rows, 65}, d, kCuda);
  kernels::concat_cols(whole, parts);
  kernels::concat_cols(gpu_whole, gpu_parts);
  EXPECT_TRUE(bitwise_equal(gpu_whole, whole, "concat_cols"));
  std::vector<Tensor> back;
  for (const Tensor& p : parts) back.push_back(Tensor::empty(p.shape(), d, kCuda));
  kernels::split_cols(back, gpu_whole);
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_TRUE(bitwise_equal(back[i], parts[i], "split_cols part " + std::to_string(i)));

  Tensor x = random_tensor({4097}, d, 10);
  EXPECT_TRUE(kernels::all_finite(on_cuda(x)));
  for (double bad : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
    std::vector<double> values = x.to_doubles();
    values[4000] = bad;
    Tensor with_bad = Tensor::from_doubles(values, {4097}, d);
    EXPECT_EQ(kernels::all_finite(on_cuda(with_bad)), kernels::all_finite(with_bad)) << bad;
    EXPECT_FALSE(kernels::all_finite(on_cuda(with_bad))) << bad;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaElementwise, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         dtype_test_name);

// Every pair of float dtypes, on values that need rounding, overflow f16, fall
// into f16 subnormals, and the specials: the same bits as the host conversions.
TEST_F(CudaTest, CastBetweenEveryPairIsBitwiseTheCpus) {
  std::vector<double> values = test::random_values(200, 11, 3.0);
  for (double v : {0.0, -0.0, 1.0 / 3.0, 65504.0, 65520.0, 70000.0, 1e-5, 3e-7, 6e-8, 2e-8, 1e-40, 1e300, -1e300,
                   std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN(), 1.0 + 1.0 / 512 + 1e-12, 1.0 + 1.0 / 256})
    values.push_back(v);
  const int64_t n = static_cast<int64_t>(values.size());
  const DType dtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
  for (DType from : dtypes)
    for (DType to : dtypes) {
      Tensor x = Tensor::from_doubles(values, {n}, from);
      Tensor ref = Tensor::empty({n}, to), got = Tensor::empty({n}, to, kCuda);
      kernels::cast(ref, x);
      kernels::cast(got, on_cuda(x));
      EXPECT_TRUE(bitwise_equal(got, ref, std::string("cast ") + dtype_name(from) + " -> " + dtype_name(to)));
    }
}

// ---- reductions --------------------------------------------------------------------------------

class CudaReduce : public CudaDtypeTest {};

TEST_P(CudaReduce, WholeTensorSumsMatchTheCpuAndRepeatBitwise) {
  const DType d = GetParam(), out_dtype = accumulation_dtype(d);
  for (int64_t n : {1, 33, 2015, 3000001}) {
    const std::string at = std::string(dtype_name(d)) + "/" + std::to_string(n);
    Tensor x = random_tensor({n}, d, 12), gx = on_cuda(x);
    const auto tol = tolerance_for(out_dtype, static_cast<double>(n));
    Tensor ref = Tensor::empty({1}, out_dtype), got = Tensor::empty({1}, out_dtype, kCuda),
           again = Tensor::empty({1}, out_dtype, kCuda);
    kernels::sum_all(ref, x);
    kernels::sum_all(got, gx);
    kernels::sum_all(again, gx);
    EXPECT_TRUE(close(got, ref, tol, "sum_all " + at));
    EXPECT_TRUE(bitwise_equal(again, got, "sum_all twice " + at));
    kernels::mean_all(ref, x);
    kernels::mean_all(got, gx);
    EXPECT_TRUE(close(got, ref, tol, "mean_all " + at));
    kernels::sum_squares(ref, x);
    kernels::sum_squares(got, gx);
    kernels::sum_squares(again, gx);
    EXPECT_TRUE(close(got, ref, tol, "sum_squares " + at));
    EXPECT_TRUE(bitwise_equal(again, got, "sum_squares twice " + at));
  }
  Tensor empty = Tensor::empty({0}, d, kCuda), zero = Tensor::empty({1}, out_dtype, kCuda);
  kernels::fill(zero, 5.0);
  kernels::sum_all(zero, empty);
  EXPECT_EQ(zero.item(0), 0.0);
}

TEST_P(CudaReduce, SumRowsMatchesTheCpuAndRepeatsBitwise) {
  const DType d = GetParam(), out_dtype = accumulation_dtype(d);
  // {37, 1031}: three passes of the column sums (kPassColumns columns each, the last one short).
  for (const Shape& shape :
       {Shape{1, 1}, Shape{33, 65}, Shape{2015, 31}, Shape{0, 5}, Shape{100003, 65}, Shape{37, 1031}}) {
    const std::string at = std::string(dtype_name(d)) + "/" + shape_name(shape);
    Tensor x = random_tensor(shape, d, 13), gx = on_cuda(x);
    const auto tol = tolerance_for(out_dtype, static_cast<double>(shape[0] + 1));
    for (bool accumulate : {false, true}) {
      Tensor ref = random_tensor({shape[1]}, out_dtype, 14), got = on_cuda(ref), again = on_cuda(ref);
      kernels::sum_rows(ref, x, accumulate);
      kernels::sum_rows(got, gx, accumulate);
      kernels::sum_rows(again, gx, accumulate);
      EXPECT_TRUE(close(got, ref, tol, "sum_rows " + at + (accumulate ? " +=" : "")));
      EXPECT_TRUE(bitwise_equal(again, got, "sum_rows twice " + at));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaReduce, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         dtype_test_name);

// ---- loss --------------------------------------------------------------------------------------

class CudaLoss : public CudaDtypeTest {};

TEST_P(CudaLoss, WeightedMseMatchesTheCpu) {
  const DType d = GetParam(), w = accumulation_dtype(d);
  for (const Shape& shape : {Shape{1, 1}, Shape{33, 65}, Shape{2015, 31}, Shape{20011, 83}}) {
    const std::string at = std::string(dtype_name(d)) + "/" + shape_name(shape);
    Tensor pred = random_tensor(shape, d, 15), target = random_tensor(shape, d == DType::f64 ? d : DType::f32, 16);
    Tensor rows = random_tensor({shape[0]}, w, 17, 1.0), cols = random_tensor({shape[1]}, w, 18, 1.0);
    Tensor gpred = on_cuda(pred), gtarget = on_cuda(target), grows = on_cuda(rows), gcols = on_cuda(cols);
    Tensor ref = Tensor::empty({1}, w), got = Tensor::empty({1}, w, kCuda), again = Tensor::empty({1}, w, kCuda);
    kernels::weighted_mse_forward(ref, pred, target, rows, cols);
    kernels::weighted_mse_forward(got, gpred, gtarget, grows, gcols);
    kernels::weighted_mse_forward(again, gpred, gtarget, grows, gcols);
    EXPECT_TRUE(close(got, ref, tolerance_for(w, static_cast<double>(pred.numel())), "loss " + at));
    EXPECT_TRUE(bitwise_equal(again, got, "loss twice " + at));
    // The gradient is the cpu's formula, multiplication for multiplication.
    Tensor ref_grad = Tensor::empty(shape, d), got_grad = Tensor::empty(shape, d, kCuda);
    kernels::weighted_mse_backward(ref_grad, 0.75, pred, target, rows, cols);
    kernels::weighted_mse_backward(got_grad, 0.75, gpred, gtarget, grows, gcols);
    EXPECT_TRUE(bitwise_equal(got_grad, ref_grad, "loss gradient " + at));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLoss, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         dtype_test_name);

// ---- optimizer ----------------------------------------------------------------------------------

class CudaOptim : public CudaDtypeTest {};

TEST_P(CudaOptim, AdamWStepsMatchTheCpu) {
  const DType d = GetParam();
  const int64_t n = 4099;
  Tensor param = random_tensor({n}, d, 19), m = Tensor::zeros({n}, d), v = Tensor::zeros({n}, d);
  Tensor gparam = on_cuda(param), gm = on_cuda(m), gv = on_cuda(v);
  kernels::AdamWSettings settings;
  settings.lr = 3e-3;
  for (int64_t step = 1; step <= 3; ++step) {
    Tensor grad = random_tensor({n}, d, 20 + static_cast<uint64_t>(step));
    kernels::adamw_step(param, grad, m, v, settings, step, 0.5);
    kernels::adamw_step(gparam, on_cuda(grad), gm, gv, settings, step, 0.5);
  }
  // Fused multiply-adds on the gpu: a few roundings apart per step.
  EXPECT_TRUE(close(gparam, param, tolerance_for(d, 16), "param"));
  EXPECT_TRUE(close(gm, m, tolerance_for(d, 16), "m"));
  EXPECT_TRUE(close(gv, v, tolerance_for(d, 16), "v"));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaOptim, ::testing::Values(DType::f32, DType::f64), dtype_test_name);

// ---- layernorm ----------------------------------------------------------------------------------

class CudaLayerNorm : public CudaDtypeTest {};

TEST_P(CudaLayerNorm, ForwardAndBackwardMatchTheCpuAndRepeatBitwise) {
  const DType d = GetParam(), s = accumulation_dtype(d);
  for (const Shape& shape : {Shape{1, 1}, Shape{33, 65}, Shape{65, 31}, Shape{3, 5, 33}, Shape{7, 700},
                             Shape{5001, 64}}) {
    const std::string at = std::string(dtype_name(d)) + "/" + shape_name(shape);
    const int64_t cols = shape.back(), rows = shape_numel(shape) / cols;
    Tensor x = random_tensor(shape, d, 21, 2.0), gamma = random_tensor({cols}, s, 22), beta = random_tensor({cols}, s, 23);
    Tensor grad_out = random_tensor(shape, d, 24);
    Tensor gx = on_cuda(x), ggamma = on_cuda(gamma), gbeta = on_cuda(beta), ggrad_out = on_cuda(grad_out);

    Tensor out = Tensor::empty(shape, d), mean = Tensor::empty({rows}, s), rstd = Tensor::empty({rows}, s);
    kernels::layernorm_forward(out, mean, rstd, x, gamma, beta, 1e-5);
    Tensor gout = Tensor::empty(shape, d, kCuda), gmean = Tensor::empty({rows}, s, kCuda),
           grstd = Tensor::empty({rows}, s, kCuda);
    kernels::layernorm_forward(gout, gmean, grstd, gx, ggamma, gbeta, 1e-5);
    const auto tol = tolerance_for(d, static_cast<double>(cols));
    const auto stats_tol = tolerance_for(s, static_cast<double>(cols));
    EXPECT_TRUE(close(gout, out, tol, "out " + at));
    EXPECT_TRUE(close(gmean, mean, stats_tol, "mean " + at));
    EXPECT_TRUE(close(grstd, rstd, stats_tol, "rstd " + at));

    // Backward from the cpu's statistics on both devices, so only the backward differs.
    Tensor grad_x = Tensor::empty(shape, d), grad_gamma = random_tensor({cols}, s, 25),
           grad_beta = random_tensor({cols}, s, 26);
    Tensor ggrad_x = Tensor::empty(shape, d, kCuda), ggrad_gamma = on_cuda(grad_gamma),
           ggrad_beta = on_cuda(grad_beta);
    Tensor smean = on_cuda(mean), srstd = on_cuda(rstd);
    kernels::layernorm_backward(grad_x, grad_gamma, grad_beta, grad_out, x, mean, rstd, gamma);
    kernels::layernorm_backward(ggrad_x, ggrad_gamma, ggrad_beta, ggrad_out, gx, smean, srstd, ggamma);
    EXPECT_TRUE(close(ggrad_x, grad_x, tolerance_for(d, 4.0 * static_cast<double>(cols)), "grad_x " + at));
    const auto param_tol = tolerance_for(s, static_cast<double>(rows + 1));
    EXPECT_TRUE(close(ggrad_gamma, grad_gamma, param_tol, "grad_gamma " + at));
    EXPECT_TRUE(close(ggrad_beta, grad_beta, param_tol, "grad_beta " + at));

    // Twice from zero: the same bits (no atomics in the column sums).
    Tensor first_gamma = Tensor::zeros({cols}, s, kCuda), first_beta = Tensor::zeros({cols}, s, kCuda);
    Tensor second_gamma = Tensor::zeros({cols}, s, kCuda), second_beta = Tensor::zeros({cols}, s, kCuda);
    Tensor second_x = Tensor::empty(shape, d, kCuda);
    kernels::layernorm_backward(ggrad_x, first_gamma, first_beta, ggrad_out, gx, smean, srstd, ggamma);
    kernels::layernorm_backward(second_x, second_gamma, second_beta, ggrad_out, gx, smean, srstd, ggamma);
    EXPECT_TRUE(bitwise_equal(second_x, ggrad_x, "grad_x twice " + at));
    EXPECT_TRUE(bitwise_equal(second_gamma, first_gamma, "grad_gamma twice " + at));
    EXPECT_TRUE(bitwise_equal(second_beta, first_beta, "grad_beta twice " + at));
  }
}

TEST_P(CudaLayerNorm, SixteenBitGammaAndBeta) {
  const DType d = GetParam();
  if (d == DType::f64) GTEST_SKIP() << "f64 x pairs with any gamma; covered by the f32 gamma case";
  const Shape shape{33, 65};
  Tensor x = random_tensor(shape, d, 27), gamma = random_tensor({65}, DType::bf16, 28),
         beta = random_tensor({65}, DType::bf16, 29);
  Tensor out = Tensor::empty(shape, d), mean = Tensor::empty({33}, DType::f32), rstd = Tensor::empty({33}, DType::f32);
  kernels::layernorm_forward(out, mean, rstd, x, gamma, beta, 1e-5);
  Tensor gout = Tensor::empty(shape, d, kCuda), gmean = Tensor::empty({33}, DType::f32, kCuda),
         grstd = Tensor::empty({33}, DType::f32, kCuda);
  kernels::layernorm_forward(gout, gmean, grstd, on_cuda(x), on_cuda(gamma), on_cuda(beta), 1e-5);
  EXPECT_TRUE(close(gout, out, tolerance_for(d, 65), "out with bf16 gamma"));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLayerNorm, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         dtype_test_name);

// ---- graph ops ----------------------------------------------------------------------------------

// A graph with a hub node (about a third of the edges), empty nodes at the end,
// senders grouped by a CSR built on the host, receivers sorted.
struct CudaGraph {
  int64_t nodes = 37, edges = 301;
  std::vector<int32_t> senders, receivers;
  Tensor sender_order, sender_offsets, receiver_offsets;  // cpu
  CudaGraph() {
    uint64_t state = 12345;
    auto next = [&] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<int64_t>(state >> 33);
    };
    for (int64_t e = 0; e < edges; ++e) {
      senders.push_back(static_cast<int32_t>(e % 3 == 0 ? 5 : next() % (nodes - 3)));
      receivers.push_back(static_cast<int32_t>(e % 3 == 1 ? 7 : next() % (nodes - 3)));
    }
    std::sort(receivers.begin(), receivers.end());
    sender_order = Tensor::empty({edges}, DType::i32);
    sender_offsets = Tensor::empty({nodes + 1}, DType::i32);
    kernels::build_csr(sender_order, sender_offsets, i32_tensor(senders), nodes);
    Tensor identity = Tensor::empty({edges}, DType::i32);
    receiver_offsets = Tensor::empty({nodes + 1}, DType::i32);
    kernels::build_csr(identity, receiver_offsets, i32_tensor(receivers), nodes);
  }
};

class CudaIndex : public CudaDtypeTest {};

// Group sums add the same values in the same (CSR) order on both devices: bitwise.
TEST_P(CudaIndex, GatherAndSegmentSumAreBitwiseTheCpus) {
  const DType d = GetParam();
  const CudaGraph g;
  Tensor senders = i32_tensor(g.senders), gsenders = on_cuda(senders);
  Tensor gorder = on_cuda(g.sender_order), goffsets = on_cuda(g.sender_offsets),
         greceiver_offsets = on_cuda(g.receiver_offsets);
  // (node dtype, edge dtype): equal, or a 16-bit edge tensor summed into f32 nodes.
  std::vector<std::pair<DType, DType>> pairs = {{d, d}};
  if (d == DType::bf16 || d == DType::f16) pairs.push_back({DType::f32, d});
  for (auto [node_dtype, edge_dtype] : pairs)
    for (int64_t cols : {1, 31, 65, 200}) {
      const std::string at = std::string(dtype_name(node_dtype)) + "<->" + dtype_name(edge_dtype) + "/" +
                             std::to_string(cols);
      Tensor x = random_tensor({g.nodes, cols}, node_dtype, 30), gx = on_cuda(x);
      Tensor out = Tensor::empty({g.edges, cols}, edge_dtype), gout = Tensor::empty({g.edges, cols}, edge_dtype, kCuda);
      kernels::gather_rows_forward(out, x, senders);
      kernels::gather_rows_forward(gout, gx, gsenders);
      EXPECT_TRUE(bitwise_equal(gout, out, "gather forward " + at));

      Tensor grad_edges = random_tensor({g.edges, cols}, edge_dtype, 31), ggrad_edges = on_cuda(grad_edges);
      Tensor grad_nodes = Tensor::empty({g.nodes, cols}, node_dtype),
             ggrad_nodes = Tensor::empty({g.nodes, cols}, node_dtype, kCuda);
      kernels::gather_rows_backward(grad_nodes, grad_edges, g.sender_order, g.sender_offsets);
      kernels::gather_rows_backward(ggrad_nodes, ggrad_edges, gorder, goffsets);
      EXPECT_TRUE(bitwise_equal(ggrad_nodes, grad_nodes, "gather backward " + at));

      for (bool accumulate : {false, true}) {
        Tensor sums = random_tensor({g.nodes, cols}, node_dtype, 32), gsums = on_cuda(sums);
        kernels::segment_sum_forward(sums, grad_edges, g.receiver_offsets, accumulate);
        kernels::segment_sum_forward(gsums, ggrad_edges, greceiver_offsets, accumulate);
        EXPECT_TRUE(bitwise_equal(gsums, sums, "segment_sum forward " + at + (accumulate ? " +=" : "")));
      }
      Tensor spread = Tensor::empty({g.edges, cols}, edge_dtype),
             gspread = Tensor::empty({g.edges, cols}, edge_dtype, kCuda);
      kernels::segment_sum_backward(spread, x, g.receiver_offsets);
      kernels::segment_sum_backward(gspread, gx, greceiver_offsets);
      EXPECT_TRUE(bitwise_equal(gspread, spread, "segment_sum backward " + at));
    }
}

// A graph without edges (E = 0): the edge tensors have no storage, every group
// is empty, so the group sums are 0 (or out's value when accumulating).
TEST_P(CudaIndex, AGraphWithoutEdgesGivesTheCpusResults) {
  const DType d = GetParam();
  const int64_t nodes = 5, cols = 33;
  const Tensor no_index = Tensor::empty({0}, DType::i32), offsets = i32_tensor(std::vector<int32_t>(nodes + 1, 0));
  const Tensor gno_index = on_cuda(no_index), goffsets = on_cuda(offsets);
  Tensor x = random_tensor({nodes, cols}, d, 46), gx = on_cuda(x);
  Tensor edges = Tensor::empty({0, cols}, d), gedges = Tensor::empty({0, cols}, d, kCuda);
  kernels::gather_rows_forward(edges, x, no_index);
  kernels::gather_rows_forward(gedges, gx, gno_index);
  EXPECT_EQ(gedges.numel(), 0);
  Tensor grad_x = random_tensor({nodes, cols}, d, 47), ggrad_x = on_cuda(grad_x);  // assigned, not accumulated
  kernels::gather_rows_backward(grad_x, edges, no_index, offsets);
  kernels::gather_rows_backward(ggrad_x, gedges, gno_index, goffsets);
  EXPECT_TRUE(bitwise_equal(ggrad_x, grad_x, "gather backward without edges"));
  for (bool accumulate : {false, true}) {
    Tensor sums = random_tensor({nodes, cols}, d, 48), gsums = on_cuda(sums);
    kernels::segment_sum_forward(sums, edges, offsets, accumulate);
    kernels::segment_sum_forward(gsums, gedges, goffsets, accumulate);
    EXPECT_TRUE(bitwise_equal(gsums, sums, std::string("segment_sum without edges") + (accumulate ? " +=" : "")));
  }
  kernels::segment_sum_backward(gedges, gx, goffsets);
  EXPECT_EQ(gedges.numel(), 0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaIndex, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         dtype_test_name);

// The message of an error raised on the device.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument)";
}

// The messages describe the tensors, device included: compare them with "cuda" read as "cpu".
std::string as_if_on_cpu(std::string message) {
  for (size_t at = message.find("on cuda"); at != std::string::npos; at = message.find("on cuda", at))
    message.replace(at, 7, "on cpu");
  return message;
}

TEST_F(CudaTest, BadIndicesAreRejectedWithTheCpusMessage) {
  auto on = [](Device device, const char* kind) -> std::string {
    Tensor x = random_tensor({4, 3}, DType::f32, 33, 1.0, device);
    Tensor out = Tensor::empty({3, 3}, DType::f32, device);
    Tensor edges = random_tensor({3, 3}, DType::f32, 34, 1.0, device), nodes = Tensor::empty({4, 3}, DType::f32, device);
    const std::string k = kind;
    if (k == "index") return error_of([&] { kernels::gather_rows_forward(out, x, i32_tensor({0, 4, -1}, device)); });
    if (k == "negative") return error_of([&] { kernels::gather_rows_forward(out, x, i32_tensor({0, 1, -1}, device)); });
    if (k == "start")
      return error_of([&] { kernels::segment_sum_backward(edges, nodes, i32_tensor({1, 1, 2, 3, 3}, device)); });
    if (k == "decrease")
      return error_of([&] { kernels::segment_sum_forward(nodes, edges, i32_tensor({0, 1, 2, 3, 2}, device), false); });
    if (k == "end")
      return error_of([&] { kernels::segment_sum_forward(nodes, edges, i32_tensor({0, 1, 1, 1, 2}, device), false); });
    return error_of([&] {
      kernels::gather_rows_backward(nodes, edges, i32_tensor({0, 3, 1}, device), i32_tensor({0, 1, 2, 3, 3}, device));
    });
  };
  for (const char* kind : {"index", "negative", "start", "decrease", "end", "order"}) {
    const std::string cpu = on(Device::cpu, kind);
    const bool cpu_rejected = cpu.find("outside [0, ") != std::string::npos || cpu.find("offsets") != std::string::npos;
    EXPECT_TRUE(cpu_rejected) << kind << ": " << cpu;
    EXPECT_EQ(as_if_on_cpu(on(kCuda, kind)), cpu) << kind;
  }
}

// ---- linear (cuBLAS) ------------------------------------------------------------------------------

class CudaLinear : public CudaDtypeTest {};

Tensor workspace_for(Device device, int64_t m, int64_t n, int64_t k) {
  const size_t bytes = kernels::gemm_workspace_bytes(device, m, n, k);
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32, device);
}

TEST_P(CudaLinear, ForwardAndBackwardMatchTheCpuAndRepeatBitwise) {
  const DType d = GetParam(), acc = accumulation_dtype(d);
  struct Dims {
    int64_t rows, in, out;
  };
  for (Dims dims : {Dims{1, 1, 1}, Dims{33, 65, 31}, Dims{65, 31, 33}, Dims{3001, 129, 65}}) {
    const std::string at = std::string(dtype_name(d)) + "/" + std::to_string(dims.rows) + "x" +
                           std::to_string(dims.in) + "x" + std::to_string(dims.out);
    // W scaled so that x W stays O(1): the bias then adds to values of its own size.
    Tensor x = random_tensor({dims.rows, dims.in}, d, 35), W = random_tensor({dims.in, dims.out}, d, 36, 0.25);
    Tensor b = random_tensor({dims.out}, acc, 37);
    Tensor gx = on_cuda(x), gW = on_cuda(W), gb = on_cuda(b);
    Tensor cpu_ws = workspace_for(Device::cpu, dims.rows, dims.out, dims.in);
    Tensor gpu_ws = workspace_for(kCuda, dims.rows, dims.out, dims.in);
    const auto tol = tolerance_for(d, static_cast<double>(dims.in + 1));

    Tensor y = Tensor::empty({dims.rows, dims.out}, d), gy = Tensor::empty({dims.rows, dims.out}, d, kCuda),
           gy_again = Tensor::empty({dims.rows, dims.out}, d, kCuda);
    kernels::linear_forward(y, x, W, b, cpu_ws);
    kernels::linear_forward(gy, gx, gW, gb, gpu_ws);
    kernels::linear_forward(gy_again, gx, gW, gb, gpu_ws);
    EXPECT_TRUE(close(gy, y, tol, "linear_forward " + at));
    EXPECT_TRUE(bitwise_equal(gy_again, gy, "linear_forward twice " + at));

    Tensor grad_y = random_tensor({dims.rows, dims.out}, d, 38), ggrad_y = on_cuda(grad_y);
    Tensor grad_x = Tensor::empty({dims.rows, dims.in}, d), ggrad_x = Tensor::empty({dims.rows, dims.in}, d, kCuda);
    Tensor cpu_ws_input = workspace_for(Device::cpu, dims.rows, dims.in, dims.out);
    kernels::linear_backward_input(grad_x, grad_y, W, cpu_ws_input);
    kernels::linear_backward_input(ggrad_x, ggrad_y, gW, gpu_ws);
    EXPECT_TRUE(close(ggrad_x, grad_x, tolerance_for(d, static_cast<double>(dims.out)), "linear_backward_input " + at));

    // grad_W accumulates (f32, f64 for f64) over the rows, twice (backward called twice).
    Tensor grad_W = random_tensor({dims.in, dims.out}, acc, 39), ggrad_W = on_cuda(grad_W);
    Tensor cpu_ws_weight = workspace_for(Device::cpu, dims.in, dims.out, dims.rows);
    for (int i = 0; i < 2; ++i) {
      kernels::linear_backward_weight(grad_W, x, grad_y, cpu_ws_weight);
      kernels::linear_backward_weight(ggrad_W, gx, ggrad_y, gpu_ws);
    }
    // Each element is a sum over 3001 rows whose terms cancel: its rounding error
    // in any order (cuBLAS accumulates along k in each thread) scales with the terms'
    // root-sum-square: sqrt(init^2 + 2 sum_r (x[r,i] grad_y[r,j])^2).
    const std::vector<double> xv = x.to_doubles(), gyv = grad_y.to_doubles(),
                              init = random_tensor({dims.in, dims.out}, acc, 39).to_doubles();
    std::vector<double> term_scale(init.size());
    for (int64_t i = 0; i < dims.in; ++i)
      for (int64_t j = 0; j < dims.out; ++j) {
        double squares = init[i * dims.out + j] * init[i * dims.out + j];
        for (int64_t r = 0; r < dims.rows; ++r) {
          const double term = xv[r * dims.in + i] * gyv[r * dims.out + j];
          squares += 2.0 * term * term;
        }
        term_scale[i * dims.out + j] = std::sqrt(squares);
      }
    EXPECT_TRUE(test::all_close_sum(ggrad_W.to_doubles(), grad_W.to_doubles(), term_scale,
                                    tolerance_for(acc, 2.0 * static_cast<double>(dims.rows)),
                                    "linear_backward_weight " + at));
  }
}

TEST_P(CudaLinear, MatmulTransposesAndBetaMatchTheCpu) {
  const DType d = GetParam();
  const int64_t m = 33, n = 31, k = 65;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const std::string at = std::string(dtype_name(d)) + (ta ? "/aT" : "/a") + (tb ? "bT" : "b");
      Tensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, d, 40);
      Tensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, d, 41);
      // out f32 (the accumulator) with beta = 0.5, and out in d with beta = 0.
      Tensor out = random_tensor({m, n}, accumulation_dtype(d), 42), gout = on_cuda(out);
      Tensor cpu_ws = workspace_for(Device::cpu, m, n, k), gpu_ws = workspace_for(kCuda, m, n, k);
      kernels::matmul(out, a, ta, b, tb, 0.5, cpu_ws);
      kernels::matmul(gout, on_cuda(a), ta, on_cuda(b), tb, 0.5, gpu_ws);
      EXPECT_TRUE(
          close(gout, out, tolerance_for(accumulation_dtype(d), static_cast<double>(k + 1)), "matmul beta " + at));
      Tensor plain = Tensor::empty({m, n}, d), gplain = Tensor::empty({m, n}, d, kCuda);
      kernels::fill(gplain, std::numeric_limits<double>::quiet_NaN());  // beta = 0 must not read it
      kernels::matmul(plain, a, ta, b, tb, 0.0, cpu_ws);
      kernels::matmul(gplain, on_cuda(a), ta, on_cuda(b), tb, 0.0, gpu_ws);
      EXPECT_TRUE(close(gplain, plain, tolerance_for(d, static_cast<double>(k)), "matmul " + at));
    }
}

// Products with k = 0 (no product: C = beta C + bias, as for an empty edge chunk's
// weight gradient): our epilogue kernel, the cpu's operations in the cpu's order,
// so the bits agree, the sign of a zero included; a beta that is 0 in the compute
// type never reads C.
TEST_P(CudaLinear, EmptyInnerDimensionIsBitwiseTheCpus) {
  const DType d = GetParam(), acc = accumulation_dtype(d);
  const int64_t m = 33, n = 31;
  const Tensor a = Tensor::empty({m, 0}, d), b = Tensor::empty({0, n}, d);
  const Tensor ga = Tensor::empty({m, 0}, d, kCuda), gb = Tensor::empty({0, n}, d, kCuda);
  Tensor cpu_ws = workspace_for(Device::cpu, m, n, 0), gpu_ws = workspace_for(kCuda, m, n, 0);
  // out f32 (the accumulator) and out in d, each scaled by beta; a -0 in C becomes
  // 0 + beta * -0 = +0.
  for (DType out_dtype : {acc, d})
    for (double beta : {0.5, -1.25}) {
      const std::string at = std::string(dtype_name(d)) + " -> " + dtype_name(out_dtype) + "/beta " +
                             std::to_string(beta);
      std::vector<double> values = test::random_values(static_cast<size_t>(m * n), 49);
      values[5] = -0.0;
      Tensor out = Tensor::from_doubles(values, {m, n}, out_dtype), gout = on_cuda(out);
      kernels::matmul(out, a, false, b, false, beta, cpu_ws);
      kernels::matmul(gout, ga, false, gb, false, beta, gpu_ws);
      EXPECT_TRUE(bitwise_equal(gout, out, "matmul k = 0 " + at));
    }
  // beta = 0, and a beta that rounds to 0 in f32: C (NaN here) is never read.
  struct NamedBeta {
    double value;
    const char* name;
  };
  for (NamedBeta beta_case : {NamedBeta{0.0, "0"}, NamedBeta{1e-50, "1e-50"}}) {
    const double beta = beta_case.value;
    if (d == DType::f64 && beta != 0.0) continue;  // 1e-50 is no zero in f64
    Tensor plain = Tensor::empty({m, n}, d), gplain = Tensor::empty({m, n}, d, kCuda);
    kernels::fill(plain, std::numeric_limits<double>::quiet_NaN());
    kernels::fill(gplain, std::numeric_limits<double>::quiet_NaN());
    kernels::matmul(plain, a, false, b, false, beta, cpu_ws);
    kernels::matmul(gplain, ga, false, gb, false, beta, gpu_ws);
    EXPECT_TRUE(bitwise_equal(gplain, plain, std::string("matmul k = 0, beta ") + beta_case.name));
  }
  // A linear layer without input features: y = b.
  const Tensor bias = random_tensor({n}, acc, 50), gbias = on_cuda(bias);
  Tensor y = Tensor::empty({m, n}, d), gy = Tensor::empty({m, n}, d, kCuda);
  kernels::fill(gy, std::numeric_limits<double>::quiet_NaN());
  kernels::linear_forward(y, a, b, bias, cpu_ws);
  kernels::linear_forward(gy, ga, gb, gbias, gpu_ws);
  EXPECT_TRUE(bitwise_equal(gy, y, "linear_forward without input features"));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLinear, ::testing::Values(DType::f32, DType::bf16, DType::f16, DType::f64),
                         dtype_test_name);

TEST_F(CudaTest, LinearRejectsWhatCublasCannotMultiply) {
  Tensor ws = workspace_for(kCuda, 3, 5, 4);
  Tensor x = random_tensor({3, 4}, DType::bf16, 43, 1.0, kCuda), W32 = random_tensor({4, 5}, DType::f32, 44, 1.0, kCuda);
  Tensor y = Tensor::empty({3, 5}, DType::bf16, kCuda);
  // Mixed A/B dtypes: accepted by the cpu GEMM, refused by cuBLAS (cast first).
  EXPECT_THROW(kernels::linear_forward(y, x, W32, Tensor(), ws), std::invalid_argument);
  // f32 inputs into a bf16 output.
  Tensor x32 = random_tensor({3, 4}, DType::f32, 45, 1.0, kCuda);
  EXPECT_THROW(kernels::linear_forward(y, x32, W32, Tensor(), ws), std::invalid_argument);
  // A workspace below the cuBLAS figure.
  Tensor small = Tensor::empty({16}, DType::i32, kCuda);
  Tensor y32 = Tensor::empty({3, 5}, DType::f32, kCuda);
  EXPECT_THROW(kernels::linear_forward(y32, x32, W32, Tensor(), small), std::invalid_argument);
}

// ---- more items than one grid holds ----------------------------------------------------------------

// A launch holds at most kMaxBlocks blocks (kernels/cuda/launch.h); beyond one
// grid's threads (element kernels) or warps (row kernels) the grid-stride loops
// take further passes, which real GraphCast sizes need (1,038,240 grid-node rows,
// 3,114,720 edge rows) and the other tests never reach. Sized from the cap, so a
// build that lowers it (GC_CUDA_MAX_BLOCKS) covers the same passes with small inputs.
TEST_F(CudaTest, KernelsCoverMoreItemsThanOneGridHolds) {
#if defined(GC_CUDA_SIM) && !defined(GC_CUDA_MAX_BLOCKS)
  GTEST_SKIP() << "a full grid is millions of simulated threads: lower the cap with GC_CUDA_MAX_BLOCKS";
#endif
  // Element kernels: one thread per element.
  const int64_t n = cuda::kMaxGridThreads + 1031;
  Tensor a = random_tensor({n}, DType::bf16, 51), b = random_tensor({n}, DType::f32, 52);
  Tensor ga = on_cuda(a), gb = on_cuda(b);
  Tensor sum = Tensor::empty({n}, DType::f32), gsum = Tensor::empty({n}, DType::f32, kCuda);
  kernels::add_forward(sum, a, b);
  kernels::add_forward(gsum, ga, gb);
  EXPECT_TRUE(bitwise_equal(gsum, sum, "add_forward"));
  EXPECT_TRUE(kernels::all_finite(gsum));
  sum.data_as<float>()[n - 1] = std::numeric_limits<float>::infinity();  // the last element only
  EXPECT_FALSE(kernels::all_finite(on_cuda(sum)));

  // Row kernels: one warp per row, 3 columns.
  const int64_t rows = cuda::kMaxGridWarps + 37, cols = 3, nodes = 1000;
  // Gather rows from `nodes` rows; the last index is the first bad one.
  std::vector<int32_t> index(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) index[static_cast<size_t>(r)] = static_cast<int32_t>((r * 7919) % nodes);
  Tensor x = random_tensor({nodes, cols}, DType::f32, 53), gx = on_cuda(x);
  Tensor gathered = Tensor::empty({rows, cols}, DType::bf16),
         ggathered = Tensor::empty({rows, cols}, DType::bf16, kCuda);
  kernels::gather_rows_forward(gathered, x, i32_tensor(index));
  kernels::gather_rows_forward(ggathered, gx, i32_tensor(index, kCuda));
  EXPECT_TRUE(bitwise_equal(ggathered, gathered, "gather_rows_forward"));
  index.back() = static_cast<int32_t>(nodes);
  const std::string cpu_error = error_of([&] { kernels::gather_rows_forward(gathered, x, i32_tensor(index)); });
  EXPECT_NE(cpu_error.find("outside [0, "), std::string::npos) << cpu_error;
  EXPECT_EQ(as_if_on_cpu(error_of([&] { kernels::gather_rows_forward(ggathered, gx, i32_tensor(index, kCuda)); })),
            cpu_error);

  // Groups over `rows` nodes, node r receiving r % 3 edges.
  std::vector<int32_t> offsets{0};
  for (int64_t r = 0; r < rows; ++r) offsets.push_back(offsets.back() + static_cast<int32_t>(r % 3));
  const int64_t edges = offsets.back();
  std::vector<int32_t> reversed(static_cast<size_t>(edges));  // a CSR order that is not the identity
  for (int64_t e = 0; e < edges; ++e) reversed[static_cast<size_t>(e)] = static_cast<int32_t>(edges - 1 - e);
  const Tensor csr_offsets = i32_tensor(offsets), gcsr_offsets = on_cuda(csr_offsets);
  const Tensor order = i32_tensor(reversed), gorder = on_cuda(order);
  Tensor edge_values = random_tensor({edges, cols}, DType::bf16, 54), gedge_values = on_cuda(edge_values);
  for (bool accumulate : {false, true}) {
    Tensor sums = random_tensor({rows, cols}, DType::f32, 55), gsums = on_cuda(sums);
    kernels::segment_sum_forward(sums, edge_values, csr_offsets, accumulate);
    kernels::segment_sum_forward(gsums, gedge_values, gcsr_offsets, accumulate);
    EXPECT_TRUE(bitwise_equal(gsums, sums, std::string("segment_sum_forward") + (accumulate ? " +=" : "")));
  }
  Tensor grouped = Tensor::empty({rows, cols}, DType::f32), ggrouped = Tensor::empty({rows, cols}, DType::f32, kCuda);
  kernels::gather_rows_backward(grouped, edge_values, order, csr_offsets);
  kernels::gather_rows_backward(ggrouped, gedge_values, gorder, gcsr_offsets);
  EXPECT_TRUE(bitwise_equal(ggrouped, grouped, "gather_rows_backward"));
  Tensor spread = Tensor::empty({edges, cols}, DType::bf16), gspread = Tensor::empty({edges, cols}, DType::bf16, kCuda);
  kernels::segment_sum_backward(spread, grouped, csr_offsets);
  kernels::segment_sum_backward(gspread, ggrouped, gcsr_offsets);
  EXPECT_TRUE(bitwise_equal(gspread, spread, "segment_sum_backward"));

  // LayerNorm rows.
  Tensor gamma = random_tensor({cols}, DType::f32, 56), beta = random_tensor({cols}, DType::f32, 57);
  Tensor normed = Tensor::empty({rows, cols}, DType::f32), mean = Tensor::empty({rows}, DType::f32),
         rstd = Tensor::empty({rows}, DType::f32);
  Tensor gnormed = Tensor::empty({rows, cols}, DType::f32, kCuda), gmean = Tensor::empty({rows}, DType::f32, kCuda),
         grstd = Tensor::empty({rows}, DType::f32, kCuda);
  kernels::layernorm_forward(normed, mean, rstd, grouped, gamma, beta, 1e-5);
  kernels::layernorm_forward(gnormed, gmean, grstd, ggrouped, on_cuda(gamma), on_cuda(beta), 1e-5);
  EXPECT_TRUE(close(gnormed, normed, tolerance_for(DType::f32, cols), "layernorm_forward"));
  EXPECT_TRUE(close(grstd, rstd, tolerance_for(DType::f32, cols), "layernorm_forward rstd"));
  Tensor grad_rows = random_tensor({rows, cols}, DType::f32, 58);
  Tensor grad_in = Tensor::empty({rows, cols}, DType::f32), ggrad_in = Tensor::empty({rows, cols}, DType::f32, kCuda);
  Tensor grad_gamma = Tensor::zeros({cols}, DType::f32), grad_beta = Tensor::zeros({cols}, DType::f32);
  Tensor ggrad_gamma = on_cuda(grad_gamma), ggrad_beta = on_cuda(grad_beta);
  kernels::layernorm_backward(grad_in, grad_gamma, grad_beta, grad_rows, grouped, mean, rstd, gamma);
  kernels::layernorm_backward(ggrad_in, ggrad_gamma, ggrad_beta, on_cuda(grad_rows), ggrouped, on_cuda(mean),
                              on_cuda(rstd), on_cuda(gamma));
  EXPECT_TRUE(close(ggrad_in, grad_in, tolerance_for(DType::f32, 4.0 * cols), "layernorm_backward grad_x"));

  // The loss gradient, row by row: the cpu's multiplications.
  Tensor target = random_tensor({rows, cols}, DType::f32, 59);
  Tensor row_weight = random_tensor({rows}, DType::f32, 60), col_weight = random_tensor({cols}, DType::f32, 61);
  Tensor grad_pred = Tensor::empty({rows, cols}, DType::f32),
         ggrad_pred = Tensor::empty({rows, cols}, DType::f32, kCuda);
  kernels::weighted_mse_backward(grad_pred, 0.75, grouped, target, row_weight, col_weight);
  kernels::weighted_mse_backward(ggrad_pred, 0.75, ggrouped, on_cuda(target), on_cuda(row_weight),
                                 on_cuda(col_weight));
  EXPECT_TRUE(bitwise_equal(ggrad_pred, grad_pred, "weighted_mse_backward"));

  // The GEMM epilogue over the rows: C = beta C with k = 0 (bitwise), and a bias
  // added after cuBLAS.
  Tensor scaled = random_tensor({rows, cols}, DType::f32, 62), gscaled = on_cuda(scaled);
  const Tensor no_columns = Tensor::empty({rows, 0}, DType::f32), no_rows = Tensor::empty({0, cols}, DType::f32);
  Tensor cpu_ws = workspace_for(Device::cpu, rows, cols, 0), gpu_ws = workspace_for(kCuda, rows, cols, 0);
  kernels::matmul(scaled, no_columns, false, no_rows, false, 0.5, cpu_ws);
  kernels::matmul(gscaled, Tensor::empty({rows, 0}, DType::f32, kCuda), false,
                  Tensor::empty({0, cols}, DType::f32, kCuda), false, 0.5, gpu_ws);
  EXPECT_TRUE(bitwise_equal(gscaled, scaled, "matmul k = 0"));
  Tensor W = random_tensor({cols, 2}, DType::f32, 63), bias = random_tensor({2}, DType::f32, 64);
  Tensor y = Tensor::empty({rows, 2}, DType::f32), gy = Tensor::empty({rows, 2}, DType::f32, kCuda);
  Tensor cpu_linear_ws = workspace_for(Device::cpu, rows, 2, cols);
  kernels::linear_forward(y, grouped, W, bias, cpu_linear_ws);
  kernels::linear_forward(gy, ggrouped, on_cuda(W), on_cuda(bias), gpu_ws);
  EXPECT_TRUE(close(gy, y, tolerance_for(DType::f32, cols + 1), "linear_forward with bias"));
}

// ---- the network, end to end ------------------------------------------------------------------------

// The latent width of the tiny model in the gpu tests (test_graphcast.cpp uses test::kTinyLatent).
constexpr int kTinyGpuLatent = 16;

struct TinyStep {
  double loss = 0;
  std::vector<Tensor> grads;  // cpu copies, in parameter order
};

TinyStep tiny_step(DType dtype, Device device, const std::vector<model::StagePlan>& plan) {
  test::TinyGraphCast run(test::tiny_graphcast_config(dtype, kTinyGpuLatent), device);
  Var loss = run.loss(plan);
  backward(loss);
  TinyStep step;
  step.loss = scalar_value(loss.value());
  for (Var& p : run.net->parameters())
    step.grads.push_back(p.grad().defined() ? p.grad().to(Device::cpu) : Tensor());
  release_compute_copies();  // the bf16 weight copies of this step
  return step;
}

TEST_F(CudaTest, TinyGraphCastGradientsMatchTheCpuAndRematIsBitwise) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    const TinyStep cpu = tiny_step(dtype, Device::cpu, model::plan_none(2));
    const TinyStep gpu = tiny_step(dtype, kCuda, model::plan_none(2));
    const TinyStep gpu_remat = tiny_step(dtype, kCuda, model::plan_all(2));
    // Errors of a few hundred roundings in the compute dtype, relative to the loss's own size.
    const auto tol = tolerance_for(dtype, 400);
    EXPECT_NEAR(gpu.loss, cpu.loss, tol.atol + tol.rtol * std::fabs(cpu.loss)) << dtype_name(dtype);
    ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
    for (size_t i = 0; i < cpu.grads.size(); ++i) {
      ASSERT_EQ(gpu.grads[i].defined(), cpu.grads[i].defined()) << i;
      if (!cpu.grads[i].defined()) continue;
      double scale = 0;  // gradients compare relative to the largest of their tensor
      for (double v : cpu.grads[i].to_doubles()) scale = std::max(scale, std::fabs(v));
      const test::Tolerance grad_tol{tol.atol * std::max(scale, 1e-30), tol.rtol};
      EXPECT_TRUE(close(gpu.grads[i], cpu.grads[i], grad_tol, "parameter " + std::to_string(i)));
      EXPECT_TRUE(bitwise_equal(gpu_remat.grads[i], gpu.grads[i], "remat all vs none, parameter " + std::to_string(i)));
    }
  }
}

// The dry run's promise on the gpu: a training step on meta standing for cuda
// (cuBLAS workspaces and the kernels' scratch included) allocates what the same
// step allocates on the gpu, to the byte, at the peak and after.
TEST_F(CudaTest, TinyGraphCastDryRunForCudaAllocatesWhatTheGpuStepAllocates) {
  struct MetaStandsForCuda {
    Device saved = meta_target();
    MetaStandsForCuda() { set_meta_target(kCuda); }
    ~MetaStandsForCuda() { set_meta_target(saved); }
  } meta_stands_for_cuda;
  for (DType dtype : {DType::f32, DType::bf16}) {
    std::vector<int64_t> figures[2];
    for (Device device : {kCuda, Device::meta}) {
      test::TinyGraphCast run(test::tiny_graphcast_config(dtype, kTinyGpuLatent), device);
      CachingAllocator& allocator = allocator_for(device);
      allocator.reset_peak();
      const AllocatorStats before = allocator.stats();
      backward(run.loss(model::plan_none(2)));
      release_compute_copies();
      const AllocatorStats after = allocator.stats();
      std::vector<int64_t>& f = figures[device == kCuda ? 0 : 1];
      f = {after.peak_allocated - before.allocated, after.allocated - before.allocated,
           after.num_allocs - before.num_allocs};
      for (size_t k = 0; k < static_cast<size_t>(kNumCategories); ++k)
        f.push_back(after.at_peak[k] - before.category_allocated[k]);
    }
    EXPECT_EQ(figures[0], figures[1]) << dtype_name(dtype)
                                      << ": {peak, final, allocations, at the peak by category} on cuda vs meta";
  }
}

}  // namespace
}  // namespace gc
