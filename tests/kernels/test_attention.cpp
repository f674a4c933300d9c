// test_attention.cpp: kernels/attention.h (the attention processor's softmax over
// each receiver's incoming edges) against an f64 reference computed from the
// stored inputs, in every float dtype and with odd sizes (a receiver without
// edges, a hub, one head and several, channels not a power of two); bf16/f16
// against the f32 kernel on the same inputs; the backward against central
// finite differences in f64; the same bits for 1 and 3 threads; meta does
// nothing; bad operands are refused.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::test;

namespace {

// `nodes` receivers, `edges` edges sorted by receiver: receiver 2 takes every
// third edge (a hub), receiver 0 and the last one none.
std::vector<int32_t> receiver_offsets(int64_t nodes, int64_t edges) {
  std::vector<int32_t> receivers;
  uint64_t state = 777;
  for (int64_t e = 0; e < edges; ++e) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    receivers.push_back(static_cast<int32_t>(e % 3 == 0 ? 2 : 1 + static_cast<int64_t>(state >> 33) % (nodes - 2)));
  }
  std::sort(receivers.begin(), receivers.end());
  std::vector<int32_t> offsets(static_cast<size_t>(nodes + 1), 0);
  for (int32_t r : receivers) ++offsets[static_cast<size_t>(r + 1)];
  for (int64_t n = 0; n < nodes; ++n) offsets[static_cast<size_t>(n + 1)] += offsets[static_cast<size_t>(n)];
  return offsets;
}

struct AttentionCase {
  int64_t nodes, edges, heads, cols;
};

std::string case_name(const AttentionCase& c) {
  return std::to_string(c.nodes) + "n_" + std::to_string(c.edges) + "e_" + std::to_string(c.heads) + "h_" +
         std::to_string(c.cols) + "c";
}

const std::vector<AttentionCase> kCases = {{3, 0, 1, 4}, {4, 1, 1, 1}, {37, 301, 4, 32}, {37, 301, 3, 33}, {9, 65, 1, 65}};

// Inputs in `dtype` (scores spread wide enough that the softmax is far from uniform).
struct Inputs {
  AttentionCase c;
  Tensor scores, values, offsets;
  std::vector<int32_t> host_offsets;
  Inputs(const AttentionCase& cs, DType dtype) : c(cs) {
    host_offsets = receiver_offsets(c.nodes, c.edges);
    scores = random_tensor({c.edges, c.heads}, dtype, 11, 4.0);
    values = random_tensor({c.edges, c.cols}, dtype, 12);
    offsets = Tensor::from_host(host_offsets.data(), {c.nodes + 1}, DType::i32);
  }
};

// The f64 reference: out [N, C], lse [N, H], softmax weights [E, H].
struct Reference {
  std::vector<double> out, lse, weights, out_scale;
};
Reference reference(const Inputs& in) {
  const AttentionCase& c = in.c;
  const auto s = in.scores.to_doubles(), v = in.values.to_doubles();
  const int64_t width = c.cols / c.heads;
  Reference r;
  r.out.assign(static_cast<size_t>(c.nodes * c.cols), 0.0);
  r.out_scale.assign(r.out.size(), 0.0);
  r.lse.assign(static_cast<size_t>(c.nodes * c.heads), -std::numeric_limits<double>::infinity());
  r.weights.assign(static_cast<size_t>(c.edges * c.heads), 0.0);
  for (int64_t n = 0; n < c.nodes; ++n) {
    const int64_t b = in.host_offsets[static_cast<size_t>(n)], e1 = in.host_offsets[static_cast<size_t>(n + 1)];
    for (int64_t h = 0; h < c.heads; ++h) {
      if (b == e1) continue;
      double total = 0;
      for (int64_t e = b; e < e1; ++e) total += std::exp(s[static_cast<size_t>(e * c.heads + h)]);
      r.lse[static_cast<size_t>(n * c.heads + h)] = std::log(total);
      for (int64_t e = b; e < e1; ++e) {
        const double a = std::exp(s[static_cast<size_t>(e * c.heads + h)]) / total;
        r.weights[static_cast<size_t>(e * c.heads + h)] = a;
        for (int64_t k = h * width; k < (h + 1) * width; ++k) {
          r.out[static_cast<size_t>(n * c.cols + k)] += a * v[static_cast<size_t>(e * c.cols + k)];
          r.out_scale[static_cast<size_t>(n * c.cols + k)] =
              std::max(r.out_scale[static_cast<size_t>(n * c.cols + k)], std::fabs(v[static_cast<size_t>(e * c.cols + k)]));
        }
      }
    }
  }
  return r;
}

struct Forward {
  Tensor out, lse;
};
Forward run_forward(const Inputs& in) {
  Forward f;
  f.out = Tensor::empty({in.c.nodes, in.c.cols}, in.values.dtype());
  f.lse = Tensor::empty({in.c.nodes, in.c.heads}, accumulation_dtype(in.values.dtype()));
  kernels::segment_softmax_sum_forward(f.out, f.lse, in.scores, in.values, in.offsets);
  return f;
}

class AttentionTest : public ::testing::TestWithParam<DType> {};

TEST_P(AttentionTest, ForwardMatchesF64Reference) {
  const DType dtype = GetParam();
  for (const AttentionCase& c : kCases) {
    const Inputs in(c, dtype);
    const Reference r = reference(in);
    const Forward f = run_forward(in);
    // A weighted mean of values: relative to the largest value averaged (cancellation).
    EXPECT_TRUE(all_close_sum(f.out.to_doubles(), r.out, r.out_scale, tolerance_for(dtype, static_cast<double>(c.edges)),
                              "out " + case_name(c)));
    const auto lse = f.lse.to_doubles();
    for (size_t i = 0; i < lse.size(); ++i) {
      if (std::isinf(r.lse[i])) {
        EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "a receiver without edges has lse -inf, got " << lse[i];
      } else {
        EXPECT_NEAR(lse[i], r.lse[i], tolerance_for(accumulation_dtype(dtype), 64).rtol * (1 + std::fabs(r.lse[i])))
            << "lse " << i << " " << case_name(c);
      }
    }
  }
}

TEST_P(AttentionTest, BackwardMatchesF64Reference) {
  const DType dtype = GetParam();
  for (const AttentionCase& c : kCases) {
    const Inputs in(c, dtype);
    const Reference r = reference(in);
    const Forward f = run_forward(in);
    const Tensor grad_out = random_tensor({c.nodes, c.cols}, dtype, 13);
    Tensor grad_scores = Tensor::empty({c.edges, c.heads}, dtype), grad_values = Tensor::empty({c.edges, c.cols}, dtype);
    kernels::segment_softmax_sum_backward(grad_scores, grad_values, grad_out, in.scores, in.values, f.lse, in.offsets);
    const auto g = grad_out.to_doubles(), v = in.values.to_doubles();
    const int64_t width = c.cols / c.heads;
    std::vector<double> ref_scores(static_cast<size_t>(c.edges * c.heads)), score_scale(ref_scores.size());
    std::vector<double> ref_values(static_cast<size_t>(c.edges * c.cols));
    for (int64_t n = 0; n < c.nodes; ++n) {
      const int64_t b = in.host_offsets[static_cast<size_t>(n)], e1 = in.host_offsets[static_cast<size_t>(n + 1)];
      for (int64_t h = 0; h < c.heads; ++h) {
        std::vector<double> d(static_cast<size_t>(e1 - b)), d_abs(d.size());
        double delta = 0, delta_abs = 0;
        for (int64_t e = b; e < e1; ++e) {
          for (int64_t k = h * width; k < (h + 1) * width; ++k) {
            d[static_cast<size_t>(e - b)] += g[static_cast<size_t>(n * c.cols + k)] * v[static_cast<size_t>(e * c.cols + k)];
            d_abs[static_cast<size_t>(e - b)] +=
                std::fabs(g[static_cast<size_t>(n * c.cols + k)] * v[static_cast<size_t>(e * c.cols + k)]);
          }
          const double a = r.weights[static_cast<size_t>(e * c.heads + h)];
          delta += a * d[static_cast<size_t>(e - b)];
          delta_abs += a * d_abs[static_cast<size_t>(e - b)];
        }
        for (int64_t e = b; e < e1; ++e) {
          const double a = r.weights[static_cast<size_t>(e * c.heads + h)];
          ref_scores[static_cast<size_t>(e * c.heads + h)] = a * (d[static_cast<size_t>(e - b)] - delta);
          score_scale[static_cast<size_t>(e * c.heads + h)] = a * (d_abs[static_cast<size_t>(e - b)] + delta_abs);
          for (int64_t k = h * width; k < (h + 1) * width; ++k)
            ref_values[static_cast<size_t>(e * c.cols + k)] = a * g[static_cast<size_t>(n * c.cols + k)];
        }
      }
    }
    const double ops = static_cast<double>(c.edges * width);
    EXPECT_TRUE(all_close_sum(grad_scores.to_doubles(), ref_scores, score_scale, tolerance_for(dtype, ops),
                              "grad_scores " + case_name(c)));
    EXPECT_TRUE(all_close(grad_values.to_doubles(), ref_values, tolerance_for(dtype, 8), "grad_values " + case_name(c)));
  }
}

// The 16-bit kernels against the f32 kernel on the same (rounded) inputs.
TEST_P(AttentionTest, LowPrecisionMatchesF32) {
  const DType dtype = GetParam();
  if (dtype != DType::bf16 && dtype != DType::f16) GTEST_SKIP() << "16-bit dtypes only";
  for (const AttentionCase& c : kCases) {
    const Inputs low(c, dtype);
    Inputs f32(c, DType::f32);
    f32.scores = Tensor::from_doubles(low.scores.to_doubles(), low.scores.shape(), DType::f32);
    f32.values = Tensor::from_doubles(low.values.to_doubles(), low.values.shape(), DType::f32);
    const Forward a = run_forward(low), b = run_forward(f32);
    const Reference r = reference(f32);
    EXPECT_TRUE(all_close_sum(a.out.to_doubles(), b.out.to_doubles(), r.out_scale,
                              tolerance_for(dtype, static_cast<double>(c.edges)), "out vs f32 " + case_name(c)));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AttentionTest, ::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16),
                         [](const ::testing::TestParamInfo<DType>& info) { return dtype_name(info.param); });

// ---- gradients against finite differences (f64) --------------------------------------------

TEST(AttentionGradient, MatchesFiniteDifferences) {
  for (const AttentionCase& c : kCases) {
    if (c.edges == 0) continue;
    Inputs in(c, DType::f64);
    const Tensor probe = random_tensor({c.nodes, c.cols}, DType::f64, 14);
    const auto weights = probe.to_doubles();
    auto loss = [&] {
      const Forward f = run_forward(in);
      const auto out = f.out.to_doubles();
      double sum = 0;
      for (size_t i = 0; i < out.size(); ++i) sum += weights[i] * out[i];
      return sum;
    };
    const Forward f = run_forward(in);
    Tensor grad_scores = Tensor::empty({c.edges, c.heads}, DType::f64), grad_values = Tensor::empty({c.edges, c.cols}, DType::f64);
    for (const char* call : {"first call", "second call (assigned, not accumulated)"}) {
      kernels::segment_softmax_sum_backward(grad_scores, grad_values, probe, in.scores, in.values, f.lse, in.offsets);
      EXPECT_TRUE(gradient_matches(grad_scores, in.scores, loss, "scores " + case_name(c) + ", " + call));
      EXPECT_TRUE(gradient_matches(grad_values, in.values, loss, "values " + case_name(c) + ", " + call));
    }
  }
}

// ---- determinism, meta, bad operands ------------------------------------------------------------

TEST(Attention, SameBitsForAnyThreadCount) {
  const AttentionCase c{4001, 40000, 4, 16};  // above the parallel threshold
  const Inputs in(c, DType::f32);
  const Tensor grad_out = random_tensor({c.nodes, c.cols}, DType::f32, 15);
  std::vector<std::vector<double>> results;
  const int before = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    const Forward f = run_forward(in);
    Tensor gs = Tensor::empty({c.edges, c.heads}, DType::f32), gv = Tensor::empty({c.edges, c.cols}, DType::f32);
    kernels::segment_softmax_sum_backward(gs, gv, grad_out, in.scores, in.values, f.lse, in.offsets);
    std::vector<double> all = f.out.to_doubles();
    for (const Tensor* t : {&gs, &gv}) {
      const auto v = t->to_doubles();
      all.insert(all.end(), v.begin(), v.end());
    }
    results.push_back(all);
  }
  omp_set_num_threads(before);
  ASSERT_EQ(results[0].size(), results[1].size());
  EXPECT_TRUE(std::equal(results[0].begin(), results[0].end(), results[1].begin()));
}

TEST(Attention, MetaChecksShapesAndComputesNothing) {
  Tensor scores = Tensor::empty({10, 2}, DType::bf16, Device::meta), values = Tensor::empty({10, 8}, DType::bf16, Device::meta);
  Tensor offsets = Tensor::empty({4}, DType::i32, Device::meta);
  Tensor out = Tensor::empty({3, 8}, DType::bf16, Device::meta), lse = Tensor::empty({3, 2}, DType::f32, Device::meta);
  EXPECT_NO_THROW(kernels::segment_softmax_sum_forward(out, lse, scores, values, offsets));
  Tensor wrong_lse = Tensor::empty({3, 2}, DType::bf16, Device::meta);
  EXPECT_THROW(kernels::segment_softmax_sum_forward(out, wrong_lse, scores, values, offsets), std::invalid_argument);
}

TEST(Attention, RefusesBadOperands) {
  const Inputs in({5, 20, 2, 6}, DType::f32);
  Forward f = run_forward(in);
  // Channels that do not split into the heads.
  Tensor odd_values = random_tensor({20, 5}, DType::f32, 3), odd_out = Tensor::empty({5, 5}, DType::f32);
  EXPECT_THROW(kernels::segment_softmax_sum_forward(odd_out, f.lse, in.scores, odd_values, in.offsets),
               std::invalid_argument);
  // Offsets that decrease, or do not end at the edge count.
  std::vector<int32_t> bad = in.host_offsets;
  bad[2] = bad[3] + 1;
  Tensor bad_offsets = Tensor::from_host(bad.data(), {6}, DType::i32);
  EXPECT_THROW(kernels::segment_softmax_sum_forward(f.out, f.lse, in.scores, in.values, bad_offsets),
               std::invalid_argument);
  bad = in.host_offsets;
  bad[5] = 19;
  bad_offsets = Tensor::from_host(bad.data(), {6}, DType::i32);
  EXPECT_THROW(kernels::segment_softmax_sum_forward(f.out, f.lse, in.scores, in.values, bad_offsets),
               std::invalid_argument);
  // Values of another dtype than the scores.
  Tensor f16_values = random_tensor({20, 6}, DType::f16, 3);
  EXPECT_THROW(kernels::segment_softmax_sum_forward(f.out, f.lse, in.scores, f16_values, in.offsets),
               std::invalid_argument);
}

}  // namespace
