// test_model_util.h: the tiny GraphCast that the model tests run end to end
// (test_graphcast.cpp on cpu and meta, test_cuda_ops.cpp on cuda against cpu):
// its configuration, its graphs, and one model with a seeded input and a seeded
// probe whose dot product with the output is the loss.
#pragma once

#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "autograd/precision.h"
#include "model/graphcast.h"
#include "runtime/memory_scope.h"
#include "tests/test_util.h"

namespace gc::test {

// Latent width of the tiny model unless a test asks for another.
constexpr int kTinyLatent = 8;

// 2 processor layers on the level-1 mesh; 5 inputs (2 data channels + the 3
// structural ones) and 2 outputs.
inline model::GraphCastConfig tiny_graphcast_config(DType dtype, int latent = kTinyLatent) {
  model::GraphCastConfig c;
  c.latent = latent;
  c.layers = 2;
  c.mesh_level = 1;
  c.in_channels = 5;
  c.out_channels = 2;
  c.compute_dtype = dtype;
  return c;
}

// The graphs of the tiny model: a 30-degree grid and the level-1 mesh, built once.
inline const model::GraphCastGeometry& tiny_graphcast_geometry() {
  static const model::GraphCastGeometry geometry = model::build_geometry(model::make_equiangular_grid(30.0), 1);
  return geometry;
}

// Seeds of the tiny model's input and probe values.
constexpr uint64_t kTinyInputSeed = 11, kTinyProbeSeed = 12;

// The tiny model on one device with its graphs, input and probe (allocated as
// inputs; on meta they have shapes and no values). Meta stands for whatever
// meta_target() says: set it before building one on meta.
struct TinyGraphCast {
  model::GraphCastConfig config;
  std::unique_ptr<model::GraphCastNet> net;
  model::DeviceGeometry geometry;
  Tensor input, probe;

  TinyGraphCast(const model::GraphCastConfig& c, Device device, uint64_t seed = 3) : config(c) {
    net = std::make_unique<model::GraphCastNet>(c, device, seed);
    geometry = model::upload_geometry(tiny_graphcast_geometry(), c, device);
    const int64_t rows = tiny_graphcast_geometry().num_grid_nodes() * c.batch;
    const Shape input_shape{rows, c.in_channels - 3}, probe_shape{rows, c.out_channels};
    MemoryScope scope(Category::input);
    if (device == Device::meta) {
      input = Tensor::empty(input_shape, c.compute_dtype, device);
      probe = Tensor::empty(probe_shape, net->master_dtype(), device);
    } else {
      input = random_tensor(input_shape, c.compute_dtype, kTinyInputSeed, 1.0, device);
      probe = random_tensor(probe_shape, net->master_dtype(), kTinyProbeSeed, 1.0, device);
    }
  }

  // The compute-dtype weight copies a bf16/f16 forward made live in a global
  // per-step cache (the trainer empties it every step); without this they, and the
  // gradients their slots hold, would outlive the model and sit in the next test's
  // allocator figures.
  ~TinyGraphCast() { release_compute_copies(); }

  // sum(forward(input) * probe) under a rematerialization plan.
  Var loss(const std::vector<model::StagePlan>& plan = {}) {
    return sum_all(mul(net->forward(Var(input), geometry, plan), Var(probe)));
  }
};

}  // namespace gc::test
