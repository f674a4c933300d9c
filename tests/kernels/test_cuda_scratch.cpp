// test_cuda_scratch.cpp: the cuda kernels' scratch (partial sums, the
// all_finite flag, the index checks' verdict) goes through the caching allocator,
// and a dry run on meta standing for cuda requests exactly what the gpu run
// requests: one workspace block of the size kernels/cuda/scratch.h names, freed
// before the op returns. The cpu kernels need no scratch, so cpu runs and meta
// runs standing for the cpu allocate nothing.
//
// Without a gpu only the meta and cpu sides run here; the tests that compare with
// the cuda device, and that watch guard bytes around an exactly sized scratch,
// skip and say why.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/scratch.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "kernels/layernorm.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
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

// Restores the cpu as the meta target whatever a test does.
class MetaTargetGuard {
 public:
  explicit MetaTargetGuard(Device target) : saved_(meta_target()) { set_meta_target(target); }
  ~MetaTargetGuard() { set_meta_target(saved_); }
  MetaTargetGuard(const MetaTargetGuard&) = delete;
  MetaTargetGuard& operator=(const MetaTargetGuard&) = delete;

 private:
  Device saved_;
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

// One op call: builds its operands on a device and returns the call itself, so
// that only the op runs while the allocator traces.
struct OpCase {
  std::string name;
  size_t scratch_bytes;  // what kernels/cuda/scratch.h names for these shapes (0: none)
  std::function<std::function<void()>(Device)> prepare;
};

std::vector<OpCase> op_cases() {
  std::vector<OpCase> cases;
  for (const auto& [name, run] :
       std::vector<std::pair<std::string, void (*)(Tensor&, const Tensor&)>>{
           {"sum_all", kernels::sum_all}, {"mean_all", kernels::mean_all}, {"sum_squares", kernels::sum_squares}})
    for (int64_t n : {1, 65})
      cases.push_back({name + "/" + std::to_string(n), cuda::whole_sum_scratch_bytes(), [run = run, n = n](Device d) {
                         Tensor x = values({n}, DType::bf16, d, 1), out = output({1}, DType::f32, d);
                         return std::function<void()>([=]() mutable { run(out, x); });
                       }});
  // One pass (1, 33 columns), several passes (1000), no column at all.
  for (int64_t cols : {1, 33, 1000, 0})
    for (int64_t rows : {0, 31})
      cases.push_back({"sum_rows/" + std::to_string(rows) + "x" + std::to_string(cols),
                       cols ? cuda::sum_rows_scratch_bytes(cols) : 0, [rows, cols](Device d) {
                         Tensor x = values({rows, cols}, DType::f32, d, 2), out = output({cols}, DType::f32, d);
                         return std::function<void()>([=]() mutable { kernels::sum_rows(out, x, true); });
                       }});
  cases.push_back({"weighted_mse_forward/31x5", cuda::whole_sum_scratch_bytes(), [](Device d) {
                     Tensor pred = values({31, 5}, DType::bf16, d, 3), target = values({31, 5}, DType::f32, d, 4);
                     Tensor rows = values({31}, DType::f32, d, 5), cols = values({5}, DType::f32, d, 6);
                     Tensor loss = output({1}, DType::f32, d);
                     return std::function<void()>(
                         [=]() mutable { kernels::weighted_mse_forward(loss, pred, target, rows, cols); });
                   }});
  cases.push_back({"weighted_mse_backward/31x5", 0, [](Device d) {
                     Tensor pred = values({31, 5}, DType::f32, d, 3), target = values({31, 5}, DType::f32, d, 4);
                     Tensor rows = values({31}, DType::f32, d, 5), cols = values({5}, DType::f32, d, 6);
                     Tensor grad = output({31, 5}, DType::f32, d);
                     return std::function<void()>(
                         [=]() mutable { kernels::weighted_mse_backward(grad, 0.5, pred, target, rows, cols); });
                   }});
  for (int64_t rows : {0, 33})
    for (int64_t cols : {65, 700}) {
      const std::string at = std::to_string(rows) + "x" + std::to_string(cols);
      cases.push_back({"layernorm_backward/" + at, cuda::layernorm_backward_scratch_bytes(rows, cols),
                       [rows, cols](Device d) {
                         Tensor x = values({rows, cols}, DType::bf16, d, 7);
                         Tensor dy = values({rows, cols}, DType::bf16, d, 8);
                         Tensor mean = values({rows}, DType::f32, d, 9), rstd = values({rows}, DType::f32, d, 10);
                         Tensor gamma = values({cols}, DType::f32, d, 11);
                         Tensor dx = output({rows, cols}, DType::bf16, d);
                         Tensor dgamma = output({cols}, DType::f32, d), dbeta = output({cols}, DType::f32, d);
                         return std::function<void()>([=]() mutable {
                           kernels::layernorm_backward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma);
                         });
                       }});
      cases.push_back({"layernorm_forward/" + at, 0, [rows, cols](Device d) {
                         Tensor x = values({rows, cols}, DType::f32, d, 7), gamma = values({cols}, DType::f32, d, 11);
                         Tensor beta = values({cols}, DType::f32, d, 12), out = output({rows, cols}, DType::f32, d);
                         Tensor mean = output({rows}, DType::f32, d), rstd = output({rows}, DType::f32, d);
                         return std::function<void()>(
                             [=]() mutable { kernels::layernorm_forward(out, mean, rstd, x, gamma, beta, 1e-5); });
                       }});
    }
  for (int64_t n : {0, 1, 65})
    cases.push_back({"all_finite/" + std::to_string(n), cuda::all_finite_scratch_bytes(n), [n](Device d) {
                       Tensor x = values({n}, DType::f16, d, 13);
                       return std::function<void()>([=]() { EXPECT_TRUE(kernels::all_finite(x)); });
                     }});
  cases.push_back({"add_forward/65", 0, [](Device d) {
                     Tensor a = values({65}, DType::f32, d, 14), b = values({65}, DType::bf16, d, 15);
                     Tensor out = output({65}, DType::f32, d);
                     return std::function<void()>([=]() mutable { kernels::add_forward(out, a, b); });
                   }});
  cases.push_back({"adamw_step/33", 0, [](Device d) {
                     Tensor p = values({33}, DType::f32, d, 16), g = values({33}, DType::f32, d, 17);
                     Tensor m = output({33}, DType::f32, d), v = output({33}, DType::f32, d);
                     return std::function<void()>(
                         [=]() mutable { kernels::adamw_step(p, g, m, v, kernels::AdamWSettings{}, 1, 1.0); });
                   }});
  // A graph of 5 nodes and 4 edges: edge e goes from sender[e] to receiver[e]
  // (receivers sorted, so their CSR order is the identity).
  const std::vector<int32_t> senders{0, 4, 2, 4}, sender_order{0, 2, 1, 3}, sender_offsets{0, 1, 1, 2, 2, 4},
      receiver_offsets{0, 1, 1, 2, 3, 4};
  for (int64_t edges : {0, 4})
    cases.push_back({"gather_rows_forward/" + std::to_string(edges), cuda::index_check_scratch_bytes(),
                     [senders, edges](Device d) {
                       Tensor x = values({5, 3}, DType::f32, d, 18), out = output({edges, 3}, DType::f32, d);
                       Tensor index = indices(std::vector<int32_t>(senders.begin(), senders.begin() + edges), d);
                       return std::function<void()>([=]() mutable { kernels::gather_rows_forward(out, x, index); });
                     }});
  cases.push_back({"gather_rows_backward", cuda::index_check_scratch_bytes(), [=](Device d) {
                     Tensor dy = values({4, 3}, DType::bf16, d, 19), dx = output({5, 3}, DType::f32, d);
                     Tensor order = indices(sender_order, d), offsets = indices(sender_offsets, d);
                     return std::function<void()>(
                         [=]() mutable { kernels::gather_rows_backward(dx, dy, order, offsets); });
                   }});
  cases.push_back({"segment_sum_forward", cuda::index_check_scratch_bytes(), [=](Device d) {
                     Tensor x = values({4, 3}, DType::f32, d, 20), out = output({5, 3}, DType::f32, d);
                     Tensor offsets = indices(receiver_offsets, d);
                     return std::function<void()>(
                         [=]() mutable { kernels::segment_sum_forward(out, x, offsets, false); });
                   }});
  cases.push_back({"segment_sum_backward", cuda::index_check_scratch_bytes(), [=](Device d) {
                     Tensor dy = values({5, 3}, DType::f32, d, 21), dx = output({4, 3}, DType::f32, d);
                     Tensor offsets = indices(receiver_offsets, d);
                     return std::function<void()>([=]() mutable { kernels::segment_sum_backward(dx, dy, offsets); });
                   }});
  return cases;
}

// An allocator event as the dry-run contract sees it.
struct Request {
  AllocEventKind kind;
  int64_t bytes;
  Category category;
  std::string label;
  bool operator==(const Request& o) const {
    return kind == o.kind && bytes == o.bytes && category == o.category && label == o.label;
  }
};

std::ostream& operator<<(std::ostream& os, const Request& r) {
  return os << alloc_event_name(r.kind) << " " << r.bytes << " B " << category_name(r.category) << " '" << r.label
            << "'";
}

// The block allocations and frees the op makes on `device` (segment events left
// out: they depend on what earlier tests left in the cache).
std::vector<Request> requests_of(const OpCase& op, Device device) {
  const std::function<void()> call = op.prepare(device);
  CachingAllocator& allocator = allocator_for(device);
  allocator.clear_trace();
  allocator.set_trace(true);
  {
    MemoryScope scope(op.name);
    call();
  }
  allocator.set_trace(false);
  const std::vector<std::string> labels = allocator.trace_labels();
  std::vector<Request> requests;
  for (const AllocEvent& e : allocator.trace())
    if (e.kind == AllocEventKind::alloc || e.kind == AllocEventKind::free)
      requests.push_back({e.kind, e.bytes, e.category, labels.at(e.label_id)});
  allocator.clear_trace();
  return requests;
}

// What the cuda path of `op` requests: its scratch, allocated and freed, in
// category workspace under the op's label (small pool: the block is the rounded request).
std::vector<Request> expected_cuda_requests(const OpCase& op) {
  if (op.scratch_bytes == 0) return {};
  const auto bytes = static_cast<int64_t>(round_request_bytes(op.scratch_bytes));
  return {{AllocEventKind::alloc, bytes, Category::workspace, op.name},
          {AllocEventKind::free, bytes, Category::workspace, op.name}};
}

// ---- no device needed ------------------------------------------------------------------------

TEST(CudaScratch, DryRunStandingForCudaRequestsEachOpsScratch) {
  const MetaTargetGuard target(Device::cuda);
  for (const OpCase& op : op_cases()) EXPECT_EQ(requests_of(op, Device::meta), expected_cuda_requests(op)) << op.name;
}

TEST(CudaScratch, CpuRunsAndDryRunsStandingForTheCpuAllocateNothing) {
  const MetaTargetGuard target(Device::cpu);
  for (const OpCase& op : op_cases()) {
    EXPECT_EQ(requests_of(op, Device::cpu), std::vector<Request>{}) << op.name;
    EXPECT_EQ(requests_of(op, Device::meta), std::vector<Request>{}) << op.name;
  }
}

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
    for (int64_t rows : {1, 33, 10000000})
      EXPECT_EQ(cuda::layernorm_backward_scratch_bytes(rows, cols), 2 * one) << rows << "x" << cols;
    previous = one;
  }
  EXPECT_EQ(cuda::layernorm_backward_scratch_bytes(0, 65), 0u);
  EXPECT_EQ(cuda::whole_sum_scratch_bytes(), size_t(cuda::kSumBlocks) * sizeof(double));
  for (size_t bytes : {cuda::whole_sum_scratch_bytes(), cuda::sum_rows_scratch_bytes(1 << 20),
                       cuda::layernorm_backward_scratch_bytes(1 << 20, 1 << 20), cuda::all_finite_scratch_bytes(1),
                       cuda::index_check_scratch_bytes()})
    EXPECT_TRUE(is_small_request(round_request_bytes(bytes))) << bytes;
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

class CudaScratchDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  }
};

// The contract itself: the gpu run and the dry run make the same requests.
TEST_F(CudaScratchDevice, EachOpRequestsWhatItsDryRunRequests) {
  const MetaTargetGuard target(Device::cuda);
  for (const OpCase& op : op_cases()) {
    const std::vector<Request> on_gpu = requests_of(op, Device::cuda);
    EXPECT_EQ(on_gpu, requests_of(op, Device::meta)) << op.name;
    EXPECT_EQ(on_gpu, expected_cuda_requests(op)) << op.name;
  }
}

#ifdef GC_CUDA
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
    GuardedScratch scratch(cuda::layernorm_backward_scratch_bytes(rows, cols));
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
