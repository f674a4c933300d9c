// test_gemm_pack.cpp: the cpu GEMM's conversion and packing layer
// (kernels/cpu/gemm_pack.*): runs widen and round exactly as the dtype table does,
// packed panels hold op(A) / op(B) in the micro-kernel's layouts with zero padding,
// and finish_rows applies alpha, beta and bias once, never reading C when beta is 0.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_micro_kernel.h"
#include "kernels/cpu/gemm_pack.h"
#include "tests/test_util.h"

namespace gc::kernels::cpu::gemm_detail {
namespace {

using test::random_tensor;

const DType kStorage[] = {DType::f32, DType::bf16, DType::f16};

Tensor nan_f32(int64_t n) {
  return Tensor::from_doubles(std::vector<double>(static_cast<size_t>(n), std::nan("")), {n}, DType::f32);
}

TEST(GemmPack, RunsWidenAndRoundLikeTheDtypeTable) {
  for (DType d : kStorage) {
    SCOPED_TRACE(dtype_name(d));
    const int64_t n = 41, offset = 3, count = 29;
    const Tensor stored = random_tensor({n}, d, 5);  // values exactly representable in d
    const std::vector<double> values = stored.to_doubles();
    Tensor widened = nan_f32(count);
    widen_run(stored.data(), d, offset, widened.data_as<float>(), count);
    const std::vector<double> got = widened.to_doubles();
    for (int64_t i = 0; i < count; ++i) EXPECT_EQ(got[i], values[offset + i]) << i;

    // f32 values rounded into d at an offset: the bits Tensor::from_doubles gives.
    const Tensor f32 = random_tensor({count}, DType::f32, 6);
    Tensor out = Tensor::zeros({n}, d);
    narrow_run(f32.data_as<float>(), out.data(), d, offset, count);
    const std::vector<double> rounded = test::rounded_through(f32.to_doubles(), d), written = out.to_doubles();
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(written[i], i >= offset && i < offset + count ? rounded[i - offset] : 0.0) << i;
  }
}

// op(X)[r, c] of X stored [rows, cols] with row stride ld (or transposed: X[c, r]).
double op_at(const std::vector<double>& x, int64_t ld, bool transposed, int64_t r, int64_t c) {
  return transposed ? x[c * ld + r] : x[r * ld + c];
}

TEST(GemmPack, PanelsHoldOpOfTheOperandsInTheKernelsLayoutsZeroPadded) {
  const int64_t m = kMR + 3, n = kNR + 5, k = 37, i0 = kMR, mr = 3, p0 = 5, kc = 20;
  for (bool transposed : {false, true}) {
    SCOPED_TRACE(transposed ? "transposed" : "plain");
    GemmProblem g;
    g.m = m, g.n = n, g.k = k;
    // Row strides beyond the widths, so a wrong stride shows.
    const int64_t lda = (transposed ? m : k) + 2, ldb = (transposed ? k : n) + 3;
    const Tensor a = random_tensor({transposed ? k : m, lda}, DType::bf16, 7);
    const Tensor b = random_tensor({transposed ? n : k, ldb}, DType::f16, 8);
    g.a = a.data(), g.a_dtype = DType::bf16, g.lda = lda, g.transpose_a = transposed;
    g.b = b.data(), g.b_dtype = DType::f16, g.ldb = ldb, g.transpose_b = transposed;
    const std::vector<double> av = a.to_doubles(), bv = b.to_doubles();

    Tensor a_panel = nan_f32(kPanelFloats);
    pack_a_panel(g, i0, mr, p0, kc, a_panel.data_as<float>());
    const std::vector<double> ap = a_panel.to_doubles();
    for (int64_t r = 0; r < kMR; ++r)
      for (int64_t p = 0; p < kc; ++p) {
        // Rows layout [kMR][kKC] for A stored [m, k]; columns layout [kc][kMR] for A transposed.
        const double got = transposed ? ap[p * kMR + r] : ap[r * kKC + p];
        const double want = r < mr ? op_at(av, lda, transposed, i0 + r, p0 + p) : 0.0;
        ASSERT_EQ(got, want) << "A panel row " << r << " k " << p;
      }

    const int64_t j0 = kNR, nr = n - kNR;
    Tensor b_panel = nan_f32(kc * kNR);
    pack_b_panel(g, p0, kc, j0, nr, b_panel.data_as<float>());
    const std::vector<double> bp = b_panel.to_doubles();
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = 0; j < kNR; ++j) {
        const double want = j < nr ? op_at(bv, ldb, transposed, p0 + p, j0 + j) : 0.0;
        ASSERT_EQ(bp[p * kNR + j], want) << "B panel k " << p << " column " << j;
      }
  }
}

TEST(GemmPack, FinishRowsAppliesAlphaBetaAndBiasAndNeverReadsCWhenBetaIsZero) {
  const int64_t rows = 3, cols = 70, ldc = 75, i0 = 1, j0 = 2, ld_acc = cols;  // cols > one 64-column chunk
  const Tensor acc = random_tensor({rows * ld_acc}, DType::f32, 9);
  const Tensor bias = random_tensor({j0 + cols}, DType::bf16, 10);
  const std::vector<double> accv = acc.to_doubles(), biasv = bias.to_doubles();
  for (DType c_dtype : kStorage)
    for (double beta : {0.0, 0.75})
      for (bool with_acc : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(c_dtype)) + " beta " + std::to_string(beta) + (with_acc ? "" : " k = 0"));
        // beta == 0: C starts as NaN, which must not reach the result.
        Tensor c = beta == 0.0 ? Tensor::from_doubles(std::vector<double>((i0 + rows) * ldc, std::nan("")),
                                                      {(i0 + rows) * ldc}, c_dtype)
                               : random_tensor({(i0 + rows) * ldc}, c_dtype, 11);
        const std::vector<double> before = c.to_doubles();
        GemmProblem g;
        g.c = c.data(), g.c_dtype = c_dtype, g.ldc = ldc, g.alpha = 1.5, g.beta = beta;
        g.bias = bias.data(), g.bias_dtype = DType::bf16;
        finish_rows(g, with_acc ? acc.data_as<float>() : nullptr, ld_acc, i0, rows, j0, cols);
        const std::vector<double> after = c.to_doubles();
        std::vector<double> got, want;
        for (int64_t i = 0; i < (i0 + rows) * ldc; ++i) {
          const int64_t r = i / ldc - i0, j = i % ldc - j0;
          if (r < 0 || j < 0 || j >= cols) {
            // Outside the block: untouched (NaN compares by bits).
            EXPECT_TRUE(after[i] == before[i] || (std::isnan(after[i]) && std::isnan(before[i]))) << i;
            continue;
          }
          double value = with_acc ? 1.5 * accv[r * ld_acc + j] : 0.0;
          if (beta != 0.0) value += beta * before[i];
          got.push_back(after[i]);
          want.push_back(value + biasv[j0 + j]);
        }
        EXPECT_TRUE(test::all_close(got, want, test::tolerance_for(c_dtype, 3), "finish_rows"));
      }
}

}  // namespace
}  // namespace gc::kernels::cpu::gemm_detail
