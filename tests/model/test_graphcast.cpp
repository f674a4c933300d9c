// test_graphcast.cpp: the GraphCast network end to end on a tiny configuration:
// finite-difference gradients in f64 for parameters of every module, the concat
// trick against the plain concatenation, rematerialization plans giving bitwise
// identical gradients, meta allocations equal to cpu, and the parameter count
// of the real 512 x 16 configuration.
#include <gtest/gtest.h>

#include <map>

#include "model/graphcast.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::model;

namespace {

// Meta stands for the cpu that these tests compare it with.
struct MetaStandsForCpu {
  MetaStandsForCpu() { set_meta_target(Device::cpu); }
};

// The tiny model, built after meta is set to stand for the cpu.
struct TinyRun : private MetaStandsForCpu, test::TinyGraphCast {
  TinyRun(const GraphCastConfig& c, Device device) : test::TinyGraphCast(c, device) {}
};

// The allocations of one backward of the tiny model on `device`, its allocator's
// cache emptied first: {peak, still allocated, allocation count} counted from
// before the model was built, then the bytes of each category at the peak.
std::vector<int64_t> backward_allocations(const GraphCastConfig& c, Device device, const std::vector<StagePlan>& plan) {
  CachingAllocator& a = allocator_for(device);
  a.empty_cache();
  const int64_t base = a.stats().allocated;
  const int64_t allocs_before = a.stats().num_allocs;
  TinyRun run(c, device);
  a.reset_peak();
  backward(run.loss(plan));
  const AllocatorStats s = a.stats();
  std::vector<int64_t> figures = {s.peak_allocated - base, s.allocated - base, s.num_allocs - allocs_before};
  for (int k = 0; k < kNumCategories; ++k) figures.push_back(s.at_peak[static_cast<size_t>(k)]);
  return figures;
}

}  // namespace

TEST(GraphCast, ParameterCountOfThePublishedConfiguration) {
  GraphCastConfig c;  // 512 x 16, 474 in, 227 out
  GraphCastNet net(c, Device::meta, 0);
  const ParameterCounts pc = net.parameter_counts();
  // MLP(a -> L -> b) with LayerNorm: a*L + L + L*b + b + 2b.
  const int64_t L = 512;
  auto mlp = [&](int64_t a, int64_t b, bool ln) { return a * L + L + L * b + b + (ln ? 2 * b : 0); };
  EXPECT_EQ(pc.encoder, 2 * mlp(474, L, true) + mlp(4, L, true) + mlp(3 * L, L, true) + mlp(2 * L, L, true) +
                            mlp(L, L, true));
  EXPECT_EQ(pc.processor, mlp(4, L, true) + 16 * (mlp(3 * L, L, true) + mlp(2 * L, L, true)));
  EXPECT_EQ(pc.decoder, mlp(4, L, true) + mlp(3 * L, L, true) + mlp(2 * L, L, true) + mlp(L, L, true) +
                            mlp(L, 227, false));
  EXPECT_NEAR(static_cast<double>(pc.total()), 36.35e6, 0.01e6);
}

TEST(GraphCast, FiniteDifferenceGradientsOfEveryModuleInF64) {
  TinyRun run(test::tiny_graphcast_config(DType::f64), Device::cpu);
  Var loss = run.loss();
  backward(loss);
  // A sample of parameters of every module: the first weight and last bias of each MLP.
  std::map<std::string, int> checked_modules;
  for (Var& p : run.net->parameters()) {
    const std::string& name = p.name();
    const std::string module = name.substr(0, name.find(".linear"));
    if (name.find("mesh_node_mlp") != std::string::npos && name.find("decoder") == 0) {
      EXPECT_FALSE(p.grad().defined()) << name << ": the unused decoder mesh-node MLP must get no gradient";
      continue;
    }
    if (name.find("linear0.weight") == std::string::npos && name.find("linear1.bias") == std::string::npos &&
        name.find("gamma") == std::string::npos)
      continue;
    ASSERT_TRUE(p.grad().defined()) << name;
    Tensor value = p.value();
    auto f = [&]() {
      NoGradGuard no_grad;
      return scalar_value(run.loss().value());
    };
    EXPECT_TRUE(test::gradient_matches(p.grad(), value, f, name, 6));
    checked_modules[module] += 1;
  }
  EXPECT_GE(checked_modules.size(), 15u);
}

TEST(GraphCast, ConcatTrickEqualsConcatenation) {
  GraphCastConfig plain = test::tiny_graphcast_config(DType::f32);
  plain.concat_trick = false;
  GraphCastConfig trick = test::tiny_graphcast_config(DType::f32);
  trick.concat_trick = true;
  TinyRun a(plain, Device::cpu), b(trick, Device::cpu);
  NoGradGuard no_grad;
  auto ya = a.net->forward(Var(a.input), a.geometry).value().to_doubles();
  auto yb = b.net->forward(Var(b.input), b.geometry).value().to_doubles();
  // Same weights (same seed), different summation order: f32 rounding only.
  EXPECT_TRUE(test::all_close(yb, ya, test::tolerance_for(DType::f32, 3 * 8 * 20), "concat trick"));
}

TEST(GraphCast, ConcatTrickNeverAllocatesTheWideEdgeInput) {
  GraphCastConfig c = test::tiny_graphcast_config(DType::f32);
  c.latent = 64;
  const int64_t wide_bytes = static_cast<int64_t>(
      round_request_bytes(static_cast<size_t>(test::tiny_graphcast_geometry().mesh.num_edges() * 3 * 64 * 4)));
  for (bool use_trick : {false, true}) {
    c.concat_trick = use_trick;
    TinyRun run(c, Device::meta);
    CachingAllocator& meta = allocator_for(Device::meta);
    meta.set_trace(true);
    meta.clear_trace();
    backward(run.loss());
    meta.set_trace(false);
    bool seen = false;
    for (const AllocEvent& e : meta.trace())
      if (e.kind == AllocEventKind::alloc && e.bytes == wide_bytes) seen = true;
    EXPECT_EQ(seen, !use_trick) << (use_trick ? "trick allocated [E, 3L]" : "plain path should allocate [E, 3L]");
  }
}

TEST(GraphCast, RematPlansGiveBitwiseIdenticalGradients) {
  std::vector<std::vector<double>> reference;
  for (auto plan : {plan_none(2), plan_all(2), plan_every(2, 2), plan_every(2, 1)}) {
    TinyRun run(test::tiny_graphcast_config(DType::f32), Device::cpu);
    backward(run.loss(plan));
    std::vector<std::vector<double>> grads;
    for (Var& p : run.net->parameters())
      if (p.grad().defined()) grads.push_back(p.grad().to_doubles());
    if (reference.empty()) {
      reference = grads;
      continue;
    }
    ASSERT_EQ(grads.size(), reference.size());
    for (size_t i = 0; i < grads.size(); ++i) ASSERT_EQ(grads[i], reference[i]) << "parameter " << i;
  }
}

TEST(GraphCast, MetaAllocationsEqualCpu) {
  for (auto plan : {plan_none(2), plan_all(2)}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      GraphCastConfig c = test::tiny_graphcast_config(dtype);
      c.batch = 2;
      const std::vector<int64_t> cpu = backward_allocations(c, Device::cpu, plan);
      const std::vector<int64_t> meta = backward_allocations(c, Device::meta, plan);
      EXPECT_EQ(cpu, meta) << dtype_name(dtype);
    }
  }
}

TEST(GraphCast, BadInputIsRejected) {
  TinyRun run(test::tiny_graphcast_config(DType::f32), Device::cpu);
  Tensor wrong = Tensor::zeros({3, 2}, DType::f32);
  EXPECT_THROW(run.net->forward(Var(wrong), run.geometry), std::invalid_argument);
  EXPECT_THROW(run.net->forward(Var(run.input), run.geometry, {{0, 1, false, {}}}), std::invalid_argument);
  GraphCastConfig bad = test::tiny_graphcast_config(DType::f32);
  bad.latent = 0;
  EXPECT_THROW(GraphCastNet(bad, Device::cpu, 0), std::invalid_argument);
}

TEST(GraphCast, NestedPlansGiveBitwiseIdenticalGradients) {
  // A checkpoint over stages 1..2 whose recomputation itself checkpoints stage 1.
  std::vector<StagePlan> nested = {{0, 0, false, {}},
                                   {1, 2, true, {{1, 1, true, {}}, {2, 2, false, {}}}},
                                   {3, 3, true, {}}};
  std::vector<std::vector<double>> grads[2];
  int i = 0;
  for (const auto& plan : {plan_none(2), nested}) {
    TinyRun run(test::tiny_graphcast_config(DType::f32), Device::cpu);
    backward(run.loss(plan));
    for (Var& p : run.net->parameters())
      if (p.grad().defined()) grads[i].push_back(p.grad().to_doubles());
    ++i;
  }
  EXPECT_EQ(grads[0], grads[1]);
}

TEST(GraphCast, EdgeChunksGiveBitwiseIdenticalGradientsAndMetaEqualsCpu) {
  for (bool trick : {true, false}) {
    std::vector<std::vector<double>> reference;
    double reference_loss = 0;
    for (int chunks : {1, 2, 3, 4}) {  // the tiny graphs have 4 edge blocks
      GraphCastConfig c = test::tiny_graphcast_config(DType::f32);
      c.edge_chunks = chunks;
      c.concat_trick = trick;
      TinyRun run(c, Device::cpu);
      ASSERT_EQ(run.geometry.g2m.blocks.size(), 4u);
      Var loss = run.loss(chunks == 3 ? plan_all(2) : plan_none(2));
      const double value = scalar_value(loss.value());
      backward(loss);
      std::vector<std::vector<double>> grads;
      for (Var& p : run.net->parameters())
        if (p.grad().defined()) grads.push_back(p.grad().to_doubles());
      if (reference.empty()) {
        reference = grads;
        reference_loss = value;
        continue;
      }
      EXPECT_EQ(value, reference_loss) << chunks << " chunks";
      ASSERT_EQ(grads.size(), reference.size());
      for (size_t i = 0; i < grads.size(); ++i) ASSERT_EQ(grads[i], reference[i]) << chunks << " chunks, parameter " << i;
    }
  }
  GraphCastConfig too_many = test::tiny_graphcast_config(DType::f32);
  too_many.edge_chunks = 5;
  EXPECT_THROW(TinyRun(too_many, Device::cpu), std::invalid_argument);
  GraphCastConfig c = test::tiny_graphcast_config(DType::f32);
  c.edge_chunks = 4;
  const std::vector<int64_t> cpu = backward_allocations(c, Device::cpu, plan_all(2));
  const std::vector<int64_t> meta = backward_allocations(c, Device::meta, plan_all(2));
  EXPECT_EQ(cpu[0], meta[0]) << "peak";
}
