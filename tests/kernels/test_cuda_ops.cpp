// test_cuda_ops.cpp: the cuda device's checks that are not one op against the
// cpu (those are rows of the backend table, test_backend_ops.cpp): bad indices
// rejected with the cpu's message, what cuBLAS refuses, kernels over more items
// than one grid holds (the grid-stride passes real GraphCast sizes need), and a
// tiny GraphCast trained one step on both devices, whose dry run on meta standing
// for cuda allocates what the gpu step allocates.
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
#include "kernels/cuda/launch.h"
#include "kernels/cuda/linear.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/reduce.h"
#include "model/graphcast.h"
#include "tests/test_util.h"

#ifdef GC_CUDA_SIM
#include "sim_counters.h"
#endif

namespace gc {
namespace {

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

// ---- needs no device ---------------------------------------------------------------------------

TEST(CudaLinearWorkspace, IsTheFixedCublasWorkspaceWhateverTheProduct) {
  for (int64_t m : {1, 33, 100000})
    EXPECT_EQ(kernels::gemm_workspace_bytes(kCuda, m, 65, 31), cuda::kCublasWorkspaceBytes) << m;
  EXPECT_EQ(kernels::linear_workspace_bytes(kCuda, 3, 5, 7), cuda::kCublasWorkspaceBytes);
  EXPECT_EQ(cuda::kCublasWorkspaceBytes, size_t(32) << 20);
}

// ---- bad operands -------------------------------------------------------------------------------

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

Tensor workspace_for(Device device, int64_t m, int64_t n, int64_t k) {
  const size_t bytes = kernels::gemm_workspace_bytes(device, m, n, k);
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32, device);
}

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

// A bias rides in cuBLASLt's output pass and is added to the accumulator before
// C's one rounding, as on the cpu. Each row of x W is exactly 1 + u/2 (u: the
// 16-bit dtype's spacing at 1; a tie, so rounding it first gives 1) and the bias
// u/4: rounded once, 1 + 3u/4 is 1 + u; rounded twice (the product, then the sum)
// it stays 1. No product here took the fallback (cuBLASLt offered an algorithm
// for every kind gc asks: a bias of C's dtype, or f32 under a 16-bit C, which is
// rounded to C's dtype first, on the cpu too; u/4 is exact). Then a bias that the
// rounding changes: x W = 1 and an f32 bias u/2 + u/8192, rounded to u/2, so C = 1
// (a tie) on both devices.
TEST_F(CudaTest, TheBiasIsAddedBeforeTheOneRounding) {
  const uint64_t fallbacks = kernels::bias_epilogue_fallbacks();
  const int64_t rows = 64, in = 16, out = 8;
  for (DType dtype : {DType::bf16, DType::f16}) {
    const double u = dtype == DType::bf16 ? std::ldexp(1.0, -7) : std::ldexp(1.0, -10);
    std::vector<double> x(static_cast<size_t>(rows * in), 0.0), w(static_cast<size_t>(in * out), 0.0);
    for (int64_t r = 0; r < rows; ++r) x[static_cast<size_t>(r * in)] = x[static_cast<size_t>(r * in + 1)] = 1.0;
    for (int64_t j = 0; j < out; ++j) w[static_cast<size_t>(j)] = 1.0, w[static_cast<size_t>(out + j)] = u / 2;
    const Tensor tx = Tensor::from_doubles(x, {rows, in}, dtype), tw = Tensor::from_doubles(w, {in, out}, dtype);
    for (DType bias_dtype : {DType::f32, dtype}) {
      const std::string what = std::string(dtype_name(dtype)) + " with a " + dtype_name(bias_dtype) + " bias";
      const Tensor bias = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(out), u / 4), {out}, bias_dtype);
      Tensor y = Tensor::empty({rows, out}, dtype), gy = Tensor::empty({rows, out}, dtype, kCuda);
      Tensor cpu_ws = workspace_for(Device::cpu, rows, out, in), gpu_ws = workspace_for(kCuda, rows, out, in);
      kernels::linear_forward(y, tx, tw, bias, cpu_ws);
      kernels::linear_forward(gy, on_cuda(tx), on_cuda(tw), on_cuda(bias), gpu_ws);
      EXPECT_EQ(y.item(0), 1.0 + u) << what << " on the cpu";
      EXPECT_TRUE(bitwise_equal(gy, y, what));
    }
    std::vector<double> w1(static_cast<size_t>(in * out), 0.0);
    for (int64_t j = 0; j < out; ++j) w1[static_cast<size_t>(j)] = 1.0;
    const Tensor tw1 = Tensor::from_doubles(w1, {in, out}, dtype);
    const Tensor bias = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(out), u / 2 + u / 8192), {out},
                                             DType::f32);
    Tensor y = Tensor::empty({rows, out}, dtype), gy = Tensor::empty({rows, out}, dtype, kCuda);
    Tensor cpu_ws = workspace_for(Device::cpu, rows, out, in), gpu_ws = workspace_for(kCuda, rows, out, in);
    kernels::linear_forward(y, tx, tw1, bias, cpu_ws);
    kernels::linear_forward(gy, on_cuda(tx), on_cuda(tw1), on_cuda(bias), gpu_ws);
    EXPECT_EQ(y.item(0), 1.0) << dtype_name(dtype) << " with an f32 bias the rounding changes, on the cpu";
    EXPECT_TRUE(bitwise_equal(gy, y, std::string(dtype_name(dtype)) + " with an f32 bias the rounding changes"));
  }
  // f32 with an f32 bias through cuBLASLt too: within the f32 tolerance of the cpu.
  const Tensor x = random_tensor({rows, in}, DType::f32, 46), W = random_tensor({in, out}, DType::f32, 47),
               bias = random_tensor({out}, DType::f32, 48);
  Tensor y = Tensor::empty({rows, out}, DType::f32), gy = Tensor::empty({rows, out}, DType::f32, kCuda);
  Tensor cpu_ws = workspace_for(Device::cpu, rows, out, in), gpu_ws = workspace_for(kCuda, rows, out, in);
  kernels::linear_forward(y, x, W, bias, cpu_ws);
  kernels::linear_forward(gy, on_cuda(x), on_cuda(W), on_cuda(bias), gpu_ws);
  EXPECT_TRUE(close(gy, y, tolerance_for(DType::f32, in + 1), "f32 with an f32 bias"));
  EXPECT_EQ(kernels::bias_epilogue_fallbacks(), fallbacks) << "products with a bias that cuBLASLt took no algorithm for";
}

// The bias gradient of an f32 weight product: the product, then sum_rows (its
// partials in the product's workspace): grad_y's rows summed into grad_b,
// accumulated, within the f32 tolerance of the cpu's sum_rows.
TEST_F(CudaTest, TheBiasGradientFollowsTheWeightProduct) {
  const int64_t rows = 300, in = 24, out = 40;
  for (DType dtype : {DType::bf16, DType::f32}) {
    const Tensor x = random_tensor({rows, in}, dtype, 49), grad_y = random_tensor({rows, out}, dtype, 50);
    const Tensor init_w = random_tensor({in, out}, DType::f32, 51), init_b = random_tensor({out}, DType::f32, 52);
    Tensor grad_w = init_w.clone(), grad_b = init_b.clone();
    Tensor ggrad_w = on_cuda(init_w), ggrad_b = on_cuda(init_b);
    Tensor cpu_ws = workspace_for(Device::cpu, in, out, rows), gpu_ws = workspace_for(kCuda, in, out, rows);
    kernels::linear_backward_weight_and_bias(grad_w, grad_b, x, grad_y, cpu_ws);
    kernels::linear_backward_weight_and_bias(ggrad_w, ggrad_b, on_cuda(x), on_cuda(grad_y), gpu_ws);
    const std::string what = dtype_name(dtype);
    EXPECT_TRUE(close(ggrad_w, grad_w, tolerance_for(DType::f32, rows + 1), what + " grad_W"));
    EXPECT_TRUE(close(ggrad_b, grad_b, tolerance_for(DType::f32, rows + 1), what + " grad_b"));
    // The cpu's bias gradient is sum_rows', bit for bit.
    Tensor summed = init_b.clone();
    kernels::sum_rows(summed, grad_y, true);
    EXPECT_TRUE(bitwise_equal(grad_b, summed, what + " cpu grad_b"));
  }
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
  // grad_x = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, cancels where its terms do (rows of
  // three near-equal values have a large rstd): each side's rounding is relative to the size of the
  // terms, rstd (|g| + mean|g| + |xhat| mean|g xhat|), not to the result, so the bound is too.
  std::vector<double> term_scale(static_cast<size_t>(rows * cols));
  {
    const std::vector<double> xs = grouped.to_doubles(), dys = grad_rows.to_doubles(), gs = gamma.to_doubles(),
                              ms = mean.to_doubles(), rs = rstd.to_doubles();
    for (int64_t r = 0; r < rows; ++r) {
      double abs_g = 0, abs_g_xhat = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = static_cast<size_t>(r * cols + c);
        const double g = dys[i] * gs[static_cast<size_t>(c)], xhat = (xs[i] - ms[static_cast<size_t>(r)]) * rs[static_cast<size_t>(r)];
        abs_g += std::fabs(g) / cols;
        abs_g_xhat += std::fabs(g * xhat) / cols;
      }
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = static_cast<size_t>(r * cols + c);
        const double g = dys[i] * gs[static_cast<size_t>(c)], xhat = (xs[i] - ms[static_cast<size_t>(r)]) * rs[static_cast<size_t>(r)];
        term_scale[i] = rs[static_cast<size_t>(r)] * (std::fabs(g) + abs_g + std::fabs(xhat) * abs_g_xhat);
      }
    }
  }
  EXPECT_TRUE(all_close_sum(ggrad_in.to_doubles(), grad_in.to_doubles(), term_scale,
                            tolerance_for(DType::f32, 4.0 * cols), "layernorm_backward grad_x"));

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

// The elementwise kernels and the same-dtype row kernels (gather, fused edge sum,
// row add) move 16-byte packs when every operand is 16-byte aligned, one element
// at a time otherwise: the same values through both paths (a view one element in
// is never aligned) give the same bits, over more packs than one grid holds and
// with a tail; add and the row kernels (rows of whole packs and of 3 elements)
// also equal the cpu's.
TEST_F(CudaTest, SixteenByteAccessesGiveTheBitsOfOneElementAtATime) {
#if defined(GC_CUDA_SIM) && !defined(GC_CUDA_MAX_BLOCKS)
  GTEST_SKIP() << "a full grid is millions of simulated threads: lower the cap with GC_CUDA_MAX_BLOCKS";
#endif
  for (DType dtype : {DType::bf16, DType::f16, DType::f32, DType::f64}) {
    const std::string name = dtype_name(dtype);
    const int64_t n = static_cast<int64_t>(16 / dtype_size(dtype)) * cuda::kMaxGridThreads + 13;  // packs > one grid
    const Tensor a = random_tensor({n}, dtype, 61), b = random_tensor({n}, dtype, 62);
    const Tensor ga = on_cuda(a), gb = on_cuda(b);
    // The same values one element into a longer buffer: not 16-byte aligned.
    auto unaligned = [&](const Tensor& t) {
      Tensor view = Tensor::empty({n + 1}, dtype, kCuda).slice_rows(1, n);
      view.copy_from(t);
      return view;
    };
    const Tensor ua = unaligned(a), ub = unaligned(b);
    auto both = [&](const char* op, auto run) {
      Tensor packed = Tensor::empty({n}, dtype, kCuda), single = unaligned(Tensor::zeros({n}, dtype));
      run(packed, ga, gb);
      run(single, ua, ub);
      EXPECT_TRUE(bitwise_equal(packed, single.clone(), std::string(op) + " " + name));
      return packed;
    };
    const Tensor sum = both("add_forward", [](Tensor& o, const Tensor& x, const Tensor& y) { kernels::add_forward(o, x, y); });
    Tensor cpu_sum = Tensor::empty({n}, dtype);
    kernels::add_forward(cpu_sum, a, b);
    EXPECT_TRUE(bitwise_equal(sum, cpu_sum, "add_forward against the cpu " + name));
    both("mul_forward", [](Tensor& o, const Tensor& x, const Tensor& y) { kernels::mul_forward(o, x, y); });
    both("silu_forward", [](Tensor& o, const Tensor& x, const Tensor&) { kernels::silu_forward(o, x); });
    both("silu_backward", [](Tensor& o, const Tensor& x, const Tensor& y) { kernels::silu_backward(o, x, y); });
    both("accumulate", [](Tensor& o, const Tensor& x, const Tensor& y) {
      o.copy_from(x);
      kernels::accumulate(o, y);
    });

    // Rows of 48 bytes (whole packs) and of 3 elements (not), gathered from an aligned table.
    for (int64_t cols : {int64_t(48 / dtype_size(dtype)), int64_t(3)}) {
      const int64_t nodes = 101, rows = cuda::kMaxGridWarps + 37;
      std::vector<int32_t> index(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) index[static_cast<size_t>(r)] = static_cast<int32_t>((r * 7919) % nodes);
      const Tensor x = random_tensor({nodes, cols}, dtype, 63);
      Tensor out = Tensor::empty({rows, cols}, dtype), gout = Tensor::empty({rows, cols}, dtype, kCuda);
      kernels::gather_rows_forward(out, x, i32_tensor(index));
      kernels::gather_rows_forward(gout, on_cuda(x), i32_tensor(index, kCuda));
      EXPECT_TRUE(bitwise_equal(gout, out, "gather_rows_forward " + name + " x " + std::to_string(cols)));
      // The fused edge sum over the same rows, and the row add into the listed rows.
      const Tensor r = random_tensor({nodes, cols}, dtype, 64);
      std::vector<int32_t> reversed(index.rbegin(), index.rend());
      Tensor summed = Tensor::empty({rows, cols}, dtype), gsummed = Tensor::empty({rows, cols}, dtype, kCuda);
      kernels::add_gathered_rows(summed, out, x, i32_tensor(index), r, i32_tensor(reversed));
      kernels::add_gathered_rows(gsummed, gout, on_cuda(x), i32_tensor(index, kCuda), on_cuda(r),
                                 i32_tensor(reversed, kCuda));
      EXPECT_TRUE(bitwise_equal(gsummed, summed, "add_gathered_rows " + name + " x " + std::to_string(cols)));
      std::vector<int32_t> listed;
      for (int32_t k = 0; k < static_cast<int32_t>(nodes); k += 2) listed.push_back(k);
      const Tensor part = random_tensor({static_cast<int64_t>(listed.size()), cols}, dtype, 65);
      Tensor acc = x.clone(), gacc = on_cuda(x);
      kernels::index_add_rows(acc, part, i32_tensor(listed));
      kernels::index_add_rows(gacc, on_cuda(part), i32_tensor(listed, kCuda));
      EXPECT_TRUE(bitwise_equal(gacc, acc, "index_add_rows " + name + " x " + std::to_string(cols)));
    }
  }
}

// Launches of the 16-byte variants of the kernels below (cudasim names every
// launch; on a GPU -1: not counted).
int64_t packed_launches() {
#ifdef GC_CUDA_SIM
  return static_cast<int64_t>(gcsim::kernel_launches_named("<kSame") + gcsim::kernel_launches_named("<true") +
                              gcsim::kernel_launches_named("cast_pack_kernel"));
#else
  return -1;
#endif
}

// Runs `run` and says whether it launched a 16-byte variant (cudasim), or -1 (a GPU).
template <class Run>
int64_t packed_launches_of(Run&& run) {
  const int64_t before = packed_launches();
  run();
  return before < 0 ? -1 : packed_launches() - before;
}

// The same values in a tensor that starts one element into its storage: never
// 16-byte aligned, so the kernels take their one-element path.
Tensor unaligned_copy(const Tensor& t) {
  const int64_t n = t.numel();
  Tensor view = Tensor::empty({n + 1}, t.dtype(), kCuda).slice_rows(1, n).reshape(t.shape());
  view.copy_from(t);
  return view;
}

// Cast, the group sums (segment sum, the gather's backward), the segment sum's
// backward and LayerNorm's fused kernels move 16-byte packs when their rows are
// whole packs and every tensor is aligned: the same values one element into
// their storage take the one-element path, with the same slots of each lane, so
// the bits are the same; cast and the group sums are also the cpu's. Rows of
// 48 bytes (whole packs), of 3 elements (not), of 512 columns (one lane's whole
// register row) and of 520 (two passes of the group sums; LayerNorm's wider
// kernels); a group of 1,100 rows takes the split path.
TEST_F(CudaTest, SixteenBytePacksOfCastGroupSumsAndLayerNormGiveTheOneElementBits) {
#if defined(GC_CUDA_SIM) && !defined(GC_CUDA_MAX_BLOCKS)
  GTEST_SKIP() << "a full grid is millions of simulated threads: lower the cap with GC_CUDA_MAX_BLOCKS";
#endif
  const std::vector<DType> dtypes{DType::bf16, DType::f16, DType::f32, DType::f64};
  for (DType from : dtypes) {
    const int64_t n = 8 * cuda::kMaxGridThreads + 13;  // packs beyond one grid, and a tail
    const Tensor x = random_tensor({n}, from, 71);
    for (DType to : dtypes) {
      const std::string what = std::string("cast ") + dtype_name(from) + " -> " + dtype_name(to);
      Tensor out = Tensor::empty({n}, to), packed = Tensor::empty({n}, to, kCuda);
      Tensor single = unaligned_copy(Tensor::zeros({n}, to));
      kernels::cast(out, x);
      const Tensor gx = on_cuda(x), ux = unaligned_copy(x);
      const int64_t packed_runs = packed_launches_of([&] { kernels::cast(packed, gx); });
      const int64_t single_runs = packed_launches_of([&] { kernels::cast(single, ux); });
      if (packed_runs >= 0) {  // cudasim: the aligned cast took the packs, the other did not
        EXPECT_EQ(packed_runs, 1) << what;
        EXPECT_EQ(single_runs, 0) << what;
      }
      EXPECT_TRUE(bitwise_equal(packed, out, what));
      EXPECT_TRUE(bitwise_equal(single.clone(), out, what + ", unaligned"));
    }
  }

  // Groups: node k receives k % 4 edges, and node 7 a long group of 1,100.
  const int64_t nodes = 23;
  std::vector<int32_t> offsets{0};
  for (int64_t k = 0; k < nodes; ++k) offsets.push_back(offsets.back() + static_cast<int32_t>(k == 7 ? 1100 : k % 4));
  const int64_t edges = offsets.back();
  std::vector<int32_t> reversed(static_cast<size_t>(edges));  // a CSR order that is not the identity
  for (int64_t e = 0; e < edges; ++e) reversed[static_cast<size_t>(e)] = static_cast<int32_t>(edges - 1 - e);
  const Tensor csr_offsets = i32_tensor(offsets), gcsr_offsets = on_cuda(csr_offsets);
  const Tensor order = i32_tensor(reversed), gorder = on_cuda(order);
  for (DType dtype : dtypes) {
    for (int64_t cols : {int64_t(48 / dtype_size(dtype)), int64_t(3), int64_t(512), int64_t(520)}) {
      const std::string what = std::string(dtype_name(dtype)) + " x " + std::to_string(cols);
      const bool whole_packs = cols * static_cast<int64_t>(dtype_size(dtype)) % 16 == 0;
      int64_t packed_runs = 0, single_runs = 0;  // 16-byte launches of the aligned and the unaligned runs
      auto aligned_run = [&](auto run) {
        const int64_t k = packed_launches_of(run);
        packed_runs = k < 0 ? -1 : packed_runs + k;
      };
      auto unaligned_run = [&](auto run) {
        const int64_t k = packed_launches_of(run);
        single_runs = k < 0 ? -1 : single_runs + k;
      };
      const Tensor edge_rows = random_tensor({edges, cols}, dtype, 72), node_rows = random_tensor({nodes, cols}, dtype, 73);
      const Tensor gedge_rows = on_cuda(edge_rows), uedge_rows = unaligned_copy(edge_rows);
      for (bool accumulate : {false, true}) {
        Tensor sums = node_rows.clone(), gsums = on_cuda(node_rows), usums = unaligned_copy(node_rows);
        kernels::segment_sum_forward(sums, edge_rows, csr_offsets, accumulate);
        aligned_run([&] { kernels::segment_sum_forward(gsums, gedge_rows, gcsr_offsets, accumulate); });
        unaligned_run([&] { kernels::segment_sum_forward(usums, uedge_rows, gcsr_offsets, accumulate); });
        const std::string sum_what = "segment_sum_forward " + what + (accumulate ? " +=" : "");
        EXPECT_TRUE(bitwise_equal(gsums, sums, sum_what));
        EXPECT_TRUE(bitwise_equal(usums.clone(), sums, sum_what + ", unaligned"));
      }
      Tensor grouped = Tensor::empty({nodes, cols}, dtype), ggrouped = Tensor::empty({nodes, cols}, dtype, kCuda);
      Tensor ugrouped = unaligned_copy(Tensor::zeros({nodes, cols}, dtype));
      kernels::gather_rows_backward(grouped, edge_rows, order, csr_offsets);
      aligned_run([&] { kernels::gather_rows_backward(ggrouped, gedge_rows, gorder, gcsr_offsets); });
      unaligned_run([&] { kernels::gather_rows_backward(ugrouped, uedge_rows, gorder, gcsr_offsets); });
      EXPECT_TRUE(bitwise_equal(ggrouped, grouped, "gather_rows_backward " + what));
      EXPECT_TRUE(bitwise_equal(ugrouped.clone(), grouped, "gather_rows_backward " + what + ", unaligned"));
      for (bool with_addend : {false, true}) {
        const std::string spread_what = "segment_sum_backward " + what + (with_addend ? " + addend" : "");
        Tensor spread = Tensor::empty({edges, cols}, dtype), gspread = Tensor::empty({edges, cols}, dtype, kCuda);
        Tensor uspread = unaligned_copy(Tensor::zeros({edges, cols}, dtype));
        const Tensor addend = random_tensor({edges, cols}, dtype, 74);
        kernels::segment_sum_backward(spread, node_rows, csr_offsets, with_addend ? addend : Tensor());
        const Tensor gnode_rows = on_cuda(node_rows), unode_rows = unaligned_copy(node_rows);
        const Tensor gaddend = with_addend ? on_cuda(addend) : Tensor();
        const Tensor uaddend = with_addend ? unaligned_copy(addend) : Tensor();
        aligned_run([&] { kernels::segment_sum_backward(gspread, gnode_rows, gcsr_offsets, gaddend); });
        unaligned_run([&] { kernels::segment_sum_backward(uspread, unode_rows, gcsr_offsets, uaddend); });
        EXPECT_TRUE(bitwise_equal(gspread, spread, spread_what));
        EXPECT_TRUE(bitwise_equal(uspread.clone(), spread, spread_what + ", unaligned"));
      }

      // LayerNorm over the edge rows: aligned and unaligned runs on the gpu, bitwise alike.
      const DType param = dtype == DType::f64 ? DType::f64 : DType::f32;
      const Tensor gamma = on_cuda(random_tensor({cols}, param, 75)), beta = on_cuda(random_tensor({cols}, param, 76));
      const Tensor grad_rows = random_tensor({edges, cols}, dtype, 77);
      struct Run {
        Tensor out, mean, rstd, grad_x, grad_gamma, grad_beta;
      };
      auto layernorm = [&](const Tensor& x, const Tensor& dy, bool aligned) {
        Run run;
        run.out = aligned ? Tensor::empty({edges, cols}, dtype, kCuda) : unaligned_copy(Tensor::zeros({edges, cols}, dtype));
        run.grad_x = aligned ? Tensor::empty({edges, cols}, dtype, kCuda)
                             : unaligned_copy(Tensor::zeros({edges, cols}, dtype));
        run.mean = Tensor::empty({edges}, param, kCuda);
        run.rstd = Tensor::empty({edges}, param, kCuda);
        run.grad_gamma = Tensor::zeros({cols}, param, kCuda);
        run.grad_beta = Tensor::zeros({cols}, param, kCuda);
        auto both = [&] {
          kernels::layernorm_forward(run.out, run.mean, run.rstd, x, gamma, beta, 1e-5);
          kernels::layernorm_backward(run.grad_x, run.grad_gamma, run.grad_beta, dy, x, run.mean, run.rstd, gamma);
        };
        if (aligned)
          aligned_run(both);
        else
          unaligned_run(both);
        return run;
      };
      const Tensor gdy = on_cuda(grad_rows), udy = unaligned_copy(grad_rows);
      const Run packed = layernorm(gedge_rows, gdy, true);
      const Run single = layernorm(uedge_rows, udy, false);
      if (packed_runs >= 0) {  // cudasim: whole packs took the 16-byte kernels; the unaligned runs never did
        // Each of the 5 group-sum calls, plus LayerNorm's forward and backward where a row fits one lane's registers.
        EXPECT_EQ(packed_runs, whole_packs ? 5 + (cols <= 512 ? 2 : 0) : 0) << what;
        EXPECT_EQ(single_runs, 0) << what;
      }
      EXPECT_TRUE(bitwise_equal(single.out.clone(), packed.out, "layernorm_forward " + what));
      EXPECT_TRUE(bitwise_equal(single.mean, packed.mean, "layernorm_forward mean " + what));
      EXPECT_TRUE(bitwise_equal(single.rstd, packed.rstd, "layernorm_forward rstd " + what));
      EXPECT_TRUE(bitwise_equal(single.grad_x.clone(), packed.grad_x, "layernorm_backward " + what));
      EXPECT_TRUE(bitwise_equal(single.grad_gamma, packed.grad_gamma, "layernorm_backward gamma " + what));
      EXPECT_TRUE(bitwise_equal(single.grad_beta, packed.grad_beta, "layernorm_backward beta " + what));
    }
  }
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
