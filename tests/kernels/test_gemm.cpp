// test_gemm.cpp: the cpu GEMM against a naive f64 reference: every transpose,
// edge sizes around the micro-tile and the cache blocks, both drivers (whole-k
// and the k-outer long reduction), alpha/beta/bias, every A/B/C dtype, the f64
// path, bitwise determinism across thread counts, and rejected inputs.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using kernels::cpu::gemm_cpu;
using kernels::cpu::gemm_cpu_workspace_bytes;
using kernels::cpu::gemm_cpu_workspace_bytes_for;
using kernels::cpu::gemm_cpu_workspace_threads;
using kernels::GemmProblem;

struct Case {
  int64_t m, n, k;
  bool transpose_a, transpose_b;
  DType a_dtype = DType::f32, b_dtype = DType::f32, c_dtype = DType::f32;
  double alpha = 1.0, beta = 0.0;
  bool bias = false;
  DType bias_dtype = DType::f32;
};

std::string case_name(const Case& c) {
  return std::string(c.transpose_a ? "T" : "N") + (c.transpose_b ? "T" : "N") + "_" + std::to_string(c.m) + "x" +
         std::to_string(c.n) + "x" + std::to_string(c.k);
}

Tensor workspace_for(int64_t m, int64_t n, int64_t k) {
  const size_t bytes = gemm_cpu_workspace_bytes(m, n, k);
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32);
}

// Operands of one case, stored as the GEMM sees them ([k, m] for a transposed A).
struct Operands {
  Tensor a, b, c, bias;
};
Operands make_operands(const Case& c, uint64_t seed) {
  Operands o;
  o.a = test::random_tensor(c.transpose_a ? Shape{c.k, c.m} : Shape{c.m, c.k}, c.a_dtype, seed);
  o.b = test::random_tensor(c.transpose_b ? Shape{c.n, c.k} : Shape{c.k, c.n}, c.b_dtype, seed + 1);
  o.c = test::random_tensor({c.m, c.n}, c.c_dtype, seed + 2);
  if (c.bias) o.bias = test::random_tensor({c.n}, c.bias_dtype, seed + 3);
  return o;
}

void run_gemm(const Case& c, Operands& o, Tensor& workspace) {
  GemmProblem g;
  g.m = c.m, g.n = c.n, g.k = c.k;
  g.a = o.a.numel() ? o.a.data() : nullptr, g.a_dtype = c.a_dtype, g.lda = c.transpose_a ? c.m : c.k;
  g.transpose_a = c.transpose_a;
  g.b = o.b.numel() ? o.b.data() : nullptr, g.b_dtype = c.b_dtype, g.ldb = c.transpose_b ? c.k : c.n;
  g.transpose_b = c.transpose_b;
  g.c = o.c.numel() ? o.c.data() : nullptr, g.c_dtype = c.c_dtype, g.ldc = c.n;
  g.alpha = c.alpha, g.beta = c.beta;
  if (c.bias) g.bias = o.bias.data(), g.bias_dtype = c.bias_dtype;
  gemm_cpu(g, workspace.numel() ? workspace.data() : nullptr, workspace.nbytes());
}

// Naive f64 product of the values the tensors actually hold.
std::vector<double> reference(const Case& c, const Operands& o) {
  const std::vector<double> a = o.a.to_doubles(), b = o.b.to_doubles(), old = o.c.to_doubles();
  const std::vector<double> bias = c.bias ? o.bias.to_doubles() : std::vector<double>();
  std::vector<double> out(static_cast<size_t>(c.m * c.n));
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < c.k; ++p)
        sum += a[c.transpose_a ? p * c.m + i : i * c.k + p] * b[c.transpose_b ? j * c.k + p : p * c.n + j];
      double value = c.alpha * sum;
      if (c.beta != 0) value += c.beta * old[i * c.n + j];
      if (c.bias) value += bias[j];
      out[i * c.n + j] = value;
    }
  return out;
}

::testing::AssertionResult check_case(const Case& c, uint64_t seed) {
  Operands o = make_operands(c, seed);
  const std::vector<double> ref = reference(c, o);
  Tensor workspace = workspace_for(c.m, c.n, c.k);
  run_gemm(c, o, workspace);
  return test::all_close(o.c.to_doubles(), ref, test::tolerance_for(c.c_dtype, static_cast<double>(c.k)),
                         case_name(c));
}

// ---- shapes x transposes, f32 --------------------------------------------------
const int kMR = kernels::cpu::gemm_cpu_micro_rows();
const int kNR = kernels::cpu::gemm_cpu_micro_cols();

std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes() {
  return {
      {1, 1, 1},        {3, 17, 31},       {33, 65, 129},          {129, 33, 17},   {65, 1, 33},
      {17, 129, 3},     {31, 227, 4},      {kMR - 1, kNR + 1, 5},  {kMR + 1, kNR - 1, 7},
      {2 * kMR, 2 * kNR, 9},  {kMR, kNR + kNR / 2, 11},  {257, 40, 300},  {33, 31, 513},     // several row blocks; three k slices
      {20, 800, 65},    // C wider than one column pass
      {31, 33, 3100},   // k-outer driver: a long reduction
      {600, 40, 3100},  // k-outer driver with two row chunks
      {40, 530, 3100},  // k-outer driver with two column passes
  };
}

class GemmShapes : public ::testing::TestWithParam<std::tuple<std::tuple<int64_t, int64_t, int64_t>, int>> {};

TEST_P(GemmShapes, MatchesF64Reference) {
  const auto [shape, transposes] = GetParam();
  const auto [m, n, k] = shape;
  Case c{m, n, k, (transposes & 1) != 0, (transposes & 2) != 0};
  EXPECT_TRUE(check_case(c, 100 + static_cast<uint64_t>(m * 7 + n * 3 + k)));
}

std::string shape_param_name(const ::testing::TestParamInfo<GemmShapes::ParamType>& info) {
  const int t = std::get<1>(info.param);
  const auto& shape = std::get<0>(info.param);
  return std::string(t & 1 ? "T" : "N") + (t & 2 ? "T" : "N") + "_" + std::to_string(std::get<0>(shape)) + "x" +
         std::to_string(std::get<1>(shape)) + "x" + std::to_string(std::get<2>(shape));
}
INSTANTIATE_TEST_SUITE_P(Gemm, GemmShapes, ::testing::Combine(::testing::ValuesIn(shapes()), ::testing::Range(0, 4)),
                         shape_param_name);

// ---- every A/B/C dtype combination ---------------------------------------------------
class GemmDtypes : public ::testing::TestWithParam<std::tuple<DType, DType, DType>> {};

TEST_P(GemmDtypes, MatchesF64Reference) {
  const auto [a_dtype, b_dtype, c_dtype] = GetParam();
  for (auto [m, n, k, ta, tb] : {std::tuple{33, 65, 129, false, false}, std::tuple{65, 31, 300, true, true},
                                 std::tuple{17, 40, 3100, true, false}}) {
    Case c{m, n, k, ta, tb, a_dtype, b_dtype, c_dtype};
    c.alpha = 0.75, c.beta = 0.5, c.bias = true, c.bias_dtype = a_dtype;
    EXPECT_TRUE(check_case(c, 7));
  }
}

const DType kStorage[] = {DType::f32, DType::bf16, DType::f16};
std::string dtype_param_name(const ::testing::TestParamInfo<GemmDtypes::ParamType>& info) {
  return std::string(dtype_name(std::get<0>(info.param))) + "_" + dtype_name(std::get<1>(info.param)) + "_" +
         dtype_name(std::get<2>(info.param));
}
INSTANTIATE_TEST_SUITE_P(Gemm, GemmDtypes,
                         ::testing::Combine(::testing::ValuesIn(kStorage), ::testing::ValuesIn(kStorage),
                                            ::testing::ValuesIn(kStorage)),
                         dtype_param_name);

// ---- alpha, beta, bias, k == 0 -----------------------------------------------------------
TEST(Gemm, AlphaBetaBias) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Case c{31, 33, 65, ta, tb};
      c.alpha = -1.25, c.beta = 0.5, c.bias = true;
      EXPECT_TRUE(check_case(c, 11));
      c.k = 3100;  // the k-outer driver applies alpha and beta per slice
      EXPECT_TRUE(check_case(c, 12));
    }
}

TEST(Gemm, BetaZeroNeverReadsC) {
  for (int64_t k : {65, 3100}) {
    Case c{33, 31, k, false, false};
    Operands o = make_operands(c, 13);
    std::vector<float> nan_values(static_cast<size_t>(c.m * c.n), std::numeric_limits<float>::quiet_NaN());
    std::memcpy(o.c.data(), nan_values.data(), nan_values.size() * 4);
    const std::vector<double> ref = reference(c, o);  // beta == 0: old values unused
    Tensor workspace = workspace_for(c.m, c.n, c.k);
    run_gemm(c, o, workspace);
    EXPECT_TRUE(test::all_close(o.c.to_doubles(), ref, test::tolerance_for(DType::f32, k), "beta 0"));
  }
}

TEST(Gemm, EmptyReductionScalesAndAddsBias) {
  for (DType c_dtype : kStorage) {
    Case c{5, 7, 0, false, false, DType::f32, DType::f32, c_dtype};
    c.beta = -2.0, c.bias = true;
    EXPECT_TRUE(check_case(c, 14));
  }
}

// Operands inside wider buffers (row strides beyond their widths): the padding of C
// keeps its values and the product matches the reference on the sub-matrices.
TEST(Gemm, LeadingDimensions) {
  const int64_t m = 17, n = 33, k = 300, pad = 5;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    Tensor a = test::random_tensor({a_rows, a_cols + pad}, DType::bf16, 40 + t);
    Tensor b = test::random_tensor({b_rows, b_cols + pad}, DType::f32, 50 + t);
    Tensor c = test::random_tensor({m, n + pad}, DType::f32, 60 + t);
    const std::vector<double> av = a.to_doubles(), bv = b.to_doubles(), before = c.to_doubles();
    GemmProblem g;
    g.m = m, g.n = n, g.k = k;
    g.a = a.data(), g.a_dtype = DType::bf16, g.lda = a_cols + pad, g.transpose_a = ta;
    g.b = b.data(), g.b_dtype = DType::f32, g.ldb = b_cols + pad, g.transpose_b = tb;
    g.c = c.data(), g.ldc = n + pad, g.beta = 1.0;
    Tensor workspace = workspace_for(m, n, k);
    gemm_cpu(g, workspace.data(), workspace.nbytes());
    std::vector<double> got, ref;
    const std::vector<double> after = c.to_doubles();
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = before[i * (n + pad) + j];
        for (int64_t p = 0; p < k; ++p)
          sum += av[ta ? p * g.lda + i : i * g.lda + p] * bv[tb ? j * g.ldb + p : p * g.ldb + j];
        ref.push_back(sum);
        got.push_back(after[i * (n + pad) + j]);
      }
      for (int64_t j = n; j < n + pad; ++j)
        ASSERT_EQ(before[i * (n + pad) + j], after[i * (n + pad) + j]) << "padding of C written at " << i << ", " << j;
    }
    EXPECT_TRUE(test::all_close(got, ref, test::tolerance_for(DType::f32, k), "strides, case " + std::to_string(t)));
  }
}

// ---- the f64 path -------------------------------------------------------------------------
TEST(Gemm, F64AllTransposes) {
  for (int t = 0; t < 4; ++t) {
    Case c{33, 65, 129, (t & 1) != 0, (t & 2) != 0, DType::f64, DType::f64, DType::f64};
    c.alpha = 0.5, c.beta = 1.5, c.bias = true, c.bias_dtype = DType::f64;
    EXPECT_TRUE(check_case(c, 15 + static_cast<uint64_t>(t)));
  }
}

// ---- determinism ---------------------------------------------------------------------------
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~ThreadCount() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(Gemm, BitwiseIdenticalAcrossThreadCounts) {
  const Case cases[] = {
      {1000, 300, 600, false, false},                                     // whole-k, many row blocks
      {1000, 300, 600, false, true, DType::bf16, DType::f32, DType::bf16},  // f32 tile, bf16 store
      {600, 100, 4000, true, false},                                     // k-outer, two row chunks
      {300, 70, 4000, true, false, DType::f16, DType::bf16, DType::f16},  // k-outer, shared f32 tile
      {64, 100, 1500, true, false},                                      // whole-k, one row block: runs of panels
      {64, 100, 1500, true, false, DType::bf16, DType::bf16, DType::bf16},  // the same through the f32 tile
      {64, 100, 5000, true, false},                                      // k-outer, few rows: column groups
      {70, 45, 5000, true, false, DType::bf16, DType::bf16, DType::f32},  // a partial last panel
  };
  for (const Case& c : cases) {
    Operands one = make_operands(c, 21);
    Tensor workspace;
    {
      ThreadCount largest(3);
      workspace = workspace_for(c.m, c.n, c.k);  // room for the largest team
    }
    {
      ThreadCount threads(1);
      run_gemm(c, one, workspace);
    }
    for (int team : {2, 3}) {
      Operands other = make_operands(c, 21);
      ThreadCount threads(team);
      run_gemm(c, other, workspace);
      ASSERT_EQ(one.c.nbytes(), other.c.nbytes());
      EXPECT_EQ(0, std::memcmp(one.c.data(), other.c.data(), one.c.nbytes())) << case_name(c) << ", " << team << " threads";
    }
  }
}

// ---- workspace size and rejected inputs ------------------------------------------------------
TEST(Gemm, WorkspaceDoesNotGrowWithTheReduction) {
  const size_t short_k = gemm_cpu_workspace_bytes(512, 512, 4096);
  EXPECT_EQ(short_k, gemm_cpu_workspace_bytes(512, 512, 65536));
  EXPECT_EQ(short_k, gemm_cpu_workspace_bytes(512, 512, int64_t(1) << 24));
  EXPECT_EQ(gemm_cpu_workspace_bytes(65536, 512, 512), gemm_cpu_workspace_bytes(int64_t(1) << 22, 512, 512));
  // A few MiB at most for GraphCast's shapes.
  for (auto [m, n, k] : {std::tuple{65536, 512, 512}, std::tuple{65536, 512, 1536}, std::tuple{65536, 1536, 512},
                         std::tuple{1536, 512, 65536}, std::tuple{65536, 227, 512}})
    EXPECT_LE(gemm_cpu_workspace_bytes(m, n, k), size_t(6) << 20) << m << "x" << n << "x" << k;
  EXPECT_EQ(0u, gemm_cpu_workspace_bytes(0, 5, 5));
}

// The workspace is sized for the team the process started with, not the team of
// the moment: gc_train and gc_forecast give cores back to a busy machine
// (tools/train/cpu_share.h), and their memory figures (and a dry run's, which
// sizes it alike) must not follow the machine's load. (They did: gc_forecast's
// peak was 1,428,480 B with one thread and 1,557,504 B with two, and its cpu run
// and dry run disagreed when the load changed between them.) A larger team than
// the start's gets room for itself.
TEST(Gemm, WorkspaceIsSizedForTheTeamTheProcessStartedWith) {
  const int start = gemm_cpu_workspace_threads();
  if (start < 2) GTEST_SKIP() << "one thread at start: nothing to give back";
  const size_t bytes = gemm_cpu_workspace_bytes(1000, 300, 600);
  EXPECT_EQ(bytes, gemm_cpu_workspace_bytes_for(1000, 300, 600, start));
  ASSERT_LT(gemm_cpu_workspace_bytes_for(1000, 300, 600, 1), bytes) << "the team must matter for this shape";
  {
    ThreadCount fewer(1);
    EXPECT_EQ(gemm_cpu_workspace_threads(), start);
    EXPECT_EQ(gemm_cpu_workspace_bytes(1000, 300, 600), bytes);
  }
  {
    ThreadCount more(start + 1);
    EXPECT_EQ(gemm_cpu_workspace_threads(), start + 1);
    EXPECT_EQ(gemm_cpu_workspace_bytes(1000, 300, 600), gemm_cpu_workspace_bytes_for(1000, 300, 600, start + 1));
  }
}

// Guard bytes around an exactly sized workspace (at an odd address) stay untouched,
// with one thread (its buffers end the workspace) and with two.
TEST(Gemm, StaysInsideItsWorkspace) {
  const Case cases[] = {{257, 227, 600, false, true, DType::bf16, DType::f32, DType::f16},
                        {300, 530, 3100, true, false, DType::f32, DType::f32, DType::bf16}};
  for (int threads : {1, 2})
    for (const Case& c : cases) {
      ThreadCount team(threads);
      Operands o = make_operands(c, 41);
      const size_t bytes = gemm_cpu_workspace_bytes_for(c.m, c.n, c.k, threads), guard = 256, start = guard + 3;
      std::vector<unsigned char> buffer(start + bytes + guard, 0xa5);
      GemmProblem g;
      g.m = c.m, g.n = c.n, g.k = c.k;
      g.a = o.a.data(), g.a_dtype = c.a_dtype, g.lda = c.transpose_a ? c.m : c.k, g.transpose_a = c.transpose_a;
      g.b = o.b.data(), g.b_dtype = c.b_dtype, g.ldb = c.transpose_b ? c.k : c.n, g.transpose_b = c.transpose_b;
      g.c = o.c.data(), g.c_dtype = c.c_dtype, g.ldc = c.n;
      gemm_cpu(g, buffer.data() + start, bytes);
      for (size_t i = 0; i < start; ++i) ASSERT_EQ(0xa5, buffer[i]) << case_name(c) << ": wrote before, at " << i;
      for (size_t i = start + bytes; i < buffer.size(); ++i)
        ASSERT_EQ(0xa5, buffer[i]) << case_name(c) << ": wrote past the end, at " << i - start - bytes;
    }
}

TEST(Gemm, RejectsBadInput) {
  Case c{33, 31, 65, false, false};
  Operands o = make_operands(c, 31);
  Tensor workspace = workspace_for(c.m, c.n, c.k);
  Tensor small = Tensor::empty({16}, DType::i32);
  EXPECT_THROW(run_gemm(c, o, small), std::invalid_argument);
  GemmProblem g;
  g.m = c.m, g.n = c.n, g.k = c.k;
  g.a = o.a.data(), g.lda = c.k, g.b = o.b.data(), g.ldb = c.n, g.c = o.c.data(), g.ldc = c.n;
  EXPECT_NO_THROW(gemm_cpu(g, workspace.data(), workspace.nbytes()));
  GemmProblem bad = g;
  bad.lda = c.k - 1;
  EXPECT_THROW(gemm_cpu(bad, workspace.data(), workspace.nbytes()), std::invalid_argument);
  bad = g;
  bad.ldc = c.n - 1;
  EXPECT_THROW(gemm_cpu(bad, workspace.data(), workspace.nbytes()), std::invalid_argument);
  bad = g;
  bad.c_dtype = DType::f64;  // f64 only with f64 everywhere
  EXPECT_THROW(gemm_cpu(bad, workspace.data(), workspace.nbytes()), std::invalid_argument);
  bad = g;
  bad.a_dtype = DType::i32;
  EXPECT_THROW(gemm_cpu(bad, workspace.data(), workspace.nbytes()), std::invalid_argument);
  bad = g;
  bad.k = -1;
  EXPECT_THROW(gemm_cpu(bad, workspace.data(), workspace.nbytes()), std::invalid_argument);
  bad = g;
  bad.b = nullptr;
  EXPECT_THROW(gemm_cpu(bad, workspace.data(), workspace.nbytes()), std::invalid_argument);
}

}  // namespace
}  // namespace gc
