// test_autograd.cpp: the tape. Every op's glue against finite differences in
// f64 through a scalar loss, a value used twice, backward twice, accumulation,
// saved tensors released, no-grad, checkpointing (bitwise identical gradients),
// and a composite message-passing model that trains and whose dry run on meta
// matches the cpu run's peak.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "autograd/ops.h"
#include "autograd/optimizer.h"
#include "autograd/precision.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "runtime/profile.h"
#include "tests/test_util.h"

using namespace gc;
using test::random_tensor;

namespace {

// Checks d loss / d input for each input (f64) of op against finite differences.
void check_op_gradients(const std::string& what, std::vector<Var> inputs,
                        const std::function<Var(const std::vector<Var>&)>& op) {
  Var out = op(inputs);
  Tensor probe = random_tensor(out.shape(), out.dtype(), 999);
  Var loss = sum_all(mul(out, Var(probe)));
  backward(loss);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    ASSERT_TRUE(inputs[i].grad().defined()) << what << " input " << i << " got no gradient";
    Tensor x = inputs[i].value();
    auto f = [&]() {
      NoGradGuard no_grad;
      Var o = op(inputs);
      return scalar_value(sum_all(mul(o, Var(probe))).value());
    };
    EXPECT_TRUE(test::gradient_matches(inputs[i].grad(), x, f, what + " input " + std::to_string(i)));
  }
}

Var param(const Shape& shape, uint64_t seed, DType dtype = DType::f64, double scale = 1.0) {
  return Var(random_tensor(shape, dtype, seed, scale), true, "p" + std::to_string(seed));
}

IndexCsr make_csr(const std::vector<double>& index, int64_t num_nodes) {
  IndexCsr csr;
  csr.index = Tensor::from_doubles(index, {static_cast<int64_t>(index.size())}, DType::i32);
  csr.order = Tensor::empty({static_cast<int64_t>(index.size())}, DType::i32);
  csr.offsets = Tensor::empty({num_nodes + 1}, DType::i32);
  csr.num_nodes = num_nodes;
  kernels::build_csr(csr.order, csr.offsets, csr.index, num_nodes);
  return csr;
}

// An edge block's gather: edges whose index touches only the listed rows, grouped
// by position in that list (IndexCsr::rows), as model/device_geometry.cpp builds it.
IndexCsr make_listed_csr(const std::vector<double>& index, const std::vector<double>& rows, int64_t num_nodes) {
  std::vector<double> position;
  for (double n : index)
    for (size_t u = 0; u < rows.size(); ++u)
      if (rows[u] == n) position.push_back(static_cast<double>(u));
  const int64_t count = static_cast<int64_t>(rows.size());
  IndexCsr local = make_csr(position, count);
  local.index = Tensor::from_doubles(index, {static_cast<int64_t>(index.size())}, DType::i32);
  local.rows = Tensor::from_doubles(rows, {count}, DType::i32);
  local.num_nodes = num_nodes;
  return local;
}

}  // namespace

TEST(Autograd, LinearGradients) {
  check_op_gradients("linear", {param({5, 3}, 1), param({3, 4}, 2), param({4}, 3)},
                     [](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); });
  check_op_gradients("linear without bias", {param({1, 7}, 4), param({7, 2}, 5)},
                     [](const std::vector<Var>& v) { return linear(v[0], v[1], Var()); });
  check_op_gradients("linear on a row block of W", {param({5, 3}, 6), param({8, 4}, 7), param({4}, 8)},
                     [](const std::vector<Var>& v) { return linear(v[0], v[1], v[2], 2); });
}

TEST(Autograd, ElementwiseGradients) {
  check_op_gradients("add", {param({4, 3}, 1), param({4, 3}, 2)},
                     [](const std::vector<Var>& v) { return add(v[0], v[1]); });
  check_op_gradients("mul", {param({4, 3}, 3), param({4, 3}, 4)},
                     [](const std::vector<Var>& v) { return mul(v[0], v[1]); });
  check_op_gradients("scale", {param({31}, 5)}, [](const std::vector<Var>& v) { return scale(v[0], -2.5); });
  check_op_gradients("silu", {param({33}, 6, DType::f64, 4.0)}, [](const std::vector<Var>& v) { return silu(v[0]); });
  check_op_gradients("sigmoid", {param({33}, 7, DType::f64, 6.0)},
                     [](const std::vector<Var>& v) { return sigmoid(v[0]); });
  // A gate: the value used twice (gated by its own sigmoid).
  check_op_gradients("x * sigmoid(x)", {param({4, 5}, 8, DType::f64, 3.0)},
                     [](const std::vector<Var>& v) { return mul(v[0], sigmoid(v[0])); });
}

TEST(Autograd, SegmentSoftmaxSumGradients) {
  // 5 receivers (receiver 3 without edges), 11 edges sorted by receiver, 2 heads of 3 channels.
  const std::vector<double> offsets_values = {0, 4, 5, 9, 9, 11};
  const Tensor offsets = Tensor::from_doubles(offsets_values, {6}, DType::i32);
  check_op_gradients("segment_softmax_sum", {param({11, 2}, 9, DType::f64, 3.0), param({11, 6}, 10)},
                     [offsets](const std::vector<Var>& v) { return segment_softmax_sum(v[0], v[1], offsets); });
  // Scores computed from the values (the attention block's use: both from one message).
  check_op_gradients("segment_softmax_sum of one tensor", {param({11, 6}, 11), param({6, 2}, 12)},
                     [offsets](const std::vector<Var>& v) {
                       return segment_softmax_sum(linear(v[0], v[1], Var()), v[0], offsets);
                     });
}

TEST(Autograd, LayerNormGradients) {
  check_op_gradients("layernorm", {param({5, 7}, 1), param({7}, 2), param({7}, 3)},
                     [](const std::vector<Var>& v) { return layernorm(v[0], v[1], v[2], 1e-5); });
}

TEST(Autograd, GraphOpGradients) {
  IndexCsr csr = make_csr({2, 0, 2, 1, 4, 2, 0}, 5);  // node 3 has no edges
  check_op_gradients("gather_rows", {param({5, 3}, 1)},
                     [&](const std::vector<Var>& v) { return gather_rows(v[0], csr); });
  // The backward that adds into the listed rows only: alone (the gradient
  // created as zeros) and after a full-size gather's contribution.
  IndexCsr listed = make_listed_csr({4, 0, 4, 1, 0, 0, 1}, {4, 1, 0}, 5);  // rows 2 and 3 untouched
  check_op_gradients("gather_rows over listed rows", {param({5, 3}, 3)},
                     [&](const std::vector<Var>& v) { return gather_rows(v[0], listed); });
  check_op_gradients("gather_rows, full then listed rows", {param({5, 3}, 4)}, [&](const std::vector<Var>& v) {
    Var h = mul(v[0], v[0]);  // not a leaf: the first contribution is assigned, the second added by rows
    return add(gather_rows(h, csr), gather_rows(h, listed));
  });
  IndexCsr receivers = make_csr({0, 0, 1, 1, 1, 3, 3}, 4);
  check_op_gradients("add_gathered", {param({7, 3}, 5), param({5, 3}, 6), param({4, 3}, 7)},
                     [&](const std::vector<Var>& v) { return add_gathered(v[0], v[1], csr, v[2], receivers); });
  check_op_gradients("add_gathered over listed rows", {param({7, 3}, 8), param({5, 3}, 9), param({4, 3}, 10)},
                     [&](const std::vector<Var>& v) { return add_gathered(v[0], v[1], listed, v[2], receivers); });
  Tensor offsets = Tensor::from_doubles({0, 2, 2, 5, 7}, {5}, DType::i32);  // 4 receivers, one empty
  check_op_gradients("segment_sum", {param({7, 3}, 2)},
                     [&](const std::vector<Var>& v) { return segment_sum(v[0], offsets, DType::f64); });
  // A processor's edges: the messages summed and added to the residual; the sum's
  // backward folds into the gradient the residual's backward left (both orders).
  check_op_gradients("segment_sum beside a residual", {param({7, 3}, 11), param({7, 3}, 12)},
                     [&](const std::vector<Var>& v) {
                       Var m = mul(v[0], v[0]);
                       Var nodes = segment_sum(m, offsets, DType::f64);
                       return concat_rows({nodes, add(v[1], m)});
                     });
  check_op_gradients("segment_sum after a residual", {param({7, 3}, 13), param({7, 3}, 14)},
                     [&](const std::vector<Var>& v) {
                       Var m = mul(v[0], v[0]);
                       Var edges = add(v[1], m);
                       return concat_rows({edges, segment_sum(m, offsets, DType::f64)});
                     });
}

// Listing the rows changes no bit of the gradient: a bf16 parameter (f32
// gradient) and a bf16 intermediate, against the same gathers over all nodes.
TEST(Autograd, GatherOverListedRowsIsBitwiseTheFullGather) {
  const std::vector<double> index = {4, 0, 4, 1, 0, 0, 1};
  IndexCsr full = make_csr(index, 5), listed = make_listed_csr(index, {0, 1, 4}, 5);
  const Tensor probe = random_tensor({7, 6}, DType::bf16, 5);
  std::vector<Tensor> grads;
  for (const IndexCsr* csr : {&full, &listed}) {
    Var x(random_tensor({5, 6}, DType::bf16, 6), true, "x");
    Var h = mul(x, x);
    backward(sum_all(mul(add(gather_rows(h, *csr), gather_rows(x, *csr)), Var(probe))));
    grads.push_back(x.grad());
  }
  ASSERT_EQ(grads[0].dtype(), DType::f32);
  ASSERT_EQ(grads[1].dtype(), DType::f32);
  EXPECT_EQ(grads[0].to_doubles(), grads[1].to_doubles());
}

// The fused edge sum is bitwise the gathers and adds it replaces, forward and
// backward, in bf16 (parameters with f32 gradients).
TEST(Autograd, AddGatheredIsBitwiseTheSeparateOps) {
  IndexCsr senders = make_csr({4, 0, 4, 1, 0, 0, 1}, 5), receivers = make_csr({0, 0, 1, 1, 1, 3, 3}, 4);
  const Tensor probe = random_tensor({7, 6}, DType::bf16, 7);
  std::vector<std::vector<double>> results;
  for (bool fused : {false, true}) {
    Var base(random_tensor({7, 6}, DType::bf16, 8), true, "base");
    Var s(random_tensor({5, 6}, DType::bf16, 9), true, "s");
    Var r(random_tensor({4, 6}, DType::bf16, 10), true, "r");
    Var out = fused ? add_gathered(base, s, senders, r, receivers)
                    : add(add(base, gather_rows(s, senders)), gather_rows(r, receivers));
    results.push_back(out.value().to_doubles());
    backward(sum_all(mul(out, Var(probe))));
    for (const Var* v : {&base, &s, &r}) results.push_back(v->grad().to_doubles());
  }
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(results[i], results[i + 4]) << "output, then the three gradients: " << i;
}

TEST(Autograd, ShapeOpGradients) {
  check_op_gradients("concat_cols", {param({3, 2}, 1), param({3, 5}, 2)},
                     [](const std::vector<Var>& v) { return concat_cols({v[0], v[1]}); });
  check_op_gradients("split_cols, one part unused", {param({3, 6}, 3)}, [](const std::vector<Var>& v) {
    auto parts = split_cols(v[0], {1, 3, 2});
    return concat_cols({mul(parts[0], parts[0]), parts[2]});
  });
  check_op_gradients("split_cols all parts", {param({3, 6}, 4)}, [](const std::vector<Var>& v) {
    auto parts = split_cols(v[0], {2, 4});
    return concat_cols({parts[1], scale(parts[0], 2.0)});
  });
  check_op_gradients("concat_rows", {param({2, 3}, 8), param({5, 3}, 9)},
                     [](const std::vector<Var>& v) { return concat_rows({v[0], v[1], v[0]}); });
  check_op_gradients("slice_rows", {param({6, 2}, 5)},
                     [](const std::vector<Var>& v) { return slice_rows(v[0], 2, 3); });
  check_op_gradients("cast", {param({4, 2}, 6)}, [](const std::vector<Var>& v) { return cast(v[0], DType::f64); });
}

TEST(Autograd, ReductionAndLossGradients) {
  check_op_gradients("mean_all", {param({4, 5}, 1)}, [](const std::vector<Var>& v) { return mean_all(v[0]); });
  Tensor target = random_tensor({6, 3}, DType::f64, 7);
  Tensor rw = Tensor::from_doubles({0.5, 1.5, 1.0, 0.8, 1.2, 1.0}, {6}, DType::f32);
  Tensor cw = Tensor::from_doubles({1.0, 0.1, 0.3}, {3}, DType::f32);
  check_op_gradients("weighted_mse", {param({6, 3}, 2)},
                     [&](const std::vector<Var>& v) { return weighted_mse(v[0], target, rw, cw); });
}

TEST(Autograd, ValueUsedTwiceGetsBothPaths) {
  Var x = param({3, 3}, 1);
  Var y = mul(x, x);  // d/dx sum(x*x) = 2x
  backward(sum_all(y));
  auto g = x.grad().to_doubles();
  auto xv = x.value().to_doubles();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_DOUBLE_EQ(g[i], 2 * xv[i]);
  Var z = param({4}, 2);
  backward(sum_all(add(z, add(z, z))));  // 3
  for (double v : z.grad().to_doubles()) EXPECT_EQ(v, 3.0);
}

TEST(Autograd, BackwardTwiceIsAnError) {
  Var x = param({2, 2}, 1);
  Var loss = sum_all(mul(x, x));
  backward(loss);
  try {
    backward(loss);
    FAIL() << "expected an error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("already called"), std::string::npos);
  }
}

TEST(Autograd, ParameterGradientsAccumulateUntilZeroed) {
  Var w = param({3, 2}, 1);
  Var x(random_tensor({4, 3}, DType::f64, 2));
  backward(sum_all(linear(x, w, Var())));
  auto once = w.grad().to_doubles();
  backward(sum_all(linear(x, w, Var())));
  auto twice = w.grad().to_doubles();
  for (size_t i = 0; i < once.size(); ++i) EXPECT_DOUBLE_EQ(twice[i], 2 * once[i]);
  w.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, SavedTensorsAreActivationsAndReleased) {
  auto& alloc = allocator_for(Device::cpu);
  Var w = param({64, 64}, 1, DType::f32);
  Var x;
  {
    MemoryScope data(Category::input);
    x = Var(random_tensor({128, 64}, DType::f32, 2));
  }
  const int64_t base = alloc.stats().allocated;
  Var loss;
  {
    MemoryScope scope("block");
    Var h = silu(linear(x, w, Var()));  // silu saves the linear output
    loss = sum_all(h);
  }
  auto s = alloc.stats();
  EXPECT_GT(s.category_allocated[static_cast<int>(Category::activation)], 0);
  backward(loss);
  loss = Var();
  // Only the parameter gradient remains.
  EXPECT_EQ(alloc.stats().allocated - base, static_cast<int64_t>(round_request_bytes(64 * 64 * 4)));
  EXPECT_EQ(alloc.stats().category_allocated[static_cast<int>(Category::activation)], 0);
}

TEST(Autograd, NoGradRecordsNothing) {
  Var w = param({3, 3}, 1);
  Var x(random_tensor({2, 3}, DType::f64, 2));
  {
    NoGradGuard no_grad;
    Var y = linear(x, w, Var());
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(current_tape().size(), 0u);
}

namespace {
// A small residual MLP chain: h = h + LN(W2 silu(W1 h)).
struct ResBlock {
  Var w1, b1, w2, b2, gamma, beta;
  ResBlock(int64_t width, uint64_t seed, DType dtype)
      : w1(param({width, width}, seed, dtype, 0.3)), b1(param({width}, seed + 1, dtype, 0.1)),
        w2(param({width, width}, seed + 2, dtype, 0.3)), b2(param({width}, seed + 3, dtype, 0.1)),
        gamma(param({width}, seed + 4, dtype, 1.0)), beta(param({width}, seed + 5, dtype, 0.1)) {}
  Var operator()(const Var& h) const {
    return add(h, layernorm(linear(silu(linear(h, w1, b1)), w2, b2), gamma, beta, 1e-5));
  }
  std::vector<Var> params() const { return {w1, b1, w2, b2, gamma, beta}; }
};
}  // namespace

TEST(Autograd, CheckpointGradientsBitwiseIdentical) {
  const int64_t width = 33;
  std::vector<ResBlock> blocks;
  for (int i = 0; i < 4; ++i) blocks.emplace_back(width, 100 + 10 * i, DType::f32);
  Var x(random_tensor({65, width}, DType::f32, 7), true);
  auto run = [&](bool use_checkpoint) {
    for (auto& b : blocks)
      for (Var p : b.params()) p.zero_grad();
    x.zero_grad();
    Var h = x;
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (use_checkpoint && i % 2 == 0) {
        const ResBlock& a = blocks[i];
        const ResBlock& b = blocks[i + 1];
        h = checkpoint("pair", [&](const std::vector<Var>& in) { return std::vector<Var>{b(a(in[0]))}; }, {h})[0];
        ++i;
      } else {
        h = blocks[i](h);
      }
    }
    backward(sum_all(mul(h, h)));
    std::vector<std::vector<double>> grads;
    for (auto& b : blocks)
      for (Var p : b.params()) grads.push_back(p.grad().to_doubles());
    grads.push_back(x.grad().to_doubles());
    return grads;
  };
  auto plain = run(false);
  auto checkpointed = run(true);
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (size_t i = 0; i < plain.size(); ++i)
    for (size_t j = 0; j < plain[i].size(); ++j)
      ASSERT_EQ(plain[i][j], checkpointed[i][j]) << "tensor " << i << " element " << j;
}

TEST(Autograd, CheckpointLowersThePeak) {
  const int64_t width = 64;
  std::vector<ResBlock> blocks;
  for (int i = 0; i < 8; ++i) blocks.emplace_back(width, 200 + 10 * i, DType::f32);
  auto peak_of = [&](bool use_checkpoint) {
    auto& alloc = allocator_for(Device::meta);
    std::vector<ResBlock> meta_blocks;
    for (auto& b : blocks) {
      ResBlock mb = b;
      for (Var* p : {&mb.w1, &mb.b1, &mb.w2, &mb.b2, &mb.gamma, &mb.beta})
        *p = Var(Tensor::empty(p->shape(), DType::f32, Device::meta), true, p->name());
      meta_blocks.push_back(mb);
    }
    Var x(Tensor::empty({4096, width}, DType::f32, Device::meta));
    alloc.reset_peak();
    const int64_t base = alloc.stats().allocated;
    Var h = x;
    for (auto& b : meta_blocks) {
      if (use_checkpoint)
        h = checkpoint("layer", [&](const std::vector<Var>& in) { return std::vector<Var>{b(in[0])}; }, {h})[0];
      else
        h = b(h);
    }
    backward(sum_all(h));
    return alloc.stats().peak_allocated - base;
  };
  EXPECT_LT(peak_of(true), peak_of(false));
}

TEST(Autograd, MixedPrecisionUsesOneWeightCopyAndF32Gradients) {
  Var w = param({16, 8}, 1, DType::f32);
  Var x(random_tensor({10, 16}, DType::bf16, 2));
  Var y = linear(x, w, Var());
  EXPECT_EQ(y.dtype(), DType::bf16);
  backward(sum_all(y));
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  release_compute_copies();
}

// Composite: an MLP embedding, a gather/segment_sum message-passing step with
// LayerNorm, and a readout learn a smooth function of node features on a ring
// graph; the loss falls 10x, and the meta dry run peaks exactly like cpu.
namespace {
struct TinyGnn {
  Var embed_w, embed_b, edge_w, edge_b, node_w, node_b, gamma, beta, out_w, out_b;
  explicit TinyGnn(Device d) {
    auto mk = [&](const Shape& s, uint64_t seed, double scale) {
      Tensor t = d == Device::meta ? Tensor::empty(s, DType::f32, d) : random_tensor(s, DType::f32, seed, scale);
      return Var(t, true, "gnn" + std::to_string(seed));
    };
    embed_w = mk({3, 16}, 1, 0.5);
    embed_b = mk({16}, 2, 0.1);
    edge_w = mk({32, 16}, 3, 0.25);
    edge_b = mk({16}, 4, 0.1);
    node_w = mk({32, 16}, 5, 0.25);
    node_b = mk({16}, 6, 0.1);
    gamma = mk({16}, 7, 0.0);
    beta = mk({16}, 8, 0.0);
    out_w = mk({16, 1}, 9, 0.25);
    out_b = mk({1}, 10, 0.0);
    if (d != Device::meta) {
      kernels::fill(gamma.mutable_value(), 1.0);
      kernels::fill(beta.mutable_value(), 0.0);
    }
  }
  std::vector<Var> params() const {
    return {embed_w, embed_b, edge_w, edge_b, node_w, node_b, gamma, beta, out_w, out_b};
  }
  Var forward(const Var& features, const IndexCsr& senders, const Tensor& receiver_offsets) const {
    Var h = silu(linear(features, embed_w, embed_b));
    Var e = silu(linear(concat_cols({gather_rows(h, senders), gather_rows(h, senders)}), edge_w, edge_b));
    Var agg = segment_sum(e, receiver_offsets, DType::f32);
    Var h2 = add(h, layernorm(linear(concat_cols({h, agg}), node_w, node_b), gamma, beta, 1e-5));
    return linear(silu(h2), out_w, out_b);
  }
};

struct RingData {
  IndexCsr senders;
  Tensor offsets, features, target, row_weight, col_weight;
};

RingData ring_data(Device d, int64_t nodes) {
  // Each node receives from its two neighbours; edges sorted by receiver.
  std::vector<double> send, offs = {0};
  for (int64_t n = 0; n < nodes; ++n) {
    send.push_back(static_cast<double>((n + nodes - 1) % nodes));
    send.push_back(static_cast<double>((n + 1) % nodes));
    offs.push_back(static_cast<double>(2 * (n + 1)));
  }
  std::vector<double> feat, tgt;
  for (int64_t n = 0; n < nodes; ++n) {
    const double a = 2 * M_PI * static_cast<double>(n) / static_cast<double>(nodes);
    feat.insert(feat.end(), {std::cos(a), std::sin(a), 0.5});
    tgt.push_back(std::sin(2 * a) + 0.5 * std::cos(a));
  }
  RingData r;
  IndexCsr cpu_csr = make_csr(send, nodes);
  r.senders = cpu_csr;
  r.offsets = Tensor::from_doubles(offs, {nodes + 1}, DType::i32);
  r.features = Tensor::from_doubles(feat, {nodes, 3}, DType::f32);
  r.target = Tensor::from_doubles(tgt, {nodes, 1}, DType::f32);
  r.row_weight = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(nodes), 1.0), {nodes}, DType::f32);
  r.col_weight = Tensor::from_doubles({1.0}, {1}, DType::f32);
  if (d == Device::meta) {
    auto m = [](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), Device::meta); };
    r.senders.index = m(r.senders.index);
    r.senders.order = m(r.senders.order);
    r.senders.offsets = m(r.senders.offsets);
    r.offsets = m(r.offsets);
    r.features = m(r.features);
    r.target = m(r.target);
    r.row_weight = m(r.row_weight);
    r.col_weight = m(r.col_weight);
  }
  return r;
}
}  // namespace

TEST(Autograd, CompositeGnnTrainsAndMetaPeakEqualsCpu) {
  set_meta_target(Device::cpu);
  auto train = [](Device d, int steps, double* first, double* last) {
    auto& alloc = allocator_for(d);
    alloc.empty_cache();
    const int64_t base = alloc.stats().allocated;
    int64_t peak = 0, reserved_peak = 0;
    {
      RingData data = ring_data(d, 64);
      TinyGnn model(d);
      AdamW opt(model.params(), {0.01, 0.9, 0.95, 1e-8, 0.0});
      alloc.reset_peak();
      for (int step = 0; step < steps; ++step) {
        Var loss = weighted_mse(model.forward(Var(data.features), data.senders, data.offsets), data.target,
                                data.row_weight, data.col_weight);
        if (step == 0 && first) *first = scalar_value(loss.value());
        if (last) *last = scalar_value(loss.value());
        backward(loss);
        opt.step(0.01, clip_factor(opt.grad_norm(), 32.0));
        opt.zero_grad();
      }
      peak = alloc.stats().peak_allocated - base;
      reserved_peak = alloc.stats().peak_reserved;
    }
    EXPECT_EQ(alloc.stats().allocated, base);
    return std::make_pair(peak, reserved_peak);
  };
  double first = 0, last = 0;
  auto cpu = train(Device::cpu, 300, &first, &last);
  EXPECT_LT(last, first / 10) << "loss " << first << " -> " << last;
  auto cpu_short = train(Device::cpu, 3, nullptr, nullptr);
  auto meta = train(Device::meta, 3, nullptr, nullptr);
  EXPECT_EQ(cpu_short.first, meta.first);
  EXPECT_EQ(cpu.first, meta.first);
}

// An MLP's biases (linear -> silu -> linear -> layernorm): on meta standing for
// cuda, SiLU's and LayerNorm's backward sum them (silu_backward_bias,
// layernorm_backward_bias) and no product's backward reads the gradient again for
// them; on meta standing for the cpu the products sum them, as they always did.
// The modelled launches say which kernels ran.
TEST(Autograd, AnMlpsBiasGradientsAreSummedByItsSiluAndLayerNormOnCuda) {
  for (Device target : {Device::cuda, Device::cpu}) {
    const test::MetaTargetGuard guard(target);
    const Device meta = Device::meta;
    Var x(Tensor::empty({300, 8}, DType::bf16, meta));
    Var w0(Tensor::empty({8, 16}, DType::f32, meta), true, "w0"), b0(Tensor::empty({16}, DType::f32, meta), true, "b0");
    Var w1(Tensor::empty({16, 16}, DType::f32, meta), true, "w1"), b1(Tensor::empty({16}, DType::f32, meta), true, "b1");
    Var gamma(Tensor::empty({16}, DType::f32, meta), true, "gamma"), beta(Tensor::empty({16}, DType::f32, meta), true, "beta");
    Var h = silu(linear(x, w0, b0, 0, true), b0);
    Var y = layernorm(linear(h, w1, b1, 0, true), gamma, beta, 1e-5, b1);
    profile_enable(true);
    profile_reset();
    backward(sum_all(y));
    const Profile p = profile_collect();
    profile_enable(false);
    auto launches = [&](const char* op) { return p.ops.count(op) ? p.ops.at(op).cost.launches : 0.0; };
    const std::string where = std::string("meta standing for ") + device_name(target);
    if (target == Device::cuda) {
      EXPECT_EQ(launches("silu_backward_bias"), 2) << where;       // the column sums' two kernels
      EXPECT_EQ(launches("layernorm_backward_bias"), 2) << where;  // the fused backward and the fold
      EXPECT_EQ(launches("silu_backward") + launches("layernorm_backward") + launches("sum_rows") +
                    launches("linear_backward_weight_and_bias"),
                0)
          << where;
    } else {
      EXPECT_EQ(p.ops.count("silu_backward_bias") + p.ops.count("layernorm_backward_bias"), 0u) << where;
      EXPECT_EQ(p.ops.count("silu_backward") + p.ops.count("layernorm_backward"), 2u) << where;
      EXPECT_EQ(p.ops.count("sum_rows"), 1u) << where;  // both biases, through the one op
    }
    for (const Var* b : {&b0, &b1}) {
      ASSERT_TRUE(b->grad().defined()) << where << " " << b->name();
      EXPECT_EQ(b->grad().shape(), Shape({16})) << where;
    }
    release_compute_copies();
  }
}
