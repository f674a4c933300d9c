// test_cuda_scratch.cpp: the cuda kernels' scratch (partial sums, the
// all_finite flag, the index checks' verdict) itself: its sizes stay bounded
// whatever the shape, the kernels refuse a scratch that is short or not on the
// gpu, and stay inside one of exactly the size kernels/cuda/scratch.h names. That
// each op requests exactly that scratch on cuda and on meta standing for cuda,
// and nothing on the cpu, is a column of the backend table (test_backend_ops.cpp).
//
// Without a gpu the checks on the gpu skip and say why.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/scratch.h"
#include "kernels/index.h"
#include "kernels/layernorm.h"
#include "kernels/loss.h"
#include "kernels/reduce.h"
#include "tests/test_util.h"

#ifdef GC_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/index.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/reduce.h"
#endif

namespace gc {
namespace {

using test::MetaTargetGuard;

// ---- no device needed ------------------------------------------------------------------------

// Fixed-order reductions keep their partials bounded whatever the tensor: a
// bias gradient over millions of rows or thousands of columns costs the small pool
// a few blocks, never memory that grows with the data.
TEST(CudaScratch, SizesAreBoundedWhateverTheShape) {
  const size_t per_sum_cap = size_t(cuda::kRowGroups) * cuda::kPassColumns * sizeof(double);
  size_t previous = 0;
  for (int64_t cols : {1, 31, 33, 511, 512, 513, 4096, 1000000}) {
    const size_t one = cuda::sum_rows_scratch_bytes(cols);
    EXPECT_GE(one, previous) << cols;  // grows with the columns of one pass...
    EXPECT_LE(one, per_sum_cap) << cols;  // ...up to one pass's partials
    EXPECT_GE(one, size_t(cuda::kRowGroups) * static_cast<size_t>(std::min<int64_t>(cols, cuda::kPassColumns)) *
                       sizeof(double))
        << cols;
    previous = one;
  }
  EXPECT_EQ(cuda::whole_sum_scratch_bytes(), size_t(cuda::kSumBlocks) * sizeof(double));
  // Many sums: one launch's partials, whatever the number of tensors.
  EXPECT_EQ(cuda::whole_sums_scratch_bytes(0), 0u);
  EXPECT_EQ(cuda::whole_sums_scratch_bytes(1), cuda::whole_sum_scratch_bytes());
  EXPECT_EQ(cuda::whole_sums_scratch_bytes(1 << 20), size_t(cuda::kSumsPerLaunch) * cuda::whole_sum_scratch_bytes());
  for (size_t bytes : {cuda::whole_sum_scratch_bytes(), cuda::whole_sums_scratch_bytes(1 << 20),
                       cuda::sum_rows_scratch_bytes(1 << 20), cuda::all_finite_scratch_bytes(1),
                       cuda::index_check_scratch_bytes()})
    EXPECT_TRUE(is_small_request(round_request_bytes(bytes))) << bytes;
}

// The exception: LayerNorm's parameter gradients sum in the cpu's order, one
// partial per 256-row block and column, in the accumulation type: 2 sums x
// ceil(R / 256) x C, 1/128 of x's elements for both sums together.
TEST(CudaScratch, LayerNormBackwardHoldsOnePartialPerRowBlockAndColumn) {
  for (int64_t cols : {1, 33, 512, 700})
    for (int64_t rows : {1, 255, 256, 257, 1038240}) {
      const size_t blocks = static_cast<size_t>((rows + 255) / 256);
      EXPECT_EQ(cuda::layernorm_backward_scratch_bytes(rows, cols, DType::bf16), 2 * blocks * cols * 4)
          << rows << "x" << cols;
      EXPECT_EQ(cuda::layernorm_backward_scratch_bytes(rows, cols, DType::f32), 2 * blocks * cols * 4);
      EXPECT_EQ(cuda::layernorm_backward_scratch_bytes(rows, cols, DType::f64), 2 * blocks * cols * 8);
    }
  EXPECT_EQ(cuda::layernorm_backward_scratch_bytes(0, 65, DType::f32), 0u);
}

TEST(CudaScratch, KernelsRefuseScratchThatIsShortOrNotOnTheGpu) {
  const size_t need = cuda::whole_sum_scratch_bytes();
  auto message = [&](const Tensor& scratch) -> std::string {
    try {
      cuda::require_scratch("sum_all", scratch, need);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  const Tensor host = Tensor::empty({static_cast<int64_t>(need / 4)}, DType::i32, Device::cpu);
  EXPECT_NE(message(host).find("cuda scratch of 8192 bytes needed, got i32[2048] on cpu"), std::string::npos)
      << message(host);
  const Tensor meta = Tensor::empty({static_cast<int64_t>(need / 4)}, DType::i32, Device::meta);
  EXPECT_NE(message(meta).find("on meta"), std::string::npos) << message(meta);
  EXPECT_NE(message(Tensor()).find("got none"), std::string::npos) << message(Tensor());
  EXPECT_NO_THROW(cuda::require_scratch("all_finite", Tensor(), 0));
  // No scratch on the cpu, and none on meta unless it stands for cuda.
  {
    const MetaTargetGuard target(Device::cpu);
    EXPECT_FALSE(cuda::allocate_scratch(Device::cpu, need).defined());
    EXPECT_FALSE(cuda::allocate_scratch(Device::meta, need).defined());
  }
  const MetaTargetGuard target(Device::cuda);
  const Tensor scratch = cuda::allocate_scratch(Device::meta, 13);
  ASSERT_TRUE(scratch.defined());
  EXPECT_GE(scratch.nbytes(), 13u);
  EXPECT_LT(scratch.nbytes(), 13u + 4);
  EXPECT_FALSE(cuda::allocate_scratch(Device::meta, 0).defined());
}

// ---- on the gpu ------------------------------------------------------------------------------

#ifdef GC_CUDA
class CudaScratchDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  }
};

// A float tensor with values on cpu/cuda, shapes only on meta.
Tensor values(const Shape& shape, DType dtype, Device device, uint64_t seed) {
  MemoryScope scope(Category::input);
  if (device == Device::meta) return Tensor::empty(shape, dtype, device);
  return test::random_tensor(shape, dtype, seed, 1.0, device);
}

Tensor indices(const std::vector<int32_t>& values, Device device) {
  MemoryScope scope(Category::input);
  const Shape shape{static_cast<int64_t>(values.size())};
  if (device == Device::meta) return Tensor::empty(shape, DType::i32, device);
  return Tensor::from_host(values.data(), shape, DType::i32, device);
}

Tensor output(const Shape& shape, DType dtype, Device device) {
  MemoryScope scope(Category::input);
  return Tensor::zeros(shape, dtype, device);
}

constexpr int32_t kGuardWord = 0x5eadbeef;
constexpr int64_t kGuardWords = 256;

// A cuda view of exactly `bytes` (in 4-byte words) with guard words on both sides.
struct GuardedScratch {
  Tensor whole, view;
  explicit GuardedScratch(size_t bytes) {
    const int64_t words = static_cast<int64_t>((bytes + 3) / 4);
    std::vector<int32_t> pattern(static_cast<size_t>(words + 2 * kGuardWords), kGuardWord);
    whole = Tensor::from_host(pattern.data(), {words + 2 * kGuardWords}, DType::i32, Device::cuda);
    view = whole.slice_rows(kGuardWords, words);
  }
  ::testing::AssertionResult guards_intact() const {
    const std::vector<double> now = whole.to_doubles();
    const int64_t words = view.numel();
    for (int64_t i = 0; i < static_cast<int64_t>(now.size()); ++i) {
      if (i >= kGuardWords && i < kGuardWords + words) continue;
      if (static_cast<int32_t>(now[static_cast<size_t>(i)]) != kGuardWord)
        return ::testing::AssertionFailure() << "guard word " << i << " overwritten";
    }
    return ::testing::AssertionSuccess();
  }
};

// Each kernel stays inside a scratch of exactly the size scratch.h names, and
// gives the bits it gives with the scratch its dispatch allocates.
TEST_F(CudaScratchDevice, KernelsStayInsideAnExactlySizedScratch) {
  const Device d = Device::cuda;
  const auto bitwise = [](const Tensor& a, const Tensor& b) { return a.to_doubles() == b.to_doubles(); };
  {
    const Tensor x = values({2015}, DType::bf16, d, 1);
    Tensor got = output({1}, DType::f32, d), ref = output({1}, DType::f32, d);
    GuardedScratch scratch(cuda::whole_sum_scratch_bytes());
    cuda::sum_all(got, x, scratch.view);
    kernels::sum_all(ref, x);
    EXPECT_TRUE(scratch.guards_intact()) << "sum_all";
    EXPECT_TRUE(bitwise(got, ref)) << "sum_all";
    GuardedScratch short_scratch(cuda::whole_sum_scratch_bytes() - 4);
    EXPECT_THROW(cuda::sum_all(got, x, short_scratch.view), std::invalid_argument);
    // Large enough, but one i32 word off the alignment of the doubles it holds.
    const int64_t words = static_cast<int64_t>(cuda::whole_sum_scratch_bytes() / 4);
    const Tensor unaligned = Tensor::empty({words + 1}, DType::i32, d).slice_rows(1, words);
    EXPECT_THROW(cuda::sum_all(got, x, unaligned), std::invalid_argument);
  }
  for (int64_t cols : {1, 33, 1000}) {
    const Tensor x = values({65, cols}, DType::f32, d, 2);
    Tensor got = output({cols}, DType::f32, d), ref = output({cols}, DType::f32, d);
    GuardedScratch scratch(cuda::sum_rows_scratch_bytes(cols));
    cuda::sum_rows(got, x, false, scratch.view);
    kernels::sum_rows(ref, x, false);
    EXPECT_TRUE(scratch.guards_intact()) << "sum_rows " << cols;
    EXPECT_TRUE(bitwise(got, ref)) << "sum_rows " << cols;
  }
  {
    const Tensor pred = values({31, 5}, DType::f32, d, 3), target = values({31, 5}, DType::f32, d, 4);
    const Tensor rows = values({31}, DType::f32, d, 5), cols = values({5}, DType::f32, d, 6);
    Tensor got = output({1}, DType::f32, d), ref = output({1}, DType::f32, d);
    GuardedScratch scratch(cuda::whole_sum_scratch_bytes());
    cuda::weighted_mse_forward(got, pred, target, rows, cols, scratch.view);
    kernels::weighted_mse_forward(ref, pred, target, rows, cols);
    EXPECT_TRUE(scratch.guards_intact()) << "weighted_mse_forward";
    EXPECT_TRUE(bitwise(got, ref)) << "weighted_mse_forward";
  }
  for (int64_t cols : {65, 700}) {
    const int64_t rows = 33;
    const Tensor x = values({rows, cols}, DType::f32, d, 7), dy = values({rows, cols}, DType::f32, d, 8);
    const Tensor mean = values({rows}, DType::f32, d, 9), rstd = values({rows}, DType::f32, d, 10);
    const Tensor gamma = values({cols}, DType::f32, d, 11);
    Tensor dx = output({rows, cols}, DType::f32, d), dgamma = output({cols}, DType::f32, d),
           dbeta = output({cols}, DType::f32, d);
    Tensor rdx = output({rows, cols}, DType::f32, d), rdgamma = output({cols}, DType::f32, d),
           rdbeta = output({cols}, DType::f32, d);
    GuardedScratch scratch(cuda::layernorm_backward_scratch_bytes(rows, cols, DType::f32));
    cuda::layernorm_backward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, scratch.view);
    kernels::layernorm_backward(rdx, rdgamma, rdbeta, dy, x, mean, rstd, gamma);
    EXPECT_TRUE(scratch.guards_intact()) << "layernorm_backward " << cols;
    EXPECT_TRUE(bitwise(dgamma, rdgamma) && bitwise(dbeta, rdbeta)) << "layernorm_backward " << cols;
  }
  {
    std::vector<double> with_inf = test::random_values(65, 12);
    with_inf[40] = INFINITY;
    const Tensor finite = values({65}, DType::f16, d, 13);
    const Tensor not_finite = Tensor::from_doubles(with_inf, {65}, DType::f16, d);
    GuardedScratch scratch(cuda::all_finite_scratch_bytes(65));
    EXPECT_FALSE(cuda::all_finite(not_finite, scratch.view));
    EXPECT_TRUE(cuda::all_finite(finite, scratch.view));  // the flag is reset on every call
    EXPECT_TRUE(scratch.guards_intact()) << "all_finite";
  }
  {
    GuardedScratch scratch(cuda::index_check_scratch_bytes());
    EXPECT_NO_THROW(cuda::check_index_values(indices({0, 4, 2}, d), 5, "gather_rows_forward", "index", scratch.view));
    EXPECT_THROW(cuda::check_index_values(indices({0, 5, 2}, d), 5, "gather_rows_forward", "index", scratch.view),
                 std::invalid_argument);
    EXPECT_NO_THROW(cuda::check_offsets(indices({0, 1, 1, 3}, d), 3, "segment_sum_forward", scratch.view));
    EXPECT_THROW(cuda::check_offsets(indices({0, 2, 1, 3}, d), 3, "segment_sum_forward", scratch.view),
                 std::invalid_argument);
    EXPECT_TRUE(scratch.guards_intact()) << "index checks";
  }
}
#endif  // GC_CUDA

}  // namespace
}  // namespace gc
