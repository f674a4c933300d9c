// test_traffic.cpp: the cost model of kernels/traffic.h as the entry points
// count it on meta (a dry run standing for the cuda kernels): FLOPs, bytes,
// launches and host synchronizations of single ops worked out by hand from
// kernels/cuda/*.cu, and nothing counted for cpu ops. That the counts equal what
// the cuda backend asks of the device is tests/cudasim/test_cuda_traffic.cpp.
#include <gtest/gtest.h>

#include "kernels/cuda/scratch.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/reduce.h"
#include "runtime/profile.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using test::MetaTargetGuard;

// The modelled cost of what `run` does, by family.
template <class Run>
Profile cost_of(Run run) {
  profile_reset();
  run();
  Profile p = profile_collect();
  profile_reset();
  return p;
}

CostTotals family(const Profile& p, OpFamily f) {
  CostTotals c;
  for (int phase = 0; phase < kNumPhases; ++phase) c += p.cost[static_cast<size_t>(phase)][static_cast<size_t>(f)];
  return c;
}

TEST(TrafficModel, LinearForwardIsOneCublasCallWithTheBiasInItsOutputPass) {
  MetaTargetGuard target(Device::cuda);
  const int64_t m = 1000, k = 474, n = 512;
  Tensor x = Tensor::empty({m, k}, DType::bf16, Device::meta);
  Tensor W = Tensor::empty({k, n}, DType::bf16, Device::meta);
  Tensor b = Tensor::empty({n}, DType::f32, Device::meta);
  Tensor y = Tensor::empty({m, n}, DType::bf16, Device::meta);
  Tensor ws = Tensor::empty({static_cast<int64_t>(kernels::linear_workspace_bytes(Device::meta, m, k, n) / 4 + 1)},
                            DType::i32, Device::meta);
  const CostTotals with_bias = cost_of([&] { kernels::linear_forward(y, x, W, b, ws); }).total_cost();
  // The f32 bias rounded to bf16 first (one small kernel: f32 read, bf16 written), then one
  // cuBLASLt call: A and B read, C written, the rounded bias read in the same pass.
  EXPECT_EQ(with_bias.launches, 2);
  EXPECT_EQ(with_bias.host_syncs, 0);
  EXPECT_DOUBLE_EQ(with_bias.flops, 2.0 * m * n * k + m * n);
  EXPECT_DOUBLE_EQ(with_bias.bytes, 2.0 * (m * k + k * n + m * n) + (4.0 + 2.0) * n + 2.0 * n);
  // A bias of C's dtype: the one cuBLASLt call.
  Tensor b16 = Tensor::empty({n}, DType::bf16, Device::meta);
  const CostTotals bf16_bias = cost_of([&] { kernels::linear_forward(y, x, W, b16, ws); }).total_cost();
  EXPECT_EQ(bf16_bias.launches, 1);
  EXPECT_DOUBLE_EQ(bf16_bias.bytes, 2.0 * (m * k + k * n + m * n) + 2.0 * n);
  // A bias cuBLASLt is not asked to add (f64): a second pass reads and writes C.
  Tensor x64 = Tensor::empty({m, k}, DType::f64, Device::meta), W64 = Tensor::empty({k, n}, DType::f64, Device::meta),
         b64 = Tensor::empty({n}, DType::f64, Device::meta), y64 = Tensor::empty({m, n}, DType::f64, Device::meta);
  const CostTotals f64_bias = cost_of([&] { kernels::linear_forward(y64, x64, W64, b64, ws); }).total_cost();
  EXPECT_EQ(f64_bias.launches, 2);
  EXPECT_DOUBLE_EQ(f64_bias.bytes, 8.0 * (m * k + k * n + m * n) + 8.0 * 2 * m * n + 8.0 * n);
  const CostTotals no_bias = cost_of([&] { kernels::linear_forward(y, x, W, Tensor(), ws); }).total_cost();
  EXPECT_EQ(no_bias.launches, 1);
  EXPECT_DOUBLE_EQ(no_bias.bytes, 2.0 * (m * k + k * n + m * n));
  // The weight gradient accumulates: C (f32) is read as well as written.
  Tensor gW = Tensor::empty({k, n}, DType::f32, Device::meta);
  const CostTotals weight = cost_of([&] { kernels::linear_backward_weight(gW, x, y, ws); }).total_cost();
  EXPECT_DOUBLE_EQ(weight.bytes, 2.0 * (m * k + m * n) + 2 * 4.0 * k * n);
  // With the bias gradient: the product, then sum_rows over y (modelled as sum_rows is).
  Tensor gb = Tensor::empty({n}, DType::f32, Device::meta);
  const CostTotals both = cost_of([&] { kernels::linear_backward_weight_and_bias(gW, gb, x, y, ws); }).total_cost();
  const CostTotals rows = cost_of([&] { kernels::sum_rows(gb, y, true); }).total_cost();
  EXPECT_EQ(both.launches, weight.launches + rows.launches);
  EXPECT_DOUBLE_EQ(both.bytes, weight.bytes + rows.bytes);
  EXPECT_GE(rows.bytes, 2.0 * m * n);  // y read once at least
  // Standing for the cpu, the product and then sum_rows (no launches modelled for the cpu's own run).
  EXPECT_FALSE(kernels::bias_gradient_in_weight_product(Device::cpu, DType::f32));
  EXPECT_TRUE(kernels::bias_gradient_in_weight_product(Device::meta, DType::f32));
  EXPECT_FALSE(kernels::bias_gradient_in_weight_product(Device::meta, DType::f64));
}

TEST(TrafficModel, GraphOpsCheckTheirIndicesWithABlockingReadBack) {
  MetaTargetGuard target(Device::cuda);
  const int64_t nodes = 50, edges = 200, cols = 64;
  Tensor x = Tensor::empty({nodes, cols}, DType::f32, Device::meta);
  Tensor index = Tensor::empty({edges}, DType::i32, Device::meta);
  Tensor out = Tensor::empty({edges, cols}, DType::bf16, Device::meta);
  const Profile gather = cost_of([&] { kernels::gather_rows_forward(out, x, index); });
  EXPECT_EQ(family(gather, OpFamily::index_check).launches, 3);  // reset, check, copy back
  EXPECT_EQ(family(gather, OpFamily::index_check).host_syncs, 1);
  EXPECT_EQ(family(gather, OpFamily::gather).launches, 1);
  EXPECT_DOUBLE_EQ(family(gather, OpFamily::gather).bytes, edges * cols * (4.0 + 2.0) + edges * 4.0);

  Tensor offsets = Tensor::empty({nodes + 1}, DType::i32, Device::meta);
  Tensor order = Tensor::empty({edges}, DType::i32, Device::meta);
  Tensor grad_x = Tensor::empty({nodes, cols}, DType::f32, Device::meta);
  const Profile backward = cost_of([&] { kernels::gather_rows_backward(grad_x, out, order, offsets); });
  EXPECT_EQ(family(backward, OpFamily::index_check).launches, 6);  // offsets and order, 3 each
  EXPECT_EQ(family(backward, OpFamily::index_check).host_syncs, 2);
  EXPECT_EQ(family(backward, OpFamily::gather).launches, 1);

  Tensor sums = Tensor::empty({nodes, cols}, DType::f32, Device::meta);
  const Profile segment = cost_of([&] { kernels::segment_sum_forward(sums, out, offsets, true); });
  EXPECT_EQ(family(segment, OpFamily::segment_sum).launches, 1);
  // out read and written (accumulating), the edges read, the offsets read.
  EXPECT_DOUBLE_EQ(family(segment, OpFamily::segment_sum).bytes,
                   2 * nodes * cols * 4.0 + edges * cols * 2.0 + (nodes + 1) * 4.0);

  // The segment sum's backward with an addend reads it as well.
  Tensor edge_grads = Tensor::empty({edges, cols}, DType::bf16, Device::meta);
  const CostTotals plain = cost_of([&] { kernels::segment_sum_backward(edge_grads, sums, offsets); }).total_cost();
  const CostTotals folded =
      cost_of([&] { kernels::segment_sum_backward(edge_grads, sums, offsets, edge_grads); }).total_cost();
  EXPECT_EQ(folded.launches, plain.launches);
  EXPECT_DOUBLE_EQ(folded.bytes - plain.bytes, edges * cols * 2.0);

  // The fused edge sum: base read, a sender and a receiver row per edge, out written.
  Tensor base = Tensor::empty({edges, cols}, DType::bf16, Device::meta);
  Tensor summed = Tensor::empty({edges, cols}, DType::bf16, Device::meta);
  Tensor projection = Tensor::empty({nodes, cols}, DType::bf16, Device::meta);
  const Profile fused = cost_of([&] { kernels::add_gathered_rows(summed, base, projection, index, projection, order); });
  EXPECT_EQ(family(fused, OpFamily::index_check).launches, 6);  // both indices, 3 each
  EXPECT_EQ(family(fused, OpFamily::gather).launches, 1);
  EXPECT_DOUBLE_EQ(family(fused, OpFamily::gather).bytes, 4 * edges * cols * 2.0 + 2 * edges * 4.0);

  // The row add touches the listed rows only: x read, those acc rows read and
  // written, the row list read; never the acc's other rows.
  const int64_t listed = 7;
  Tensor part = Tensor::empty({listed, cols}, DType::f32, Device::meta);
  Tensor rows = Tensor::empty({listed}, DType::i32, Device::meta);
  const Profile add = cost_of([&] { kernels::index_add_rows(grad_x, part, rows); });
  EXPECT_EQ(family(add, OpFamily::index_check).launches, 3);
  EXPECT_EQ(family(add, OpFamily::index_check).host_syncs, 1);
  EXPECT_EQ(family(add, OpFamily::gather).launches, 1);
  EXPECT_DOUBLE_EQ(family(add, OpFamily::gather).bytes, 3 * listed * cols * 4.0 + listed * 4.0);
}

// Graph tensors checked once at upload (check_graph_index / _offsets) make the
// step's graph ops check nothing: no launches, no read-back. Only the same view
// with the same bounds counts as checked.
TEST(TrafficModel, GraphTensorsCheckedOnceAreNotCheckedAgain) {
  MetaTargetGuard target(Device::cuda);
  const int64_t nodes = 50, edges = 200, cols = 64;
  Tensor x = Tensor::empty({nodes, cols}, DType::f32, Device::meta);
  Tensor index = Tensor::empty({edges}, DType::i32, Device::meta);
  Tensor out = Tensor::empty({edges, cols}, DType::f32, Device::meta);
  Tensor offsets = Tensor::empty({nodes + 1}, DType::i32, Device::meta);
  Tensor order = Tensor::empty({edges}, DType::i32, Device::meta);
  Tensor grad_x = Tensor::empty({nodes, cols}, DType::f32, Device::meta);
  const Profile upload = cost_of([&] {
    kernels::check_graph_index(index, nodes, "test");
    kernels::check_graph_index(order, edges, "test");
    kernels::check_graph_offsets(offsets, edges, "test");
  });
  EXPECT_EQ(family(upload, OpFamily::index_check).host_syncs, 3);  // once, at upload
  EXPECT_TRUE(kernels::index_checked(index, nodes));
  EXPECT_TRUE(kernels::index_checked(index.slice_rows(10, 20), nodes));  // a view of a checked index
  EXPECT_FALSE(kernels::index_checked(index, nodes - 1));                 // fewer rows than the bound
  EXPECT_TRUE(kernels::offsets_checked(offsets, edges));
  EXPECT_FALSE(kernels::offsets_checked(offsets, edges - 1));
  EXPECT_FALSE(kernels::offsets_checked(offsets.slice_rows(0, nodes), edges));  // another view
  const Profile step = cost_of([&] {
    kernels::gather_rows_forward(out, x, index);
    kernels::gather_rows_backward(grad_x, out, order, offsets);
    kernels::segment_sum_forward(grad_x, out, offsets, false);
    kernels::segment_sum_backward(out, grad_x, offsets);
  });
  EXPECT_EQ(family(step, OpFamily::index_check).launches, 0);
  EXPECT_EQ(step.total_cost().host_syncs, 0);
  // An index checked for more rows than x has is checked again.
  Tensor fewer = Tensor::empty({nodes - 1, cols}, DType::f32, Device::meta);
  const Profile again = cost_of([&] { kernels::gather_rows_forward(out, fewer, index); });
  EXPECT_EQ(family(again, OpFamily::index_check).host_syncs, 1);
}

TEST(TrafficModel, ColumnSumsRunOnePassPer512Columns) {
  MetaTargetGuard target(Device::cuda);
  for (const int64_t cols : {1, 512, 513, 1200}) {
    Tensor x = Tensor::empty({300, cols}, DType::bf16, Device::meta);
    Tensor out = Tensor::empty({cols}, DType::f32, Device::meta);
    const int64_t passes = (cols + 511) / 512;
    EXPECT_EQ(cost_of([&] { kernels::sum_rows(out, x, true); }).total_cost().launches, 2 * passes) << cols;
  }
}

// LayerNorm's backward on bf16 rows with f32 statistics and parameters: rows of
// at most 512 columns run the fused kernel and the fold, wider ones the grad_x
// kernel, the partials kernel and the fold, whatever the width.
TEST(TrafficModel, LayerNormBackwardReadsTheRowsOnceWhenTheyFitOneWarp) {
  MetaTargetGuard target(Device::cuda);
  for (const int64_t r : {1, 256, 300, 70000}) {
    for (const int64_t cols : {1, 512, 513, 700, 1200}) {
      const double rows = static_cast<double>(r), c = static_cast<double>(cols), elements = rows * c;
      const double blocks = static_cast<double>((r + 255) / 256), chunks = static_cast<double>((cols + 511) / 512);
      Tensor x = Tensor::empty({r, cols}, DType::bf16, Device::meta);
      Tensor y = Tensor::empty({r, cols}, DType::bf16, Device::meta);
      Tensor gamma = Tensor::empty({cols}, DType::f32, Device::meta);
      Tensor mean = Tensor::empty({r}, DType::f32, Device::meta), rstd = Tensor::empty({r}, DType::f32, Device::meta);
      Tensor gg = Tensor::empty({cols}, DType::f32, Device::meta), gb = Tensor::empty({cols}, DType::f32, Device::meta);
      const CostTotals cost =
          cost_of([&] { kernels::layernorm_backward(y, gg, gb, y, x, mean, rstd, gamma); }).total_cost();
      // x and grad_out read, grad_x written; mean, rstd and gamma read; two sums of
      // f32 partials per 256-row block and column written and read back by the
      // fold; grad_gamma and grad_beta read and written.
      double bytes = 3 * 2.0 * elements + 2 * 4.0 * rows + 4.0 * c + 2 * (2 * blocks * c * 4) + 2 * 2 * 4.0 * c;
      // Wider than one warp's 512 columns: the partials kernel reads grad_out and x
      // again, and mean and rstd once per chunk of 512 columns.
      if (cols > 512) bytes += 2 * 2.0 * elements + chunks * 2 * 4.0 * rows;
      EXPECT_EQ(cost.launches, cols <= 512 ? 2 : 3) << r << "x" << cols;
      EXPECT_DOUBLE_EQ(cost.bytes, bytes) << r << "x" << cols;
      EXPECT_DOUBLE_EQ(cost.flops, 16 * elements + 2 * blocks * c) << r << "x" << cols;
    }
  }
}

// sum_squares_many: two launches (partials, finish) per kSumsPerLaunch tensors of
// one dtype, each tensor read once, its kSumBlocks double partials written and
// read back, its total written: the bytes and FLOPs of sum_squares per tensor.
TEST(TrafficModel, SumSquaresManyIsTwoLaunchesPerChunkOfOneDtype) {
  MetaTargetGuard target(Device::cuda);
  const int64_t per_launch = cuda::kSumsPerLaunch;
  std::vector<Tensor> xs;
  double elements = 0, bytes = 0;
  for (int64_t k = 0; k < per_launch + 1; ++k) {  // f32: two launches' worth
    const int64_t n = k % 5 == 0 ? 0 : 1000 + k;
    xs.push_back(Tensor::empty({n}, DType::f32, Device::meta));
    elements += n;
    bytes += 4.0 * n + 2 * cuda::kSumBlocks * 8.0 + 4.0;
  }
  for (int64_t n : {7, 300}) {  // bf16 (also f32 sums): one launch of its own
    xs.push_back(Tensor::empty({n}, DType::bf16, Device::meta));
    elements += n;
    bytes += 2.0 * n + 2 * cuda::kSumBlocks * 8.0 + 4.0;
  }
  Tensor out = Tensor::empty({static_cast<int64_t>(xs.size())}, DType::f32, Device::meta);
  const Profile many = cost_of([&] { kernels::sum_squares_many(out, xs); });
  const CostTotals c = family(many, OpFamily::reduce);
  EXPECT_EQ(c.launches, 2 * 2 + 2);
  EXPECT_EQ(c.host_syncs, 0);
  EXPECT_DOUBLE_EQ(c.flops, 2 * elements);
  EXPECT_DOUBLE_EQ(c.bytes, bytes);
  EXPECT_EQ(many.total_cost().launches, c.launches);
  // Per tensor: the same bytes, two launches each.
  CostTotals alone;
  for (const Tensor& x : xs) {
    Tensor slot = Tensor::empty({1}, DType::f32, Device::meta);
    alone += cost_of([&] { kernels::sum_squares(slot, x); }).total_cost();
  }
  EXPECT_EQ(alone.launches, 2 * static_cast<int64_t>(xs.size()));
  EXPECT_DOUBLE_EQ(alone.bytes, c.bytes);
  // No tensor: nothing.
  Tensor none = Tensor::empty({0}, DType::f32, Device::meta);
  EXPECT_EQ(cost_of([&] { kernels::sum_squares_many(none, {}); }).total_cost().launches, 0);
}

TEST(TrafficModel, EmptyOpsLaunchNothingAndCpuOpsCostNoGpuWork) {
  MetaTargetGuard target(Device::cuda);
  Tensor empty = Tensor::empty({0, 8}, DType::f32, Device::meta);
  EXPECT_EQ(cost_of([&] { kernels::add_forward(empty, empty, empty); }).total_cost().launches, 0);
  Tensor a = Tensor::zeros({16, 8}, DType::f32, Device::cpu);
  Tensor b = Tensor::zeros({16, 8}, DType::f32, Device::cpu);
  const CostTotals cpu = cost_of([&] { kernels::add_forward(a, a, b); }).total_cost();
  EXPECT_EQ(cpu.launches, 0);
  EXPECT_EQ(cpu.bytes, 0);
  // The same on meta: one kernel reading two operands and writing one.
  Tensor m = Tensor::empty({16, 8}, DType::f32, Device::meta);
  const CostTotals meta = cost_of([&] { kernels::add_forward(m, m, m); }).total_cost();
  EXPECT_EQ(meta.launches, 1);
  EXPECT_DOUBLE_EQ(meta.bytes, 16 * 8 * 12.0);
  // A zero-filled tensor on meta: the cudaMemset a real run makes.
  EXPECT_EQ(cost_of([&] { Tensor::zeros({16, 8}, DType::f32, Device::meta); }).total_cost().launches, 1);
}

}  // namespace
}  // namespace gc
