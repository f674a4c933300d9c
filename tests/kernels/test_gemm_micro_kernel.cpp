// test_gemm_micro_kernel.cpp: the cpu GEMM's register-tiled kernel
// (kernels/cpu/gemm_micro_kernel.*) on panels packed by hand in the layouts its
// header documents: edge tiles (rows and columns short of a whole tile, a tail
// narrower than one vector) match an f64 reference, both A layouts give the same
// bits, beta == 0 never reads C, and nothing outside the mc x nc block is written.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/gemm_micro_kernel.h"
#include "tests/test_util.h"

namespace gc::kernels::cpu::gemm_detail {
namespace {

using test::random_tensor;

struct Block {
  int64_t mc, nc, kc;
};

// A [mc, kc] as row-layout panels ([kMR][kKC] each) or column-layout panels
// ([kc][kMR] each), zero-padded to whole panels; B [kc, nc] as [kc][kNR] panels.
Tensor pack_a(const std::vector<double>& a, const Block& s, bool columns) {
  const int64_t panels = ceil_div(s.mc, kMR);
  std::vector<double> packed(static_cast<size_t>(panels * kPanelFloats), 0.0);
  for (int64_t i = 0; i < s.mc; ++i)
    for (int64_t p = 0; p < s.kc; ++p) {
      const int64_t panel = i / kMR, r = i % kMR;
      packed[panel * kPanelFloats + (columns ? p * kMR + r : r * kKC + p)] = a[i * s.kc + p];
    }
  return Tensor::from_doubles(packed, {static_cast<int64_t>(packed.size())}, DType::f32);
}

Tensor pack_b(const std::vector<double>& b, const Block& s) {
  const int64_t panels = ceil_div(s.nc, kNR);
  std::vector<double> packed(static_cast<size_t>(panels * s.kc * kNR), 0.0);
  for (int64_t p = 0; p < s.kc; ++p)
    for (int64_t j = 0; j < s.nc; ++j) packed[(j / kNR) * s.kc * kNR + p * kNR + j % kNR] = b[p * s.nc + j];
  return Tensor::from_doubles(packed, {static_cast<int64_t>(packed.size())}, DType::f32);
}

TEST(GemmMicroKernel, EdgeTilesMatchAnF64ReferenceAndBothALayoutsAgreeBitwise) {
  // Whole tiles; rows and columns short of a tile; a column tail narrower than one vector.
  for (const Block s : {Block{2 * kMR, 2 * kNR, 16}, Block{2 * kMR + 3, kNR + 5, 37},
                        Block{kMR - 1, kNR + (kVecWidth > 1 ? kVecWidth / 2 : 1), kKC}}) {
    for (double beta : {0.0, 2.0}) {
      SCOPED_TRACE(std::to_string(s.mc) + "x" + std::to_string(s.nc) + "x" + std::to_string(s.kc) + " beta " +
                   std::to_string(beta));
      const int64_t ldc = s.nc + 7, c_rows = s.mc + 2;  // room beyond the block, which must stay untouched
      const std::vector<double> a = random_tensor({s.mc * s.kc}, DType::f32, 21).to_doubles();
      const std::vector<double> b = random_tensor({s.kc * s.nc}, DType::f32, 22).to_doubles();
      const Tensor bias = random_tensor({s.nc}, DType::f32, 23);
      const std::vector<double> biasv = bias.to_doubles();
      // beta == 0: C starts as NaN inside the block (never read); a sentinel outside it.
      std::vector<double> c0(static_cast<size_t>(c_rows * ldc), -7.0);
      const std::vector<double> c_random = random_tensor({c_rows * ldc}, DType::f32, 24).to_doubles();
      for (int64_t i = 0; i < s.mc; ++i)
        for (int64_t j = 0; j < s.nc; ++j) c0[i * ldc + j] = beta == 0.0 ? std::nan("") : c_random[i * ldc + j];

      const Tensor b_panels = pack_b(b, s);
      const Epilogue e{0.5f, static_cast<float>(beta), bias.data_as<float>()};
      std::vector<double> results[2];
      for (bool columns : {false, true}) {
        const Tensor a_panels = pack_a(a, s, columns);
        Tensor c = Tensor::from_doubles(c0, {c_rows * ldc}, DType::f32);
        macro_kernel(columns, s.mc, s.nc, s.kc, a_panels.data_as<float>(), b_panels.data_as<float>(),
                     c.data_as<float>(), ldc, e);
        results[columns] = c.to_doubles();
      }
      for (size_t i = 0; i < results[0].size(); ++i)
        ASSERT_EQ(results[0][i], results[1][i]) << "the A layouts disagree at " << i;

      std::vector<double> got, want;
      for (int64_t i = 0; i < c_rows; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
          const double value = results[0][i * ldc + j];
          if (i >= s.mc || j >= s.nc) {
            EXPECT_EQ(value, -7.0) << "written outside the block at " << i << "," << j;
            continue;
          }
          double sum = 0;
          for (int64_t p = 0; p < s.kc; ++p) sum += a[i * s.kc + p] * b[p * s.nc + j];
          got.push_back(value);
          want.push_back(0.5 * sum + (beta != 0.0 ? beta * c0[i * ldc + j] : 0.0) + biasv[j]);
        }
      EXPECT_TRUE(test::all_close(got, want, test::tolerance_for(DType::f32, static_cast<double>(s.kc)),
                                  "macro_kernel"));
    }
  }
}

}  // namespace
}  // namespace gc::kernels::cpu::gemm_detail
