// test_blocks.cpp: the processor's three message-passing blocks (interaction,
// gated, attention; model/graphcast.h) on the tiny model: finite-difference
// gradients in f64 of every block's parameters (gates and scores included),
// meta allocations equal to cpu to the byte (f32, bf16; plain and fully
// checkpointed), bitwise identical gradients under rematerialization, every
// allocation labelled, the parameter count formula, and bad configurations.
#include <gtest/gtest.h>

#include <map>

#include "model/graphcast.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::model;

namespace {

struct MetaStandsForCpu {
  MetaStandsForCpu() { set_meta_target(Device::cpu); }
};
struct TinyRun : private MetaStandsForCpu, test::TinyGraphCast {
  TinyRun(const GraphCastConfig& c, Device device) : test::TinyGraphCast(c, device) {}
};

GraphCastConfig tiny(Processor p, DType dtype) {
  GraphCastConfig c = test::tiny_graphcast_config(dtype);
  c.processor = p;
  return c;
}

const Processor kProcessors[] = {Processor::interaction, Processor::gated, Processor::attention};

// {peak, still allocated, allocations, bytes per category at the peak} of one backward.
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

TEST(Blocks, NamesRoundTripAndUnknownIsRefused) {
  for (Processor p : kProcessors) EXPECT_EQ(processor_from_name(processor_name(p)), p);
  EXPECT_THROW(processor_from_name("transformer"), std::invalid_argument);
}

TEST(Blocks, ParameterCountsFollowTheFormula) {
  const int64_t L = 64;
  for (Processor p : kProcessors) {
    GraphCastConfig c = tiny(p, DType::f32);
    c.latent = L;
    c.layers = 3;
    GraphCastConfig base = c;
    base.processor = Processor::interaction;
    const ParameterCounts got = GraphCastNet(c, Device::meta, 0).parameter_counts();
    const ParameterCounts interaction = GraphCastNet(base, Device::meta, 0).parameter_counts();
    const int64_t extra_per_layer = p == Processor::gated       ? (L * L + L) + (2 * L * L + L)
                                    : p == Processor::attention ? L * kAttentionHeads
                                                                : 0;
    EXPECT_EQ(got.processor, interaction.processor + 3 * extra_per_layer) << processor_name(p);
    EXPECT_EQ(got.encoder, interaction.encoder);
    EXPECT_EQ(got.decoder, interaction.decoder);
  }
}

TEST(Blocks, ParameterNamesSayTheBlock) {
  std::map<std::string, int> gate_names;
  for (Processor p : kProcessors) {
    GraphCastNet net(tiny(p, DType::f32), Device::meta, 0);
    for (const Var& v : net.parameters()) {
      const std::string& n = v.name();
      if (n.find("edge_gate") != std::string::npos || n.find("node_gate") != std::string::npos) {
        EXPECT_EQ(p, Processor::gated) << n;
      }
      if (n.find("attention_score") != std::string::npos) {
        EXPECT_EQ(p, Processor::attention) << n;
      }
      ++gate_names[n];
    }
  }
  for (const auto& [name, count] : gate_names) EXPECT_LE(count, 3) << name;
  EXPECT_TRUE(gate_names.count("processor.1.edge_gate.weight"));
  EXPECT_TRUE(gate_names.count("processor.1.node_gate.bias"));
  EXPECT_TRUE(gate_names.count("processor.0.attention_score.weight"));
}

TEST(Blocks, FiniteDifferenceGradientsInF64) {
  for (Processor p : {Processor::gated, Processor::attention}) {
    TinyRun run(tiny(p, DType::f64), Device::cpu);
    backward(run.loss());
    int checked = 0;
    for (Var& v : run.net->parameters()) {
      const std::string& name = v.name();
      const bool block_parameter = name.find("gate") != std::string::npos || name.find("attention") != std::string::npos;
      const bool processor_mlp = name.find("processor.1.") == 0 && name.find("linear0.weight") != std::string::npos;
      if (!block_parameter && !processor_mlp) continue;
      ASSERT_TRUE(v.grad().defined()) << name;
      Tensor value = v.value();
      auto f = [&]() {
        NoGradGuard no_grad;
        return scalar_value(run.loss().value());
      };
      EXPECT_TRUE(test::gradient_matches(v.grad(), value, f, std::string(processor_name(p)) + " " + name, 6));
      ++checked;
    }
    EXPECT_EQ(checked, p == Processor::gated ? 2 * 4 + 2 : 2 * 1 + 2) << processor_name(p);
  }
}

TEST(Blocks, MetaAllocationsEqualCpu) {
  for (Processor p : kProcessors)
    for (const auto& plan : {plan_none(2), plan_all(2)})
      for (DType dtype : {DType::f32, DType::bf16}) {
        GraphCastConfig c = tiny(p, dtype);
        c.batch = 2;
        const std::vector<int64_t> cpu = backward_allocations(c, Device::cpu, plan);
        const std::vector<int64_t> meta = backward_allocations(c, Device::meta, plan);
        EXPECT_EQ(cpu, meta) << processor_name(p) << " " << dtype_name(dtype) << " plan items " << plan.size();
      }
}

TEST(Blocks, RematPlansGiveBitwiseIdenticalGradients) {
  for (Processor p : {Processor::gated, Processor::attention}) {
    std::vector<std::vector<double>> reference;
    for (const auto& plan : {plan_none(2), plan_all(2), plan_every(2, 1)}) {
      TinyRun run(tiny(p, DType::f32), Device::cpu);
      backward(run.loss(plan));
      std::vector<std::vector<double>> grads;
      for (Var& v : run.net->parameters())
        if (v.grad().defined()) grads.push_back(v.grad().to_doubles());
      if (reference.empty()) {
        reference = grads;
        continue;
      }
      ASSERT_EQ(grads.size(), reference.size());
      for (size_t i = 0; i < grads.size(); ++i) ASSERT_EQ(grads[i], reference[i]) << processor_name(p) << " " << i;
    }
  }
}

// Every allocation of the forward is labelled (its module path), the blocks'
// parts under their layer; and the backward's block tensors keep those labels.
TEST(Blocks, EveryAllocationIsLabelled) {
  for (Processor p : {Processor::gated, Processor::attention}) {
    TinyRun run(tiny(p, DType::bf16), Device::meta);
    CachingAllocator& meta = allocator_for(Device::meta);
    meta.clear_trace();
    meta.set_trace(true);
    Var prediction = run.net->forward(Var(run.input), run.geometry);
    meta.set_trace(false);
    const std::vector<std::string> labels = meta.trace_labels();
    bool block_label_seen = false;
    for (const AllocEvent& e : meta.trace()) {
      if (e.kind != AllocEventKind::alloc) continue;
      const std::string& label = labels.at(e.label_id);
      EXPECT_FALSE(label.empty()) << "an allocation without a label";
      const std::string part = p == Processor::gated ? "edge_gate" : "attention_score";
      if (label.find("processor.1." + part) == 0) block_label_seen = true;
    }
    meta.clear_trace();
    prediction = Var();
    current_tape().clear();  // a forward without its backward: drop what it recorded
    release_compute_copies();
    EXPECT_TRUE(block_label_seen) << processor_name(p);
  }
}

TEST(Blocks, AttentionNeedsALatentOfWholeHeads) {
  GraphCastConfig c = tiny(Processor::attention, DType::f32);
  c.latent = 6;
  EXPECT_THROW(GraphCastNet(c, Device::meta, 0), std::invalid_argument);
}
