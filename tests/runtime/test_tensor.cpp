// test_tensor.cpp: tensor creation, views, copies, meta behaviour, devices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/elementwise.h"
#include "runtime/tensor.h"
#include "tools/data/host_tensor.h"

using namespace gc;

TEST(Tensor, CreationAndAccounting) {
  auto& alloc = allocator_for(Device::cpu);
  const int64_t before = alloc.stats().allocated;
  {
    MemoryScope scope(Category::input, "batch");
    Tensor t = Tensor::zeros({3, 5}, DType::f32);
    EXPECT_EQ(t.numel(), 15);
    EXPECT_EQ(t.nbytes(), 60u);
    EXPECT_EQ(alloc.stats().allocated - before, 512);
    EXPECT_EQ(t.storage()->block()->label, "batch");
    EXPECT_EQ(t.storage()->block()->category, Category::input);
    for (double v : t.to_doubles()) EXPECT_EQ(v, 0.0);
  }
  EXPECT_EQ(alloc.stats().allocated, before);
}

TEST(Tensor, FromDoublesEveryDtype) {
  std::vector<double> v = {1.0, -2.5, 3.25, 1e-3};
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor t = Tensor::from_doubles(v, {2, 2}, d);
    auto back = t.to_doubles();
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(back[i], v[i], dtype_epsilon(d) * std::fabs(v[i])) << dtype_name(d);
  }
  Tensor idx = Tensor::from_doubles({0, 7, -3}, {3}, DType::i32);
  EXPECT_EQ(idx.item(1), 7);
  EXPECT_EQ(idx.item(2), -3);
  EXPECT_THROW(Tensor::from_doubles({1, 2, 3}, {2, 2}, DType::f32), std::invalid_argument);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_doubles({0, 1, 2, 3, 4, 5}, {3, 2}, DType::f32);
  Tensor rows = t.slice_rows(1, 2);
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.item(0), 2);
  rows.data_as<float>()[0] = 42;
  EXPECT_EQ(t.item(2), 42);
  Tensor flat = t.reshape({-1});
  EXPECT_EQ(flat.shape(), (Shape{6}));
  EXPECT_THROW(t.reshape({4, 2}), std::invalid_argument);
  EXPECT_THROW(t.slice_rows(2, 2), std::out_of_range);
  Tensor copy = t.clone();
  copy.data_as<float>()[0] = -1;
  EXPECT_EQ(t.item(0), 0);
}

TEST(Tensor, AtMostFourDims) {
  EXPECT_THROW(Tensor::empty({1, 1, 1, 1, 1}, DType::f32), std::invalid_argument);
  EXPECT_NO_THROW(Tensor::empty({1, 2, 3, 4}, DType::f32));
}

TEST(Tensor, MetaHasShapeAndBytesButNoData) {
  auto& meta = allocator_for(Device::meta);
  const int64_t before = meta.stats().allocated;
  Tensor t = Tensor::empty({1000, 512}, DType::bf16, Device::meta);
  EXPECT_EQ(t.nbytes(), 1024000u);
  EXPECT_EQ(meta.stats().allocated - before, 1024000);
  EXPECT_THROW(t.data(), std::logic_error);
  EXPECT_THROW(t.to_doubles(), std::logic_error);
  EXPECT_THROW(t.to(Device::cpu), std::logic_error);
  try {
    t.data();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("meta tensors have no data"), std::string::npos);
  }
  Tensor z = Tensor::zeros({4}, DType::f32, Device::meta);  // zero_ is a no-op on meta
  EXPECT_EQ(z.numel(), 4);
}

TEST(Tensor, SameAllocationsOnCpuAndMeta) {
  auto run = [](Device d) {
    CachingAllocator& a = allocator_for(d);
    a.empty_cache();
    a.reset_peak();
    const int64_t base = a.stats().allocated;
    std::vector<Tensor> keep;
    for (int i = 1; i < 50; ++i) keep.push_back(Tensor::empty({i * 37, 513}, DType::f32, d));
    keep.erase(keep.begin() + 10, keep.begin() + 30);
    for (int i = 1; i < 20; ++i) keep.push_back(Tensor::empty({i * 101, 65}, DType::bf16, d));
    auto s = a.stats();
    return std::vector<int64_t>{s.allocated - base, s.peak_allocated - base, s.reserved, s.segments};
  };
  EXPECT_EQ(run(Device::cpu), run(Device::meta));
}

TEST(Tensor, CudaUnavailableSaysWhy) {
  std::string why;
  if (cuda_available(&why)) GTEST_SKIP() << "a GPU is present; this test checks the message without one";
  EXPECT_FALSE(why.empty());
  try {
    Tensor::empty({2}, DType::f32, Device::cuda);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda device unavailable"), std::string::npos);
  }
}

TEST(Tensor, DeviceNames) {
  EXPECT_EQ(device_from_name("meta"), Device::meta);
  EXPECT_THROW(device_from_name("tpu"), std::invalid_argument);
}

// A double rounds once into bf16 and f16, the same way in Tensor::from_doubles,
// in host-filled tensors (batches) and in the cast kernel from f64: the same
// value gives the same bits every way.
TEST(Tensor, DoublesRoundOnceAndAlikeEverywhere) {
  const double just_above_bf16_tie = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  const double just_above_f16_tie = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30);
  std::vector<double> values = {just_above_bf16_tie, -just_above_bf16_tie, just_above_f16_tie, -just_above_f16_tie,
                                1.0 + std::ldexp(1.0, -8), 1.0 + 3 * std::ldexp(1.0, -8), 0.0, -0.0, 1e-40, 6e-8,
                                65520.0, 1e300, -1e300, std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::quiet_NaN()};
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  for (int i = 0; i < 4000; ++i) values.push_back(std::ldexp(mantissa(rng), static_cast<int>(rng() % 60) - 30));
  const int64_t n = static_cast<int64_t>(values.size());
  const Tensor wide = Tensor::from_doubles(values, {n}, DType::f64, Device::cpu);
  for (DType dtype : {DType::bf16, DType::f16}) {
    const Tensor direct = Tensor::from_doubles(values, {n}, dtype, Device::cpu);
    Tensor cast = Tensor::empty({n}, dtype, Device::cpu);
    kernels::cast(cast, wide);
    const Tensor host = data::host_filled({n}, dtype, Device::cpu, [&](data::HostValues& v) {
      for (size_t i = 0; i < values.size(); ++i) v[i] = values[i];
    });
    EXPECT_EQ(std::memcmp(direct.data(), cast.data(), direct.nbytes()), 0) << dtype_name(dtype);
    EXPECT_EQ(std::memcmp(direct.data(), host.data(), direct.nbytes()), 0) << dtype_name(dtype);
  }
  // Rounded once, a value just above a tie goes up; through f32 it would land on
  // the tie and go to even (down).
  const Tensor b = Tensor::from_doubles({just_above_bf16_tie}, {1}, DType::bf16, Device::cpu);
  EXPECT_EQ(static_cast<const uint16_t*>(b.data())[0], f32_to_bf16(1.0f + 0.0078125f));
  EXPECT_NE(f32_to_bf16(static_cast<float>(just_above_bf16_tie)), f32_to_bf16(1.0f + 0.0078125f));
  const Tensor h = Tensor::from_doubles({just_above_f16_tie}, {1}, DType::f16, Device::cpu);
  EXPECT_EQ(static_cast<const uint16_t*>(h.data())[0], f32_to_f16(1.0f + 0.0009765625f));
  EXPECT_NE(f32_to_f16(static_cast<float>(just_above_f16_tie)), f32_to_f16(1.0f + 0.0009765625f));
}
