// test_layernorm.cpp: LayerNorm forward against an f64 reference, backward against
// central finite differences in f64, the 16-bit storage types against f32 on the
// same stored values, bitwise independence of the thread count, meta runs, and the
// cuda backward's parameter gradients bitwise against the cpu's.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/layernorm.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using test::all_close;
using test::random_tensor;
using test::tolerance_for;

struct LayerNormResult {
  Tensor out, mean, rstd;
};

LayerNormResult run_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const int64_t rows = x.rows();
  LayerNormResult r{Tensor::empty(x.shape(), x.dtype(), x.device()),
                    Tensor::empty({rows}, accumulation_dtype(x.dtype()), x.device()),
                    Tensor::empty({rows}, accumulation_dtype(x.dtype()), x.device())};
  kernels::layernorm_forward(r.out, r.mean, r.rstd, x, gamma, beta, eps);
  return r;
}

struct LayerNormGrads {
  Tensor grad_x, grad_gamma, grad_beta;
};

LayerNormGrads run_backward(const Tensor& grad_out, const Tensor& x, const LayerNormResult& saved,
                            const Tensor& gamma) {
  const DType sd = accumulation_dtype(x.dtype());
  LayerNormGrads g{Tensor::empty(x.shape(), x.dtype(), x.device()),
                   Tensor::zeros({gamma.numel()}, sd, x.device()), Tensor::zeros({gamma.numel()}, sd, x.device())};
  kernels::layernorm_backward(g.grad_x, g.grad_gamma, g.grad_beta, grad_out, x, saved.mean, saved.rstd, gamma);
  return g;
}

// f64 reference on the stored values: out [R, C], mean [R], rstd [R].
void reference_forward(const std::vector<double>& x, const std::vector<double>& gamma,
                       const std::vector<double>& beta, int64_t rows, int64_t cols, double eps,
                       std::vector<double>& out, std::vector<double>& mean, std::vector<double>& rstd) {
  out.assign(static_cast<size_t>(rows * cols), 0.0);
  mean.assign(static_cast<size_t>(rows), 0.0);
  rstd.assign(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[static_cast<size_t>(r * cols)];
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const double m = sum / static_cast<double>(cols);
    double squares = 0;
    for (int64_t c = 0; c < cols; ++c) squares += (xr[c] - m) * (xr[c] - m);
    const double s = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c)
      out[static_cast<size_t>(r * cols + c)] = (xr[c] - m) * s * gamma[static_cast<size_t>(c)] + beta[static_cast<size_t>(c)];
    mean[static_cast<size_t>(r)] = m;
    rstd[static_cast<size_t>(r)] = s;
  }
}

// The same stored values in another dtype (exact when widening).
Tensor as_dtype(const Tensor& t, DType dtype) { return Tensor::from_doubles(t.to_doubles(), t.shape(), dtype); }

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

struct Case {
  DType dtype;
  int64_t rows, cols;
  double eps;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(dtype_name(c.dtype)) + "_" + std::to_string(c.rows) + "x" + std::to_string(c.cols) + "_eps" +
         (c.eps >= 0.01 ? "Large" : "Small");
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 31}, {33, 65}, {31, 33}, {600, 33}})
      for (double eps : {1e-5, 0.5}) cases.push_back({d, rows, cols, eps});
  return cases;
}

class LayerNorm : public testing::TestWithParam<Case> {};

TEST_P(LayerNorm, ForwardMatchesReference) {
  const Case p = GetParam();
  // Shifted inputs: a non-zero row mean is the usual case after a residual add.
  Tensor x = Tensor::from_doubles(test::random_values(static_cast<size_t>(p.rows * p.cols), 11, 2.0),
                                  {p.rows, p.cols}, p.dtype);
  Tensor gamma = random_tensor({p.cols}, p.dtype, 12, 1.5);
  Tensor beta = random_tensor({p.cols}, p.dtype, 13, 0.5);
  LayerNormResult got = run_forward(x, gamma, beta, p.eps);

  if (p.dtype == DType::f32 || p.dtype == DType::f64) {
    std::vector<double> out, mean, rstd;
    reference_forward(x.to_doubles(), gamma.to_doubles(), beta.to_doubles(), p.rows, p.cols, p.eps, out, mean, rstd);
    const auto tol = tolerance_for(p.dtype, static_cast<double>(p.cols));
    EXPECT_TRUE(all_close(got.out.to_doubles(), out, tol, "out"));
    EXPECT_TRUE(all_close(got.mean.to_doubles(), mean, tol, "mean"));
    EXPECT_TRUE(all_close(got.rstd.to_doubles(), rstd, tol, "rstd"));
  } else {
    // 16-bit storage against the f32 kernel on the same stored values.
    LayerNormResult ref = run_forward(as_dtype(x, DType::f32), as_dtype(gamma, DType::f32),
                                      as_dtype(beta, DType::f32), p.eps);
    EXPECT_TRUE(all_close(got.out.to_doubles(), ref.out.to_doubles(), tolerance_for(p.dtype, p.cols), "out"));
    const auto stats_tol = tolerance_for(DType::f32, static_cast<double>(p.cols));
    EXPECT_TRUE(all_close(got.mean.to_doubles(), ref.mean.to_doubles(), stats_tol, "mean"));
    EXPECT_TRUE(all_close(got.rstd.to_doubles(), ref.rstd.to_doubles(), stats_tol, "rstd"));
  }
}

// f64: every input with a gradient against central finite differences of
// sum(out * w); 16-bit and f32 against the f64 (resp. f32) kernel on the same values.
TEST_P(LayerNorm, BackwardMatches) {
  const Case p = GetParam();
  Tensor x = random_tensor({p.rows, p.cols}, p.dtype, 21, 1.0);
  Tensor gamma = random_tensor({p.cols}, p.dtype, 22, 1.5);
  Tensor beta = random_tensor({p.cols}, p.dtype, 23, 0.5);
  Tensor grad_out = random_tensor({p.rows, p.cols}, p.dtype, 24, 1.0);
  LayerNormResult saved = run_forward(x, gamma, beta, p.eps);
  LayerNormGrads got = run_backward(grad_out, x, saved, gamma);

  if (p.dtype == DType::f64) {
    const std::vector<double> weights = grad_out.to_doubles();
    auto loss = [&] {
      const std::vector<double> out = run_forward(x, gamma, beta, p.eps).out.to_doubles();
      double sum = 0;
      for (size_t i = 0; i < out.size(); ++i) sum += out[i] * weights[i];
      return sum;
    };
    EXPECT_TRUE(test::gradient_matches(got.grad_x, x, loss, "grad_x"));
    EXPECT_TRUE(test::gradient_matches(got.grad_gamma, gamma, loss, "grad_gamma"));
    EXPECT_TRUE(test::gradient_matches(got.grad_beta, beta, loss, "grad_beta"));
    return;
  }
  const DType wide = p.dtype == DType::f32 ? DType::f64 : DType::f32;
  Tensor x_wide = as_dtype(x, wide), gamma_wide = as_dtype(gamma, wide);
  LayerNormResult saved_wide = run_forward(x_wide, gamma_wide, as_dtype(beta, wide), p.eps);
  LayerNormGrads ref = run_backward(as_dtype(grad_out, wide), x_wide, saved_wide, gamma_wide);
  EXPECT_TRUE(all_close(got.grad_x.to_doubles(), ref.grad_x.to_doubles(), tolerance_for(p.dtype, p.cols), "grad_x"));
  // Parameter gradients are f32 for every non-f64 x: a column sum over the rows.
  const auto param_tol = tolerance_for(DType::f32, static_cast<double>(p.rows));
  EXPECT_TRUE(all_close(got.grad_gamma.to_doubles(), ref.grad_gamma.to_doubles(), param_tol, "grad_gamma"));
  EXPECT_TRUE(all_close(got.grad_beta.to_doubles(), ref.grad_beta.to_doubles(), param_tol, "grad_beta"));
}

INSTANTIATE_TEST_SUITE_P(Sizes, LayerNorm, testing::ValuesIn(all_cases()), case_name);

TEST(LayerNormEps, ChangesTheResultAsTheReferenceDoes) {
  Tensor x = random_tensor({5, 17}, DType::f64, 31, 0.1);  // variance ~ 0.003: eps matters
  Tensor gamma = random_tensor({17}, DType::f64, 32);
  Tensor beta = random_tensor({17}, DType::f64, 33);
  std::vector<double> out_small, out_large, mean, rstd;
  reference_forward(x.to_doubles(), gamma.to_doubles(), beta.to_doubles(), 5, 17, 1e-5, out_small, mean, rstd);
  reference_forward(x.to_doubles(), gamma.to_doubles(), beta.to_doubles(), 5, 17, 1e-1, out_large, mean, rstd);
  const auto tol = tolerance_for(DType::f64, 17);
  EXPECT_TRUE(all_close(run_forward(x, gamma, beta, 1e-5).out.to_doubles(), out_small, tol, "eps 1e-5"));
  EXPECT_TRUE(all_close(run_forward(x, gamma, beta, 1e-1).out.to_doubles(), out_large, tol, "eps 1e-1"));
  EXPECT_FALSE(all_close(out_small, out_large, tol, "the two references"));
}

// A row mean of 1000 next to unit spread: a one-pass E[x^2] - E[x]^2 in f32 would
// lose the variance entirely; the two-pass statistics keep rstd to f32 accuracy.
TEST(LayerNormStats, LargeMeanKeepsVariance) {
  std::vector<double> values = test::random_values(3 * 65, 41, 1.0);
  for (double& v : values) v += 1000.0;
  Tensor x = Tensor::from_doubles(values, {3, 65}, DType::f32);
  Tensor gamma = random_tensor({65}, DType::f32, 42), beta = random_tensor({65}, DType::f32, 43);
  std::vector<double> out, mean, rstd;
  reference_forward(x.to_doubles(), gamma.to_doubles(), beta.to_doubles(), 3, 65, 1e-5, out, mean, rstd);
  LayerNormResult got = run_forward(x, gamma, beta, 1e-5);
  EXPECT_TRUE(all_close(got.rstd.to_doubles(), rstd, tolerance_for(DType::f32, 65), "rstd"));
  EXPECT_TRUE(all_close(got.mean.to_doubles(), mean, tolerance_for(DType::f32, 65), "mean"));
}

TEST(LayerNormMixed, Bf16ActivationsWithF32Parameters) {
  Tensor x = random_tensor({33, 65}, DType::bf16, 51);
  Tensor gamma = random_tensor({65}, DType::f32, 52), beta = random_tensor({65}, DType::f32, 53);
  Tensor grad_out = random_tensor({33, 65}, DType::bf16, 54);
  LayerNormResult got = run_forward(x, gamma, beta, 1e-5);
  LayerNormGrads got_grads = run_backward(grad_out, x, got, gamma);
  Tensor x32 = as_dtype(x, DType::f32);
  LayerNormResult ref = run_forward(x32, gamma, beta, 1e-5);
  LayerNormGrads ref_grads = run_backward(as_dtype(grad_out, DType::f32), x32, ref, gamma);
  EXPECT_TRUE(all_close(got.out.to_doubles(), ref.out.to_doubles(), tolerance_for(DType::bf16, 65), "out"));
  EXPECT_TRUE(
      all_close(got_grads.grad_x.to_doubles(), ref_grads.grad_x.to_doubles(), tolerance_for(DType::bf16, 65), "grad_x"));
  EXPECT_TRUE(all_close(got_grads.grad_gamma.to_doubles(), ref_grads.grad_gamma.to_doubles(),
                        tolerance_for(DType::f32, 33), "grad_gamma"));
}

// grad_x is assigned, the parameter gradients accumulate: a second backward
// leaves grad_x unchanged and doubles the parameter gradients' increments.
TEST(LayerNormBackward, CalledTwiceAccumulatesParameterGradients) {
  Tensor x = random_tensor({31, 33}, DType::f32, 61), grad_out = random_tensor({31, 33}, DType::f32, 62);
  Tensor gamma = random_tensor({33}, DType::f32, 63), beta = random_tensor({33}, DType::f32, 64);
  LayerNormResult saved = run_forward(x, gamma, beta, 1e-5);
  LayerNormGrads once = run_backward(grad_out, x, saved, gamma);

  Tensor grad_x = random_tensor({31, 33}, DType::f32, 65);  // stale contents must be overwritten
  Tensor initial = random_tensor({33}, DType::f32, 66);
  Tensor grad_gamma = initial.clone(), grad_beta = initial.clone();
  for (int call = 0; call < 2; ++call)
    kernels::layernorm_backward(grad_x, grad_gamma, grad_beta, grad_out, x, saved.mean, saved.rstd, gamma);
  EXPECT_TRUE(bitwise_equal(grad_x, once.grad_x));
  const std::vector<double> start = initial.to_doubles(), gg = once.grad_gamma.to_doubles(),
                            gb = once.grad_beta.to_doubles();
  std::vector<double> want_gamma(33), want_beta(33);
  for (size_t c = 0; c < 33; ++c) {
    want_gamma[c] = start[c] + 2 * gg[c];
    want_beta[c] = start[c] + 2 * gb[c];
  }
  EXPECT_TRUE(all_close(grad_gamma.to_doubles(), want_gamma, tolerance_for(DType::f32, 2), "grad_gamma"));
  EXPECT_TRUE(all_close(grad_beta.to_doubles(), want_beta, tolerance_for(DType::f32, 2), "grad_beta"));
}

TEST(LayerNormDeterminism, BitwiseAcrossThreadCounts) {
  const int saved_threads = omp_get_max_threads();
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor x = random_tensor({777, 512}, dtype, 71), grad_out = random_tensor({777, 512}, dtype, 72);
    Tensor gamma = random_tensor({512}, DType::f32, 73), beta = random_tensor({512}, DType::f32, 74);
    std::vector<LayerNormResult> results;
    std::vector<LayerNormGrads> grads;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      results.push_back(run_forward(x, gamma, beta, 1e-5));
      grads.push_back(run_backward(grad_out, x, results.back(), gamma));
    }
    omp_set_num_threads(saved_threads);
    for (size_t i = 1; i < results.size(); ++i) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " run " + std::to_string(i));
      EXPECT_TRUE(bitwise_equal(results[i].out, results[0].out));
      EXPECT_TRUE(bitwise_equal(results[i].mean, results[0].mean));
      EXPECT_TRUE(bitwise_equal(results[i].rstd, results[0].rstd));
      EXPECT_TRUE(bitwise_equal(grads[i].grad_x, grads[0].grad_x));
      EXPECT_TRUE(bitwise_equal(grads[i].grad_gamma, grads[0].grad_gamma));
      EXPECT_TRUE(bitwise_equal(grads[i].grad_beta, grads[0].grad_beta));
    }
  }
}

// x [3, 5, 7] normalizes each of its 15 rows of 7, exactly as x viewed as [15, 7].
TEST(LayerNormShapes, LeadingDimsActAsRows) {
  Tensor x = random_tensor({3, 5, 7}, DType::f32, 101), grad_out = random_tensor({3, 5, 7}, DType::f32, 102);
  Tensor gamma = random_tensor({7}, DType::f32, 103), beta = random_tensor({7}, DType::f32, 104);
  LayerNormResult got{Tensor::empty({3, 5, 7}, DType::f32), Tensor::empty({3, 5}, DType::f32),
                      Tensor::empty({3, 5}, DType::f32)};
  kernels::layernorm_forward(got.out, got.mean, got.rstd, x, gamma, beta, 1e-5);
  LayerNormGrads grads = run_backward(grad_out, x, got, gamma);
  LayerNormResult flat = run_forward(x.reshape({15, 7}), gamma, beta, 1e-5);
  LayerNormGrads flat_grads = run_backward(grad_out.reshape({15, 7}), x.reshape({15, 7}), flat, gamma);
  EXPECT_TRUE(bitwise_equal(got.out, flat.out));
  EXPECT_TRUE(bitwise_equal(got.rstd, flat.rstd));
  EXPECT_TRUE(bitwise_equal(grads.grad_x, flat_grads.grad_x));
  EXPECT_TRUE(bitwise_equal(grads.grad_gamma, flat_grads.grad_gamma));
}

TEST(LayerNormMeta, RunsWithoutDataAndAllocatesNothing) {
  const Device meta = Device::meta;
  Tensor x = Tensor::empty({4096, 512}, DType::bf16, meta), grad_out = Tensor::empty({4096, 512}, DType::bf16, meta);
  Tensor gamma = Tensor::empty({512}, DType::f32, meta), beta = Tensor::empty({512}, DType::f32, meta);
  LayerNormResult saved{Tensor::empty({4096, 512}, DType::bf16, meta), Tensor::empty({4096}, DType::f32, meta),
                        Tensor::empty({4096}, DType::f32, meta)};
  LayerNormGrads grads{Tensor::empty({4096, 512}, DType::bf16, meta), Tensor::empty({512}, DType::f32, meta),
                       Tensor::empty({512}, DType::f32, meta)};
  const int64_t allocs_before = allocator_for(meta).stats().num_allocs;
  EXPECT_NO_THROW(kernels::layernorm_forward(saved.out, saved.mean, saved.rstd, x, gamma, beta, 1e-5));
  EXPECT_NO_THROW(kernels::layernorm_backward(grads.grad_x, grads.grad_gamma, grads.grad_beta, grad_out, x,
                                              saved.mean, saved.rstd, gamma));
  EXPECT_EQ(allocator_for(meta).stats().num_allocs, allocs_before);
  // Shape checks still apply on meta.
  Tensor wrong_mean = Tensor::empty({4095}, DType::f32, meta);
  EXPECT_THROW(kernels::layernorm_forward(saved.out, wrong_mean, saved.rstd, x, gamma, beta, 1e-5),
               std::invalid_argument);
}

TEST(LayerNormValidation, RejectsBadArgumentsWithTheOpName) {
  Tensor x = random_tensor({3, 5}, DType::f32, 81), gamma = random_tensor({5}, DType::f32, 82);
  Tensor beta = random_tensor({5}, DType::f32, 83);
  Tensor out = Tensor::empty({3, 5}, DType::f32), mean = Tensor::empty({3}, DType::f32),
         rstd = Tensor::empty({3}, DType::f32);
  Tensor short_gamma = random_tensor({4}, DType::f32, 84);
  try {
    kernels::layernorm_forward(out, mean, rstd, x, short_gamma, beta, 1e-5);
    ADD_FAILURE() << "a 4-element gamma for 5 columns was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layernorm_forward"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("f32[4]"), std::string::npos) << e.what();
  }
  Tensor mean64 = Tensor::empty({3}, DType::f64);
  EXPECT_THROW(kernels::layernorm_forward(out, mean64, rstd, x, gamma, beta, 1e-5), std::invalid_argument);
  Tensor out_bf16 = Tensor::empty({3, 5}, DType::bf16);
  EXPECT_THROW(kernels::layernorm_forward(out_bf16, mean, rstd, x, gamma, beta, 1e-5), std::invalid_argument);
  EXPECT_THROW(kernels::layernorm_forward(out, mean, rstd, x, gamma, beta, -1.0), std::invalid_argument);
  Tensor grad_gamma_bf16 = Tensor::zeros({5}, DType::bf16), grad_beta = Tensor::zeros({5}, DType::f32);
  Tensor grad_x = Tensor::empty({3, 5}, DType::f32);
  EXPECT_THROW(kernels::layernorm_backward(grad_x, grad_gamma_bf16, grad_beta, x, x, mean, rstd, gamma),
               std::invalid_argument);
  Tensor on_meta = Tensor::empty({3, 5}, DType::f32, Device::meta);
  EXPECT_THROW(kernels::layernorm_forward(on_meta, mean, rstd, x, gamma, beta, 1e-5), std::invalid_argument);
}

// The cuda backend is checked against the cpu op by op in test_backend_ops.cpp; here, the dispatch.
TEST(LayerNormCuda, ForwardMatchesTheCpu) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  const Device cuda = Device::cuda;
  Tensor x = random_tensor({3, 5}, DType::f32, 91), gamma = random_tensor({5}, DType::f32, 92);
  Tensor out = Tensor::empty({3, 5}, DType::f32), mean = Tensor::empty({3}, DType::f32),
         rstd = Tensor::empty({3}, DType::f32);
  kernels::layernorm_forward(out, mean, rstd, x, gamma, gamma, 1e-5);
  Tensor gpu_out = Tensor::empty({3, 5}, DType::f32, cuda), gpu_mean = Tensor::empty({3}, DType::f32, cuda),
         gpu_rstd = Tensor::empty({3}, DType::f32, cuda);
  kernels::layernorm_forward(gpu_out, gpu_mean, gpu_rstd, x.to(cuda), gamma.to(cuda), gamma.to(cuda), 1e-5);
  const auto tol = tolerance_for(DType::f32, 5);
  EXPECT_TRUE(all_close(gpu_out.to_doubles(), out.to_doubles(), tol, "out"));
  EXPECT_TRUE(all_close(gpu_mean.to_doubles(), mean.to_doubles(), tol, "mean"));
  EXPECT_TRUE(all_close(gpu_rstd.to_doubles(), rstd.to_doubles(), tol, "rstd"));
}

// grad_gamma and grad_beta on the cuda backend sum in the cpu's order (blocks of
// 256 rows folded in order, the gamma term a fused multiply-add): bitwise the
// cpu's, accumulating into nonzero values, for rows below, at and off multiples
// of the block, columns off a multiple of 32, rows of one warp's registers
// (<= 512 columns, the fused kernel) and wider ones, more row blocks than a
// capped grid of warps takes at once (the simulator's 3 blocks), in f32, bf16, f64.
TEST(LayerNormCuda, BackwardParameterGradientsAreTheCpus) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  const Device cuda = Device::cuda;
  const std::vector<Shape> shapes = {{1, 8}, {15, 7}, {256, 512}, {257, 33}, {1000, 96}, {6500, 40}, {600, 700}};
  uint64_t seed = 100;
  for (const DType dtype : {DType::f32, DType::bf16, DType::f64}) {
    const DType acc = accumulation_dtype(dtype);
    for (const Shape& shape : shapes) {
      const int64_t rows = shape[0], cols = shape[1];
      const std::string what = std::string(dtype_name(dtype)) + " " + std::to_string(rows) + "x" + std::to_string(cols);
      const Tensor x = random_tensor(shape, dtype, ++seed, 2.0), grad_out = random_tensor(shape, dtype, ++seed);
      const Tensor gamma = random_tensor({cols}, acc, ++seed), beta = random_tensor({cols}, acc, ++seed);
      const LayerNormResult saved = run_forward(x, gamma, beta, 1e-5);
      Tensor gpu_grad_x = Tensor::empty(shape, dtype, cuda);
      Tensor grad_x = Tensor::empty(shape, dtype), grad_gamma = random_tensor({cols}, acc, ++seed),
             grad_beta = random_tensor({cols}, acc, ++seed);
      Tensor gpu_grad_gamma = grad_gamma.to(cuda), gpu_grad_beta = grad_beta.to(cuda);  // both accumulate
      kernels::layernorm_backward(grad_x, grad_gamma, grad_beta, grad_out, x, saved.mean, saved.rstd, gamma);
      kernels::layernorm_backward(gpu_grad_x, gpu_grad_gamma, gpu_grad_beta, grad_out.to(cuda), x.to(cuda),
                                  saved.mean.to(cuda), saved.rstd.to(cuda), gamma.to(cuda));
      const auto expect_bitwise = [&](const char* name, const Tensor& got, const Tensor& ref) {
        const std::vector<double> g = got.to_doubles(), r = ref.to_doubles();
        EXPECT_EQ(0, std::memcmp(g.data(), r.data(), r.size() * sizeof(double))) << name << " " << what;
      };
      expect_bitwise("grad_gamma", gpu_grad_gamma, grad_gamma);
      expect_bitwise("grad_beta", gpu_grad_beta, grad_beta);
      EXPECT_TRUE(all_close(gpu_grad_x.to_doubles(), grad_x.to_doubles(),
                            tolerance_for(dtype, 4.0 * static_cast<double>(cols)), "grad_x " + what));
    }
  }
}

}  // namespace
}  // namespace gc
