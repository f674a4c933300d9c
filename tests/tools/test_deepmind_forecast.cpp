// test_deepmind_forecast.cpp: gc's forecast from DeepMind's checkpoint equals
// DeepMind's own (tests/data/deepmind: made by DeepMind's code at 08cf736, f32,
// no bf16 cast) within 1e-5 relative, for one step and for three autoregressive
// steps, on DeepMind's graphs; and the dry run on meta makes exactly the
// requests of the cpu run (the same peak to the byte).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>

#include "runtime/allocator.h"
#include "tests/test_util.h"
#include "tools/forecast/predictor.h"
#include "tools/io/graph_file.h"
#include "tools/io/npz.h"

namespace gc {
namespace {

const std::string kDir = "tests/data/deepmind/";

struct Fixture {
  DeepMindCheckpoint checkpoint = load_deepmind_checkpoint(kDir + "checkpoint.npz");
  forecast::Statistics statistics = forecast::load_statistics(kDir + "stats.npz", checkpoint.task);
  forecast::ForecastInputs inputs = forecast::load_inputs(kDir + "inputs.npz", checkpoint.task);
  forecast::ForecastForcings forcings = forecast::load_forcings(kDir + "forcings.npz", checkpoint.task, inputs);
  model::Grid grid = forecast::grid_of(inputs);

  std::shared_ptr<const model::GraphCastGeometry> geometry(bool deepmind_graphs) const {
    model::GeometryOptions options = checkpoint.geometry_options();
    if (!deepmind_graphs)
      return std::make_shared<const model::GraphCastGeometry>(model::build_geometry(grid, checkpoint.model.mesh_size, options));
    const GraphFile graphs =
        load_graph_file(kDir + "graphs.npz", grid, model::build_mesh_hierarchy(checkpoint.model.mesh_size).back());
    options.g2m = &graphs.g2m;
    options.mesh = &graphs.mesh;
    options.m2g = &graphs.m2g;
    return std::make_shared<const model::GraphCastGeometry>(model::build_geometry(grid, checkpoint.model.mesh_size, options));
  }
};

// Largest |got - ref| relative to the field's scale: the largest |ref| of the
// same variable, level and step. (Relative to each value itself is ill-posed
// where a field crosses zero: the fixture's random geopotential has a value of
// 0.35 in a field of magnitude 5e4, where one f32 ulp of the field, 0.0039, is
// a relative 1e-2.) *elementwise gets the plain largest |got - ref| / |ref|.
double worst_relative(const forecast::Predictions& got, const std::string& reference_file, int steps,
                      double* elementwise) {
  const NpzFile reference = load_npz(kDir + reference_file);
  EXPECT_EQ(got.size(), 4u);
  double worst = 0;
  *elementwise = 0;
  for (const auto& [name, values] : got) {
    const std::vector<double> ref = reference.at(name).to_doubles();
    EXPECT_EQ(values.size(), ref.size()) << name;
    if (values.size() != ref.size()) return 1e300;
    const size_t field = 19 * 36, fields = ref.size() / field;
    EXPECT_EQ(fields % static_cast<size_t>(steps), 0u);
    for (size_t k = 0; k < fields; ++k) {
      double scale = 0, difference = 0;
      for (size_t i = k * field; i < (k + 1) * field; ++i) {
        scale = std::max(scale, std::fabs(ref[i]));
        difference = std::max(difference, std::fabs(values[i] - ref[i]));
        *elementwise = std::max(*elementwise, std::fabs(values[i] - ref[i]) / std::fabs(ref[i]));
      }
      worst = std::max(worst, difference / scale);
    }
  }
  return worst;
}

TEST(DeepMindForecast, ParameterNamesAndCountsMatch) {
  const Fixture f;
  model::GraphCastNet net(f.checkpoint.graphcast_config(), Device::meta, 0);
  EXPECT_EQ(net.parameter_counts().total(), 43816);  // meta.json num_parameters
  int arrays = 0;
  for (const NpyArray& a : f.checkpoint.file.arrays) arrays += a.name.rfind("params:", 0) == 0;
  EXPECT_EQ(arrays, static_cast<int>(net.parameters().size()));
  EXPECT_EQ(f.checkpoint.graphcast_config().in_channels, 36);  // 28 + 5 forcings + 3 structural
  EXPECT_EQ(f.checkpoint.graphcast_config().out_channels, 8);
}

TEST(DeepMindForecast, OneStepEqualsDeepMind) {
  const Fixture f;
  const forecast::Predictor predictor(f.checkpoint, f.statistics, f.geometry(true), DType::f32, Device::cpu);
  double elementwise = 0;
  const double worst = worst_relative(predictor.rollout(f.inputs, f.forcings, 1), "outputs_1step.npz", 1, &elementwise);
  std::printf("one step: largest difference %.3g of the field's scale (%.3g of the value itself)\n", worst, elementwise);
  EXPECT_LE(worst, 1e-5);
}

TEST(DeepMindForecast, ThreeStepsEqualDeepMind) {
  const Fixture f;
  const forecast::Predictor predictor(f.checkpoint, f.statistics, f.geometry(true), DType::f32, Device::cpu);
  double elementwise = 0;
  const double worst = worst_relative(predictor.rollout(f.inputs, f.forcings, 3), "outputs_3step.npz", 3, &elementwise);
  std::printf("three steps: largest difference %.3g of the field's scale (%.3g of the value itself)\n", worst, elementwise);
  EXPECT_LE(worst, 1e-5);
}

// On gc's own graphs the one-step forecast equals DeepMind's at every grid node
// but the mesh2grid tie nodes (tests/tools/test_graph_file.cpp), where the
// decoder reads another, equally near, mesh face.
TEST(DeepMindForecast, OwnGraphsDifferOnlyAtTieNodes) {
  const Fixture f;
  const auto own = f.geometry(false), deepmind = f.geometry(true);
  std::set<int32_t> tie_nodes;
  std::set<std::pair<int32_t, int32_t>> a, b;
  for (int64_t e = 0; e < own->m2g.num_edges(); ++e) a.insert({own->m2g.senders[static_cast<size_t>(e)], own->m2g.receivers[static_cast<size_t>(e)]});
  for (int64_t e = 0; e < deepmind->m2g.num_edges(); ++e) b.insert({deepmind->m2g.senders[static_cast<size_t>(e)], deepmind->m2g.receivers[static_cast<size_t>(e)]});
  for (const auto& e : a) if (!b.count(e)) tie_nodes.insert(e.second);
  ASSERT_EQ(tie_nodes.size(), 43u);
  const forecast::Predictions got =
      forecast::Predictor(f.checkpoint, f.statistics, own, DType::f32, Device::cpu).rollout(f.inputs, f.forcings, 1);
  const NpzFile reference = load_npz(kDir + "outputs_1step.npz");
  std::set<int32_t> differing;
  for (const auto& [name, values] : got) {
    const std::vector<double> ref = reference.at(name).to_doubles();
    const size_t field = 19 * 36;
    for (size_t k = 0; k < ref.size() / field; ++k) {
      double scale = 0;
      for (size_t i = k * field; i < (k + 1) * field; ++i) scale = std::max(scale, std::fabs(ref[i]));
      for (size_t i = k * field; i < (k + 1) * field; ++i)
        if (std::fabs(values[i] - ref[i]) > 1e-5 * scale) differing.insert(static_cast<int32_t>(i - k * field));
    }
  }
  EXPECT_EQ(differing, tie_nodes);
}

// bf16 and fp16 compute (f32 weights, normalization and residual add): one step
// against the f32 forecast, in units of the network's output (the residual
// divided by diffs_stddev): within 16 eps of the dtype. Measured: 7.8 eps (bf16)
// and 5.8 eps (fp16), after some twelve MLPs in sequence, each rounding its
// input, hidden layer and output to the dtype.
TEST(DeepMindForecast, HalfPrecisionWithinItsTolerance) {
  const Fixture f;
  const auto geometry = f.geometry(true);
  const forecast::Predictions reference =
      forecast::Predictor(f.checkpoint, f.statistics, geometry, DType::f32, Device::cpu).rollout(f.inputs, f.forcings, 1);
  for (DType compute : {DType::bf16, DType::f16}) {
    const forecast::Predictions got =
        forecast::Predictor(f.checkpoint, f.statistics, geometry, compute, Device::cpu).rollout(f.inputs, f.forcings, 1);
    double worst = 0;
    for (const auto& [name, values] : got) {
      const std::vector<float>& scale = f.statistics.diffs_stddev.at(name);
      const size_t field = 19 * 36;
      for (size_t i = 0; i < values.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(values[i]) - reference.at(name)[i]) / scale[i / field]);
    }
    EXPECT_GT(worst, 0.0) << dtype_name(compute);  // the compute dtype is really used
    EXPECT_LE(worst, 16 * dtype_epsilon(compute)) << dtype_name(compute);
    std::printf("%s: largest difference %.2f eps of the normalized output\n", dtype_name(compute), worst / dtype_epsilon(compute));
  }
}

// The dry run of a 3-step forecast on meta (standing for the cpu) predicts the
// cpu run's peaks to the byte, for f32 and bf16 compute.
TEST(DeepMindForecast, DryRunPeakEqualsCpuPeakToTheByte) {
  const Fixture f;
  const auto geometry = f.geometry(true);
  test::MetaTargetGuard target(Device::cpu);
  for (DType compute : {DType::f32, DType::bf16}) {
    AllocatorStats peaks[2];
    for (Device device : {Device::cpu, Device::meta}) {
      CachingAllocator& allocator = allocator_for(device);
      allocator.empty_cache();
      ASSERT_EQ(allocator.stats().allocated, 0) << device_name(device);
      allocator.reset_peak();
      {
        const forecast::Predictor predictor(f.checkpoint, f.statistics, geometry, compute, device);
        predictor.rollout(f.inputs, f.forcings, 3);
      }
      peaks[device == Device::meta] = allocator.stats();
      EXPECT_EQ(allocator.stats().allocated, 0);
    }
    EXPECT_GT(peaks[0].peak_allocated, 0);
    EXPECT_EQ(peaks[0].peak_allocated, peaks[1].peak_allocated) << dtype_name(compute);
    EXPECT_EQ(peaks[0].peak_reserved, peaks[1].peak_reserved) << dtype_name(compute);
    EXPECT_EQ(peaks[0].at_peak, peaks[1].at_peak) << dtype_name(compute);
    EXPECT_EQ(peaks[0].peak_label, peaks[1].peak_label);
    EXPECT_EQ(peaks[0].at_peak[static_cast<size_t>(Category::gradient)], 0);  // no tape, no gradients
  }
}

// The cuda backend (a GPU, or cudasim without one): the forecast equals the
// cpu's within f32 rounding of the field (cuBLAS sums in another order), and the
// dry run standing for cuda predicts the cuda run's peaks to the byte.
TEST(DeepMindForecastCuda, EqualsCpuAndItsDryRun) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  const Fixture f;
  const auto geometry = f.geometry(true);
  const forecast::Predictions cpu =
      forecast::Predictor(f.checkpoint, f.statistics, geometry, DType::f32, Device::cpu).rollout(f.inputs, f.forcings, 2);
  test::MetaTargetGuard target(Device::cuda);
  AllocatorStats peaks[2];
  forecast::Predictions cuda;
  for (Device device : {Device::cuda, Device::meta}) {
    CachingAllocator& allocator = allocator_for(device);
    allocator.empty_cache();
    allocator.reset_peak();
    {
      const forecast::Predictor predictor(f.checkpoint, f.statistics, geometry, DType::f32, device);
      forecast::Predictions p = predictor.rollout(f.inputs, f.forcings, 2);
      if (device == Device::cuda) cuda = std::move(p);
    }
    peaks[device == Device::meta] = allocator.stats();
  }
  EXPECT_EQ(peaks[0].peak_allocated, peaks[1].peak_allocated);
  EXPECT_EQ(peaks[0].peak_reserved, peaks[1].peak_reserved);
  ASSERT_EQ(cuda.size(), cpu.size());
  for (const auto& [name, values] : cpu) {
    const std::vector<float>& other = cuda.at(name);
    ASSERT_EQ(other.size(), values.size());
    double scale = 0, difference = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(values[i])));
      difference = std::max(difference, std::fabs(static_cast<double>(values[i]) - other[i]));
    }
    EXPECT_LE(difference, 1e-5 * scale) << name;
  }
}

}  // namespace
}  // namespace gc
