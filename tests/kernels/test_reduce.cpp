// test_reduce.cpp: kernels/reduce.h against f64 sums of the stored inputs, in every
// float dtype at odd sizes; sum_squares_many bit for bit sum_squares of each
// tensor; bitwise equal results for 1, 2 and 3 threads; the accuracy of the
// pairwise order on a long sum; meta runs; bad operands.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "kernels/cuda/scratch.h"
#include "kernels/reduce.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::test;

namespace {

struct ReduceCase {
  DType dtype;
  Shape shape;  // [R, C]
};

std::vector<ReduceCase> reduce_cases() {
  std::vector<ReduceCase> cases;
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (Shape shape : {Shape{1, 1}, Shape{31, 1}, Shape{33, 31}, Shape{65, 65}, Shape{1000, 7}, Shape{7, 1000}})
      cases.push_back({dtype, shape});
  return cases;
}

// Readable parameters in failure messages.
void PrintTo(const ReduceCase& c, std::ostream* os) { *os << dtype_name(c.dtype) << shape_string(c.shape); }

std::string case_name(const ::testing::TestParamInfo<ReduceCase>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_" + std::to_string(info.param.shape[0]) + "x" +
         std::to_string(info.param.shape[1]);
}

class ReduceTest : public ::testing::TestWithParam<ReduceCase> {
 protected:
  DType dtype() const { return GetParam().dtype; }
  int64_t rows() const { return GetParam().shape[0]; }
  int64_t cols() const { return GetParam().shape[1]; }
  Tensor scalar_out() const { return Tensor::empty({1}, accumulation_dtype(dtype())); }
  Tolerance tolerance(int64_t terms) const {
    return tolerance_for(accumulation_dtype(dtype()), static_cast<double>(terms));
  }
};

TEST_P(ReduceTest, SumAllMeanAllSumSquares) {
  Tensor x = random_tensor(GetParam().shape, dtype(), 1, 2.0);
  const std::vector<double> v = x.to_doubles();
  double sum = 0, squares = 0;
  for (double e : v) sum += e, squares += e * e;
  const double n = static_cast<double>(v.size());
  Tensor out = scalar_out();
  kernels::sum_all(out, x);
  EXPECT_TRUE(all_close(out.to_doubles(), {sum}, tolerance(x.numel()), "sum_all"));
  kernels::mean_all(out, x);
  EXPECT_TRUE(all_close(out.to_doubles(), {sum / n}, tolerance(x.numel() + 1), "mean_all"));
  kernels::sum_squares(out, x);
  EXPECT_TRUE(all_close(out.to_doubles(), {squares}, tolerance(x.numel() + 1), "sum_squares"));
}

TEST_P(ReduceTest, SumRowsAssignsThenAccumulates) {
  Tensor x = random_tensor(GetParam().shape, dtype(), 2, 2.0);
  const std::vector<double> v = x.to_doubles();
  std::vector<double> column_sums(static_cast<size_t>(cols()), 0.0);
  for (int64_t r = 0; r < rows(); ++r)
    for (int64_t c = 0; c < cols(); ++c) column_sums[static_cast<size_t>(c)] += v[static_cast<size_t>(r * cols() + c)];
  Tensor out = random_tensor({cols()}, accumulation_dtype(dtype()), 3);
  kernels::sum_rows(out, x, /*accumulate=*/false);
  EXPECT_TRUE(all_close(out.to_doubles(), column_sums, tolerance(rows()), "sum_rows"));
  const std::vector<double> before = out.to_doubles();
  Tensor x2 = random_tensor(GetParam().shape, dtype(), 4, 2.0);
  const std::vector<double> v2 = x2.to_doubles();
  std::vector<double> ref = before;
  for (int64_t r = 0; r < rows(); ++r)
    for (int64_t c = 0; c < cols(); ++c) ref[static_cast<size_t>(c)] += v2[static_cast<size_t>(r * cols() + c)];
  kernels::sum_rows(out, x2, /*accumulate=*/true);
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance(rows() + 1), "sum_rows accumulate"));
}

INSTANTIATE_TEST_SUITE_P(Reduce, ReduceTest, ::testing::ValuesIn(reduce_cases()), case_name);

// ---- many sums of squares at once ------------------------------------------------------------

// `count` tensors of `dtype`: tensor k has (k * 37) % 101 elements, so sizes
// repeat, and every seventh is empty; with a 16-bit dtype every third is f32
// (one accumulation dtype, two storage dtypes in one call).
std::vector<Tensor> many_tensors(int64_t count, DType dtype, uint64_t seed, Device device = Device::cpu) {
  std::vector<Tensor> xs;
  for (int64_t k = 0; k < count; ++k) {
    const DType d = accumulation_dtype(dtype) != dtype && k % 3 == 2 ? accumulation_dtype(dtype) : dtype;
    const int64_t n = k % 7 == 3 ? 0 : (k * 37) % 101;
    xs.push_back(device == Device::meta ? Tensor::empty({n}, d, device)
                                        : random_tensor({n}, d, seed + static_cast<uint64_t>(k), 2.0));
  }
  return xs;
}

// Every slot against the f64 sum of its tensor, and bit for bit what sum_squares
// gives that tensor alone: one tensor, a few, and more than one cuda launch takes.
TEST(ReduceSumSquaresMany, EachSlotIsSumSquaresOfItsTensor) {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (int64_t count : {int64_t(1), int64_t(2), int64_t(9), int64_t(cuda::kSumsPerLaunch) + 3}) {
      const std::string what = std::string("sum_squares_many ") + dtype_name(dtype) + " x" + std::to_string(count);
      const DType acc = accumulation_dtype(dtype);
      const std::vector<Tensor> xs = many_tensors(count, dtype, 40);
      Tensor out = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(count), 7.0), {count}, acc);
      kernels::sum_squares_many(out, xs);
      Tensor alone = Tensor::empty({count}, acc);
      std::vector<double> squares(static_cast<size_t>(count), 0.0);
      for (int64_t k = 0; k < count; ++k) {
        Tensor slot = alone.slice_rows(k, 1);
        kernels::sum_squares(slot, xs[static_cast<size_t>(k)]);
        for (double e : xs[static_cast<size_t>(k)].to_doubles()) squares[static_cast<size_t>(k)] += e * e;
      }
      EXPECT_TRUE(all_close(out.to_doubles(), squares, tolerance_for(acc, 101.0), what));
      ASSERT_EQ(out.nbytes(), alone.nbytes());
      EXPECT_EQ(std::memcmp(out.data(), alone.data(), out.nbytes()), 0) << what << ": not sum_squares' bits";
    }
}

TEST(ReduceSumSquaresMany, EmptyTensorsAndNoTensors) {
  const std::vector<Tensor> xs = {Tensor::empty({0}, DType::f32), random_tensor({5}, DType::f32, 50),
                                  Tensor::empty({0, 3}, DType::bf16)};
  Tensor out = Tensor::from_doubles({7, 7, 7}, {3}, DType::f32);
  kernels::sum_squares_many(out, xs);
  const std::vector<double> got = out.to_doubles();
  EXPECT_EQ(got[0], 0.0);
  EXPECT_GT(got[1], 0.0);
  EXPECT_EQ(got[2], 0.0);
  Tensor none = Tensor::empty({0}, DType::f32);
  EXPECT_NO_THROW(kernels::sum_squares_many(none, {}));
}

// On meta: no data touched; standing for the cpu nothing allocated, standing for
// cuda one launch's partials, allocated and freed in the call.
TEST(ReduceSumSquaresMany, MetaRunsAndAllocatesOnlyTheCudaScratch) {
  auto& allocator = allocator_for(Device::meta);
  for (Device target : {Device::cpu, Device::cuda})
    for (int64_t count : {int64_t(0), int64_t(5), int64_t(cuda::kSumsPerLaunch) + 3}) {
      const MetaTargetGuard guard(target);
      const std::vector<Tensor> xs = many_tensors(count, DType::bf16, 0, Device::meta);
      Tensor out = Tensor::empty({count}, DType::f32, Device::meta);
      const AllocatorStats before = allocator.stats();
      kernels::sum_squares_many(out, xs);
      const AllocatorStats after = allocator.stats();
      const std::string what = std::string("standing for ") + device_name(target) + ", " + std::to_string(count);
      EXPECT_EQ(after.allocated, before.allocated) << what;
      const bool scratch = target == Device::cuda && count > 0;
      EXPECT_EQ(after.num_allocs, before.num_allocs + (scratch ? 1 : 0)) << what;
    }
}

TEST(ReduceSumSquaresMany, RejectsBadOperandsNamingTheOp) {
  const std::vector<Tensor> xs = {random_tensor({33}, DType::bf16, 60), random_tensor({7}, DType::f32, 61)};
  auto message = [&](Tensor out, const std::vector<Tensor>& inputs) -> std::string {
    try {
      kernels::sum_squares_many(out, inputs);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"one slot short", message(Tensor::empty({1}, DType::f32), xs)},
      {"2-D out", message(Tensor::empty({2, 1}, DType::f32), xs)},
      {"bf16 out", message(Tensor::empty({2}, DType::bf16), xs)},
      {"f32 out for f64", message(Tensor::empty({1}, DType::f32), {random_tensor({3}, DType::f64, 62)})},
      {"f64 among f32", message(Tensor::empty({2}, DType::f32), {xs[1], random_tensor({3}, DType::f64, 63)})},
      {"integer x", message(Tensor::empty({1}, DType::f32), {Tensor::zeros({4}, DType::i32)})},
      {"undefined x", message(Tensor::empty({1}, DType::f32), {Tensor()})},
      {"undefined out", message(Tensor(), xs)},
      {"meta out", message(Tensor::empty({2}, DType::f32, Device::meta), xs)},
  };
  for (const auto& [name, what] : cases) {
    EXPECT_NE(what, "accepted") << name;
    EXPECT_NE(what.find("sum_squares_many"), std::string::npos) << name << ": " << what;
  }
}

// ---- determinism and accuracy ------------------------------------------------------

// Runs `compute` with 1, 2 and 3 OpenMP threads and expects the same bytes each time.
void expect_same_bits_for_thread_counts(const std::function<Tensor()>& compute, const std::string& what) {
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Tensor single = compute();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    const Tensor multi = compute();
    ASSERT_EQ(single.nbytes(), multi.nbytes());
    EXPECT_EQ(std::memcmp(single.data(), multi.data(), single.nbytes()), 0) << what << " with " << threads
                                                                             << " threads";
  }
  omp_set_num_threads(saved_threads);
}

TEST(ReduceDeterminism, BitwiseEqualForAnyThreadCount) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f64}) {
    const std::string name = dtype_name(dtype);
    Tensor x = random_tensor({300001}, dtype, 10);
    auto scalar = [&](void (*op)(Tensor&, const Tensor&)) {
      return [&, op] {
        Tensor out = Tensor::empty({1}, accumulation_dtype(dtype));
        op(out, x);
        return out;
      };
    };
    expect_same_bits_for_thread_counts(scalar(kernels::sum_all), "sum_all " + name);
    expect_same_bits_for_thread_counts(scalar(kernels::mean_all), "mean_all " + name);
    expect_same_bits_for_thread_counts(scalar(kernels::sum_squares), "sum_squares " + name);
    for (Shape shape : {Shape{5003, 130}, Shape{100003, 3}}) {
      Tensor matrix = random_tensor(shape, dtype, 11);
      expect_same_bits_for_thread_counts(
          [&] {
            Tensor out = Tensor::from_doubles(random_values(static_cast<size_t>(shape[1]), 12),
                                              {shape[1]}, accumulation_dtype(dtype));
            kernels::sum_rows(out, matrix, /*accumulate=*/true);
            return out;
          },
          "sum_rows " + name + shape_string(shape));
    }
  }
}

TEST(ReduceAccuracy, LongSumStaysNearTheExactValue) {
  // A million equal terms: a sequential f32 sum drifts by about 1%; the pairwise
  // order keeps the error at a few f32 roundings per level of its tree.
  const int64_t n = 1000000;
  Tensor x = Tensor::empty({n}, DType::f32);
  for (int64_t i = 0; i < n; ++i) x.data_as<float>()[i] = 0.1f;
  const double exact = static_cast<double>(n) * static_cast<double>(0.1f);
  Tensor out = Tensor::empty({1}, DType::f32);
  kernels::sum_all(out, x);
  EXPECT_TRUE(all_close(out.to_doubles(), {exact}, tolerance_for(DType::f32, std::log2(static_cast<double>(n))),
                        "sum of 1e6 x 0.1f"));
  Tensor column = x.reshape({n, 1});
  kernels::sum_rows(out, column, false);
  EXPECT_TRUE(all_close(out.to_doubles(), {exact}, tolerance_for(DType::f32, std::log2(static_cast<double>(n))),
                        "column sum of 1e6 x 0.1f"));
}

// ---- meta, empty and validation ---------------------------------------------------------

TEST(ReduceMeta, EveryOpRunsAndAllocatesNothing) {
  Tensor x = Tensor::empty({1000, 7}, DType::bf16, Device::meta);
  Tensor out = Tensor::empty({1}, DType::f32, Device::meta);
  Tensor columns = Tensor::empty({7}, DType::f32, Device::meta);
  auto& allocator = allocator_for(Device::meta);
  const AllocatorStats before = allocator.stats();
  kernels::sum_all(out, x);
  kernels::mean_all(out, x);
  kernels::sum_squares(out, x);
  kernels::sum_rows(columns, x, false);
  kernels::sum_rows(columns, x, true);
  const AllocatorStats after = allocator.stats();
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_EQ(after.num_allocs, before.num_allocs);
}

TEST(ReduceEmpty, EmptyInputSumsToZero) {
  Tensor x = Tensor::empty({0, 5}, DType::f32);
  Tensor out = Tensor::from_doubles({7}, {1}, DType::f32);
  kernels::sum_all(out, x);
  EXPECT_EQ(out.item(), 0.0);
  Tensor columns = Tensor::from_doubles(random_values(5, 20), {5}, DType::f32);
  const std::vector<double> before = columns.to_doubles();
  kernels::sum_rows(columns, x, true);
  EXPECT_EQ(columns.to_doubles(), before);
  kernels::sum_rows(columns, x, false);
  EXPECT_EQ(columns.to_doubles(), std::vector<double>(5, 0.0));
  EXPECT_THROW(kernels::mean_all(out, x), std::invalid_argument);
}

TEST(ReduceValidation, RejectsBadOperands) {
  Tensor x = random_tensor({33, 31}, DType::bf16, 30);
  Tensor wide = Tensor::empty({2}, DType::f32);
  EXPECT_THROW(kernels::sum_all(wide, x), std::invalid_argument);
  Tensor bf16_out = Tensor::empty({1}, DType::bf16);
  EXPECT_THROW(kernels::sum_squares(bf16_out, x), std::invalid_argument);
  Tensor f64_x = random_tensor({31}, DType::f64, 31);
  Tensor f32_out = Tensor::empty({1}, DType::f32);
  EXPECT_THROW(kernels::mean_all(f32_out, f64_x), std::invalid_argument);
  Tensor columns = Tensor::empty({30}, DType::f32);
  EXPECT_THROW(kernels::sum_rows(columns, x, false), std::invalid_argument);
  Tensor flat = random_tensor({31}, DType::f32, 32);
  Tensor one_column = Tensor::empty({1}, DType::f32);
  EXPECT_THROW(kernels::sum_rows(one_column, flat, false), std::invalid_argument);
  Tensor indices = Tensor::zeros({4}, DType::i32);
  EXPECT_THROW(kernels::sum_all(f32_out, indices), std::invalid_argument);
  Tensor meta_out = Tensor::empty({1}, DType::f32, Device::meta);
  EXPECT_THROW(kernels::sum_all(meta_out, x), std::invalid_argument);
  try {
    kernels::sum_all(wide, x);
    ADD_FAILURE() << "sum_all accepted a two-element output";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("sum_all"), std::string::npos) << message;
    EXPECT_NE(message.find(x.describe()), std::string::npos) << message;
  }
}

}  // namespace
