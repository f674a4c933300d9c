// test_cuda_blocks.cpp: the gated and attention processor blocks end to end on
// the cuda backend (a GPU, or cudasim in `make test`): one training step of the
// tiny model gives the cpu's loss and gradients within the compute dtype's
// rounding, remat gives bitwise the same gradients on the device, and the dry
// run standing for cuda allocates what the device step allocates, to the byte.
// Skips without a cuda device.
#include <gtest/gtest.h>

#include <cmath>

#include "model/graphcast.h"
#include "tests/test_util.h"

namespace gc {
namespace {

constexpr Device kCuda = Device::cuda;
constexpr int kLatent = 16;

class CudaBlocks : public ::testing::TestWithParam<model::Processor> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  }
  model::GraphCastConfig config(DType dtype) const {
    model::GraphCastConfig c = test::tiny_graphcast_config(dtype, kLatent);
    c.processor = GetParam();
    return c;
  }
};

struct Step {
  double loss = 0;
  std::vector<Tensor> grads;  // cpu copies, in parameter order
};

Step run_step(const model::GraphCastConfig& c, Device device, const std::vector<model::StagePlan>& plan) {
  test::TinyGraphCast run(c, device);
  Var loss = run.loss(plan);
  backward(loss);
  Step s;
  s.loss = scalar_value(loss.value());
  for (Var& p : run.net->parameters()) s.grads.push_back(p.grad().defined() ? p.grad().to(Device::cpu) : Tensor());
  release_compute_copies();
  return s;
}

TEST_P(CudaBlocks, GradientsMatchTheCpuAndRematIsBitwise) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Step cpu = run_step(config(dtype), Device::cpu, model::plan_none(2));
    const Step gpu = run_step(config(dtype), kCuda, model::plan_none(2));
    const Step gpu_remat = run_step(config(dtype), kCuda, model::plan_all(2));
    const auto tol = test::tolerance_for(dtype, 400);
    EXPECT_NEAR(gpu.loss, cpu.loss, tol.atol + tol.rtol * std::fabs(cpu.loss)) << dtype_name(dtype);
    ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
    for (size_t i = 0; i < cpu.grads.size(); ++i) {
      ASSERT_EQ(gpu.grads[i].defined(), cpu.grads[i].defined()) << i;
      if (!cpu.grads[i].defined()) continue;
      double scale = 0;  // relative to the largest gradient of the tensor
      for (double v : cpu.grads[i].to_doubles()) scale = std::max(scale, std::fabs(v));
      EXPECT_TRUE(test::all_close(gpu.grads[i].to_doubles(), cpu.grads[i].to_doubles(),
                                  {tol.atol * std::max(scale, 1e-30), tol.rtol},
                                  std::string(dtype_name(dtype)) + " parameter " + std::to_string(i)));
      EXPECT_EQ(gpu_remat.grads[i].to_doubles(), gpu.grads[i].to_doubles()) << "remat all vs none, parameter " << i;
    }
  }
}

TEST_P(CudaBlocks, DryRunForCudaAllocatesWhatTheDeviceStepAllocates) {
  struct MetaStandsForCuda {
    Device saved = meta_target();
    MetaStandsForCuda() { set_meta_target(kCuda); }
    ~MetaStandsForCuda() { set_meta_target(saved); }
  } meta_stands_for_cuda;
  for (DType dtype : {DType::f32, DType::bf16}) {
    std::vector<int64_t> figures[2];
    for (Device device : {kCuda, Device::meta}) {
      test::TinyGraphCast run(config(dtype), device);
      CachingAllocator& allocator = allocator_for(device);
      allocator.reset_peak();
      const AllocatorStats before = allocator.stats();
      backward(run.loss(model::plan_none(2)));
      release_compute_copies();
      const AllocatorStats after = allocator.stats();
      std::vector<int64_t>& f = figures[device == kCuda ? 0 : 1];
      f = {after.peak_allocated - before.allocated, after.allocated - before.allocated,
           after.num_allocs - before.num_allocs};
      for (size_t k = 0; k < static_cast<size_t>(kNumCategories); ++k)
        f.push_back(after.at_peak[k] - before.category_allocated[k]);
    }
    EXPECT_EQ(figures[0], figures[1]) << dtype_name(dtype) << ": {peak, final, allocations, at the peak} cuda vs meta";
  }
}

INSTANTIATE_TEST_SUITE_P(Blocks, CudaBlocks, ::testing::Values(model::Processor::gated, model::Processor::attention),
                         [](const ::testing::TestParamInfo<model::Processor>& info) {
                           return std::string(model::processor_name(info.param));
                         });

}  // namespace
}  // namespace gc
