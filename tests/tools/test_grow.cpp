// test_grow.cpp: gc_train --grow-from (tools/train/grow.h). At step 0 the grown
// model's forecast equals the smaller model's within rounding, for a deeper, a
// wider and a deeper-and-wider model of every processor block (f64: to 1e-10;
// f32: within f32 rounding); the widening's noise breaks the copies' symmetry
// and the new layers get gradients; impossible grows are refused with a
// UsageError that says why.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"
#include "tools/io/safetensors.h"
#include "tools/train/grow.h"

using namespace gc;
using namespace gc::model;

namespace {

struct MetaStandsForCpu {
  MetaStandsForCpu() { set_meta_target(Device::cpu); }
};
struct TinyRun : private MetaStandsForCpu, test::TinyGraphCast {
  TinyRun(const GraphCastConfig& c, Device device, uint64_t seed = 3) : test::TinyGraphCast(c, device, seed) {}
};

GraphCastConfig tiny(Processor p, DType dtype, int64_t latent, int layers) {
  GraphCastConfig c = test::tiny_graphcast_config(dtype, static_cast<int>(latent));
  c.processor = p;
  c.layers = layers;
  return c;
}

GrowSource source_of(const GraphCastNet& net) {
  GrowSource s;
  s.path = "(the small model)";
  s.latent = net.config().latent;
  s.layers = net.config().layers;
  s.processor = processor_name(net.config().processor);
  for (const Var& p : net.parameters()) s.weights.push_back({p.name(), p.value().clone()});
  return s;
}

std::vector<double> forecast(TinyRun& run) {
  NoGradGuard no_grad;
  return run.net->forward(Var(run.input), run.geometry).value().to_doubles();
}

struct GrowCase {
  int64_t latent;
  int layers;
  const char* what;
};
const GrowCase kGrows[] = {{8, 4, "deeper"}, {16, 2, "wider"}, {24, 5, "wider and deeper"}};

}  // namespace

TEST(Grow, FirstForecastEqualsTheSmallModelsInF64) {
  for (Processor p : {Processor::interaction, Processor::gated, Processor::attention}) {
    TinyRun small(tiny(p, DType::f64, 8, 2), Device::cpu, 3);
    const std::vector<double> before = forecast(small);
    const GrowSource source = source_of(*small.net);
    for (const GrowCase& g : kGrows) {
      TinyRun big(tiny(p, DType::f64, g.latent, g.layers), Device::cpu, 4);
      const std::vector<double> untouched = forecast(big);
      grow_parameters(*big.net, source, 7);
      const std::vector<double> after = forecast(big);
      EXPECT_TRUE(test::all_close(after, before, {1e-10, 1e-10},
                                  std::string(processor_name(p)) + " " + g.what));
      // The test can fail: the big model before growing forecasts something else.
      EXPECT_FALSE(test::all_close(untouched, before, {1e-3, 1e-3}, "not grown"));
    }
  }
}

TEST(Grow, FirstForecastEqualsTheSmallModelsInF32) {
  TinyRun small(tiny(Processor::interaction, DType::f32, 8, 2), Device::cpu, 3);
  const std::vector<double> before = forecast(small);
  TinyRun big(tiny(Processor::interaction, DType::f32, 16, 4), Device::cpu, 4);
  grow_parameters(*big.net, source_of(*small.net), 7);
  // Other summation orders (twice the terms, split rows) in f32: f32 rounding through ~10 layers.
  EXPECT_TRUE(test::all_close(forecast(big), before, test::tolerance_for(DType::f32, 3 * 16 * 10 * 10), "f32"));
}

TEST(Grow, NoiseBreaksTheSymmetryAndNewLayersLearn) {
  TinyRun small(tiny(Processor::interaction, DType::f64, 8, 2), Device::cpu, 3);
  TinyRun big(tiny(Processor::interaction, DType::f64, 16, 3), Device::cpu, 4);
  grow_parameters(*big.net, source_of(*small.net), 7);
  for (const Var& p : big.net->parameters()) {
    if (p.name() != "processor.0.edge_mlp.linear1.weight") continue;
    // Latent 8 -> 16: rows j and j + 8 are the two copies of old row j, each half of it plus opposite noise.
    const std::vector<double> w = p.value().to_doubles();
    int differing = 0;
    for (int64_t j = 0; j < 16; ++j) differing += w[static_cast<size_t>(0 * 16 + j)] != w[static_cast<size_t>(8 * 16 + j)];
    EXPECT_GT(differing, 0) << "the two copies of row 0 are identical: no symmetry breaking";
  }
  backward(big.loss());
  bool new_layer_learns = false;
  for (const Var& p : big.net->parameters())
    if (p.name() == "processor.2.node_mlp.linear1.weight" && p.grad().defined()) {
      for (double g : p.grad().to_doubles()) new_layer_learns = new_layer_learns || g != 0.0;
    }
  EXPECT_TRUE(new_layer_learns) << "a new layer's last linear gets no gradient";
}

// ---- impossible grows ----------------------------------------------------------------------------

namespace {
// A checkpoint directory of a tiny model as gc_train writes it (the files grow reads).
std::string write_checkpoint(const std::string& name, Processor p, int64_t latent, int layers) {
  const std::string dir = test::scratch_folder(name);
  TinyRun run(tiny(p, DType::f32, latent, layers), Device::cpu);
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const Var& v : run.net->parameters()) weights.push_back({v.name(), v.value()});
  std::string config = "preset=demo latent=" + std::to_string(latent) + " layers=" + std::to_string(layers) +
                       " mesh=1 in=5 out=2";
  if (p != Processor::interaction) config += std::string(" processor=") + processor_name(p);
  save_safetensors(dir + "/weights.safetensors", weights, {{"format", "gc-graphcast"}, {"config", config}});
  save_safetensors(dir + "/train_state.safetensors", {}, {{"data", "swe T21 trajectories 8 frames 20"}});
  return dir;
}

TrainOptions options(const std::string& processor, int64_t latent, int layers) {
  TrainOptions o;
  o.preset = "demo";
  o.mesh_level = 1;
  o.in_channels = 5;
  o.out_channels = 2;
  o.data_truncation = 21;
  o.processor = processor;
  o.latent = latent;
  o.layers = layers;
  return o;
}

std::string refusal(const std::string& dir, const TrainOptions& o) {
  try {
    load_grow_source(dir, o);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Grow, ImpossibleGrowsAreRefused) {
  const std::string dir = write_checkpoint("grow_source", Processor::interaction, 8, 2);
  EXPECT_NO_THROW(load_grow_source(dir, options("interaction", 16, 4)));
  EXPECT_NE(refusal(dir, options("interaction", 4, 2)).find("smaller"), std::string::npos);
  EXPECT_NE(refusal(dir, options("interaction", 8, 1)).find("smaller"), std::string::npos);
  EXPECT_NE(refusal(dir, options("interaction", 12, 2)).find("whole multiple"), std::string::npos);
  EXPECT_NE(refusal(dir, options("interaction", 8, 2)).find("nothing to grow"), std::string::npos);
  EXPECT_NE(refusal(dir, options("gated", 16, 2)).find("--processor interaction model"), std::string::npos);
  TrainOptions other_mesh = options("interaction", 16, 2);
  other_mesh.mesh_level = 2;
  EXPECT_NE(refusal(dir, other_mesh).find("mesh=1"), std::string::npos);
  TrainOptions other_grid = options("interaction", 16, 2);
  other_grid.data_truncation = 42;
  EXPECT_NE(refusal(dir, other_grid).find("grid must stay"), std::string::npos);
  EXPECT_NE(refusal(dir + "/missing", options("interaction", 16, 2)).find("not a checkpoint"), std::string::npos);
  TrainOptions meta = options("interaction", 16, 2);
  meta.device = Device::meta;
  EXPECT_NE(refusal(dir, meta).find("meta"), std::string::npos);
  const std::string gated = write_checkpoint("grow_source_gated", Processor::gated, 8, 2);
  EXPECT_NE(refusal(gated, options("attention", 16, 2)).find("--processor gated model"), std::string::npos);
  EXPECT_NO_THROW(load_grow_source(gated, options("gated", 8, 3)));
}
