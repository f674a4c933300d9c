// test_elementwise.cpp: kernels/elementwise.h against f64 references computed from
// the stored (already rounded) inputs, in every float dtype and at odd sizes;
// silu_backward and split_cols (the backward of concat_cols) against central
// finite differences in f64; meta runs that allocate nothing; bad operands.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include <string>
#include <vector>

#include "kernels/cpu/exp_f32.h"
#include "kernels/elementwise.h"
#include "tests/test_util.h"

using namespace gc;
using namespace gc::test;

namespace {

struct ElementwiseCase {
  DType dtype;
  Shape shape;
};

std::vector<ElementwiseCase> elementwise_cases() {
  std::vector<ElementwiseCase> cases;
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (Shape shape : {Shape{1}, Shape{31}, Shape{33}, Shape{65}, Shape{1000, 7}}) cases.push_back({dtype, shape});
  return cases;
}

// Readable parameters in failure messages.
void PrintTo(const ElementwiseCase& c, std::ostream* os) { *os << dtype_name(c.dtype) << shape_string(c.shape); }

std::string case_name(const ::testing::TestParamInfo<ElementwiseCase>& info) {
  std::string name = dtype_name(info.param.dtype);
  for (size_t i = 0; i < info.param.shape.size(); ++i)
    name += (i == 0 ? "_" : "x") + std::to_string(info.param.shape[i]);
  return name;
}

double silu_reference(double x) { return x / (1.0 + std::exp(-x)); }
double silu_derivative_reference(double x) {
  const double s = 1.0 / (1.0 + std::exp(-x));
  return s * (1.0 + x * (1.0 - s));
}

// sum_i weights[i] * t[i]: a scalar loss whose gradient with respect to t is weights.
double weighted_sum(const std::vector<double>& weights, const Tensor& t) {
  const std::vector<double> values = t.to_doubles();
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) sum += weights[i] * values[i];
  return sum;
}

class ElementwiseTest : public ::testing::TestWithParam<ElementwiseCase> {
 protected:
  DType dtype() const { return GetParam().dtype; }
  const Shape& shape() const { return GetParam().shape; }
  Tensor random(uint64_t seed, double scale = 1.0) const { return random_tensor(shape(), dtype(), seed, scale); }
  Tensor empty() const { return Tensor::empty(shape(), dtype()); }
};

TEST_P(ElementwiseTest, Add) {
  Tensor a = random(1), b = random(2), out = empty();
  kernels::add_forward(out, a, b);
  auto va = a.to_doubles(), vb = b.to_doubles();
  std::vector<double> ref(va.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = va[i] + vb[i];
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(dtype()), "add"));
}

TEST_P(ElementwiseTest, Mul) {
  Tensor a = random(3), b = random(4, 2.0), out = empty();
  kernels::mul_forward(out, a, b);
  auto va = a.to_doubles(), vb = b.to_doubles();
  std::vector<double> ref(va.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = va[i] * vb[i];
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(dtype()), "mul"));
}

TEST_P(ElementwiseTest, ScaleForwardAndInplace) {
  Tensor x = random(5), out = empty();
  kernels::scale_forward(out, x, -1.7);
  auto vx = x.to_doubles();
  std::vector<double> ref(vx.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = -1.7 * vx[i];
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(dtype()), "scale_forward"));
  kernels::scale_inplace(x, -1.7);
  EXPECT_TRUE(all_close(x.to_doubles(), ref, tolerance_for(dtype()), "scale_inplace"));
}

TEST_P(ElementwiseTest, AccumulateIntoF32AndSameDtype) {
  Tensor x = random(6);
  for (DType acc_dtype : {DType::f32, dtype()}) {
    Tensor acc = random_tensor(shape(), acc_dtype, 7);
    auto before = acc.to_doubles(), vx = x.to_doubles();
    kernels::accumulate(acc, x);
    std::vector<double> ref(vx.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = before[i] + vx[i];
    EXPECT_TRUE(all_close(acc.to_doubles(), ref, tolerance_for(acc_dtype), std::string("accumulate into ") +
                                                                               dtype_name(acc_dtype)));
  }
}

TEST_P(ElementwiseTest, Fill) {
  Tensor x = random(8);
  kernels::fill(x, 0.3);
  EXPECT_TRUE(all_close(x.to_doubles(), std::vector<double>(static_cast<size_t>(x.numel()), 0.3),
                        tolerance_for(dtype()), "fill"));
}

TEST_P(ElementwiseTest, SiluForward) {
  Tensor x = random(9, 6.0), out = empty();
  kernels::silu_forward(out, x);
  auto vx = x.to_doubles();
  std::vector<double> ref(vx.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu_reference(vx[i]);
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(dtype(), 4), "silu_forward"));
}

TEST_P(ElementwiseTest, SigmoidForward) {
  Tensor x = random(50, 8.0), out = empty();
  kernels::sigmoid_forward(out, x);
  auto vx = x.to_doubles();
  std::vector<double> ref(vx.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = 1.0 / (1.0 + std::exp(-vx[i]));
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(dtype(), 4), "sigmoid_forward"));
}

// From the stored output y: grad_out * y (1 - y), against the f64 derivative of the stored y.
TEST_P(ElementwiseTest, SigmoidBackwardMatchesAnalyticDerivative) {
  Tensor x = random(51, 8.0), y = empty(), grad_out = random(52), grad_x = empty();
  kernels::sigmoid_forward(y, x);
  kernels::sigmoid_backward(grad_x, grad_out, y);
  auto vy = y.to_doubles(), vg = grad_out.to_doubles();
  std::vector<double> ref(vy.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = vg[i] * vy[i] * (1.0 - vy[i]);
  EXPECT_TRUE(all_close(grad_x.to_doubles(), ref, tolerance_for(dtype(), 4), "sigmoid_backward"));
}

TEST_P(ElementwiseTest, SiluBackwardMatchesAnalyticDerivative) {
  Tensor x = random(10, 6.0), grad_out = random(11), grad_x = empty();
  kernels::silu_backward(grad_x, grad_out, x);
  auto vx = x.to_doubles(), vg = grad_out.to_doubles();
  std::vector<double> ref(vx.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = vg[i] * silu_derivative_reference(vx[i]);
  EXPECT_TRUE(all_close(grad_x.to_doubles(), ref, tolerance_for(dtype(), 8), "silu_backward"));
}

TEST_P(ElementwiseTest, AllFiniteSeesNanAndInf) {
  Tensor x = random(12);
  EXPECT_TRUE(kernels::all_finite(x));
  const std::vector<double> clean = x.to_doubles();
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    std::vector<double> values = clean;
    values[values.size() / 2] = bad;
    EXPECT_FALSE(kernels::all_finite(Tensor::from_doubles(values, shape(), dtype()))) << bad;
  }
}

TEST_P(ElementwiseTest, ConcatThenSplitRoundTrips) {
  const int64_t rows = shape()[0];
  std::vector<Tensor> parts = {random_tensor({rows, 1}, dtype(), 13), random_tensor({rows, 31}, dtype(), 14),
                               random_tensor({rows, 2}, dtype(), 15)};
  Tensor whole = Tensor::empty({rows, 34}, dtype());
  kernels::concat_cols(whole, parts);
  auto vw = whole.to_doubles();
  int64_t column = 0;
  for (const Tensor& part : parts) {
    auto vp = part.to_doubles();
    const int64_t width = part.size(1);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c)
        ASSERT_EQ(vw[static_cast<size_t>(r * 34 + column + c)], vp[static_cast<size_t>(r * width + c)]);
    column += width;
  }
  std::vector<Tensor> back = {Tensor::empty({rows, 1}, dtype()), Tensor::empty({rows, 31}, dtype()),
                              Tensor::empty({rows, 2}, dtype())};
  kernels::split_cols(back, whole);
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_EQ(back[i].to_doubles(), parts[i].to_doubles()) << "part " << i;
}

INSTANTIATE_TEST_SUITE_P(Elementwise, ElementwiseTest, ::testing::ValuesIn(elementwise_cases()), case_name);

// ---- mixed dtypes and aliasing ---------------------------------------------------

TEST(ElementwiseMixed, AddMixedDtypesAndAliasedOperands) {
  Tensor a = random_tensor({65}, DType::bf16, 20), b = random_tensor({65}, DType::f32, 21);
  Tensor out = Tensor::empty({65}, DType::f32);
  kernels::add_forward(out, a, b);
  auto va = a.to_doubles(), vb = b.to_doubles();
  std::vector<double> ref(65), twice(65);
  for (size_t i = 0; i < 65; ++i) ref[i] = va[i] + vb[i], twice[i] = 2 * vb[i];
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(DType::f32), "bf16 + f32"));
  kernels::add_forward(b, b, b);  // one tensor used twice, written in place
  EXPECT_TRUE(all_close(b.to_doubles(), twice, tolerance_for(DType::f32), "b + b in place"));
}

TEST(ElementwiseMixed, AccumulateF32GradWithBf16AndF16) {
  Tensor acc = random_tensor({33, 7}, DType::f32, 22);
  auto ref = acc.to_doubles();
  for (DType dtype : {DType::bf16, DType::f16}) {
    Tensor x = random_tensor({33, 7}, dtype, 23);
    auto vx = x.to_doubles();
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += vx[i];
    kernels::accumulate(acc, x);
  }
  EXPECT_TRUE(all_close(acc.to_doubles(), ref, tolerance_for(DType::f32, 2), "f32 += bf16 += f16"));
}

// ---- cast ------------------------------------------------------------------------

// The 16-bit value nearest to `value` (ties to even bits), found among the
// neighbours of a first guess by exact f64 distances: independent of the kernel.
double nearest_16bit(double value, DType dtype) {
  const float guess = static_cast<float>(value);
  uint16_t bits = dtype == DType::bf16 ? f32_to_bf16(guess) : f32_to_f16(guess);
  auto decode = [&](uint16_t b) { return static_cast<double>(dtype == DType::bf16 ? bf16_to_f32(b) : f16_to_f32(b)); };
  uint16_t best = bits;
  for (int step : {-1, 1}) {
    const uint16_t other = static_cast<uint16_t>(bits + step);
    const double d_best = std::fabs(decode(best) - value), d_other = std::fabs(decode(other) - value);
    if (d_other < d_best || (d_other == d_best && (other & 1u) == 0)) best = other;
  }
  return decode(best);
}

TEST(ElementwiseCast, EveryPairOfDtypes) {
  const std::vector<DType> dtypes = {DType::f32, DType::f64, DType::bf16, DType::f16};
  for (DType from : dtypes) {
    std::vector<double> values = random_values(1000, 30, 3.0);
    // Values where rounding f64 -> f32 -> 16 bits would land on a tie and pick the wrong side.
    values[1] = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
    values[2] = -(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30));
    Tensor x = Tensor::from_doubles(values, {1000}, from);
    const std::vector<double> stored = x.to_doubles();
    for (DType to : dtypes) {
      Tensor out = Tensor::empty({1000}, to);
      kernels::cast(out, x);
      std::vector<double> ref = rounded_through(stored, to);  // exact for any source narrower than f64
      if (from == DType::f64 && (to == DType::bf16 || to == DType::f16))
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = nearest_16bit(stored[i], to);
      EXPECT_EQ(out.to_doubles(), ref) << dtype_name(from) << " -> " << dtype_name(to);
    }
  }
}

TEST(ElementwiseCast, InfAndNanSurvive) {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType from : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (DType to : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      Tensor x = Tensor::from_doubles({inf, -inf, std::nan("")}, {3}, from);
      Tensor out = Tensor::empty({3}, to);
      kernels::cast(out, x);
      auto v = out.to_doubles();
      EXPECT_EQ(v[0], inf);
      EXPECT_EQ(v[1], -inf);
      EXPECT_TRUE(std::isnan(v[2])) << dtype_name(from) << " -> " << dtype_name(to);
    }
}

// ---- gradients against finite differences (f64) -----------------------------------

TEST(ElementwiseGradient, SiluBackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({65}, DType::f64, 40, 5.0), grad_out = random_tensor({65}, DType::f64, 41);
  Tensor y = Tensor::empty({65}, DType::f64), grad_x = Tensor::empty({65}, DType::f64);
  auto weights = grad_out.to_doubles();
  auto loss = [&] {
    kernels::silu_forward(y, x);
    return weighted_sum(weights, y);
  };
  kernels::silu_backward(grad_x, grad_out, x);
  EXPECT_TRUE(gradient_matches(grad_x, x, loss, "silu"));
  kernels::silu_backward(grad_x, grad_out, x);  // called twice: assigned, not accumulated
  EXPECT_TRUE(gradient_matches(grad_x, x, loss, "silu, second call"));
}

TEST(ElementwiseGradient, SigmoidBackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({65}, DType::f64, 42, 6.0), grad_out = random_tensor({65}, DType::f64, 43);
  Tensor y = Tensor::empty({65}, DType::f64), grad_x = Tensor::empty({65}, DType::f64);
  auto weights = grad_out.to_doubles();
  auto loss = [&] {
    kernels::sigmoid_forward(y, x);
    return weighted_sum(weights, y);
  };
  kernels::sigmoid_forward(y, x);
  kernels::sigmoid_backward(grad_x, grad_out, y);
  EXPECT_TRUE(gradient_matches(grad_x, x, loss, "sigmoid"));
  kernels::sigmoid_forward(y, x);
  kernels::sigmoid_backward(grad_x, grad_out, y);  // called twice: assigned, not accumulated
  EXPECT_TRUE(gradient_matches(grad_x, x, loss, "sigmoid, second call"));
}

TEST(ElementwiseGradient, SplitIsTheBackwardOfConcat) {
  const int64_t rows = 33;
  std::vector<Tensor> parts = {random_tensor({rows, 1}, DType::f64, 42), random_tensor({rows, 31}, DType::f64, 43),
                               random_tensor({rows, 3}, DType::f64, 44)};
  Tensor whole = Tensor::empty({rows, 35}, DType::f64);
  Tensor grad_whole = random_tensor({rows, 35}, DType::f64, 45);
  auto weights = grad_whole.to_doubles();
  auto loss = [&] {
    kernels::concat_cols(whole, parts);
    return weighted_sum(weights, whole);
  };
  std::vector<Tensor> grads = {Tensor::empty({rows, 1}, DType::f64), Tensor::empty({rows, 31}, DType::f64),
                               Tensor::empty({rows, 3}, DType::f64)};
  kernels::split_cols(grads, grad_whole);
  for (size_t i = 0; i < parts.size(); ++i)
    EXPECT_TRUE(gradient_matches(grads[i], parts[i], loss, "concat part " + std::to_string(i)));
}

// ---- meta and validation -------------------------------------------------------------

TEST(ElementwiseMeta, EveryOpRunsAndAllocatesNothing) {
  Tensor a = Tensor::empty({1000, 7}, DType::bf16, Device::meta);
  Tensor b = Tensor::empty({1000, 7}, DType::f32, Device::meta);
  Tensor out = Tensor::empty({1000, 7}, DType::f32, Device::meta);
  std::vector<Tensor> parts = {Tensor::empty({1000, 3}, DType::f32, Device::meta),
                               Tensor::empty({1000, 4}, DType::f32, Device::meta)};
  auto& allocator = allocator_for(Device::meta);
  const AllocatorStats before = allocator.stats();
  kernels::add_forward(out, a, b);
  kernels::mul_forward(out, a, b);
  kernels::scale_forward(out, a, 2.0);
  kernels::accumulate(out, a);
  kernels::scale_inplace(out, 0.5);
  kernels::fill(out, 1.0);
  kernels::silu_forward(out, a);
  kernels::silu_backward(out, b, a);
  kernels::cast(out, a);
  kernels::concat_cols(out, parts);
  kernels::split_cols(parts, out);
  EXPECT_TRUE(kernels::all_finite(out));
  const AllocatorStats after = allocator.stats();
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_EQ(after.num_allocs, before.num_allocs);
}

TEST(ElementwiseValidation, RejectsBadOperands) {
  Tensor a = random_tensor({31}, DType::f32, 50), b = random_tensor({33}, DType::f32, 51);
  Tensor out = Tensor::empty({31}, DType::f32);
  EXPECT_THROW(kernels::add_forward(out, a, b), std::invalid_argument);
  Tensor indices = Tensor::zeros({31}, DType::i32);
  EXPECT_THROW(kernels::silu_forward(out, indices), std::invalid_argument);
  EXPECT_THROW(kernels::fill(indices, 1.0), std::invalid_argument);
  Tensor on_meta = Tensor::empty({31}, DType::f32, Device::meta);
  EXPECT_THROW(kernels::accumulate(out, on_meta), std::invalid_argument);
  EXPECT_THROW(kernels::cast(out, Tensor()), std::invalid_argument);
  Tensor whole = Tensor::empty({5, 4}, DType::f32);
  std::vector<Tensor> narrow = {Tensor::empty({5, 1}, DType::f32), Tensor::empty({5, 2}, DType::f32)};
  EXPECT_THROW(kernels::concat_cols(whole, narrow), std::invalid_argument);
  std::vector<Tensor> short_rows = {Tensor::empty({4, 1}, DType::f32), Tensor::empty({5, 3}, DType::f32)};
  EXPECT_THROW(kernels::split_cols(short_rows, whole), std::invalid_argument);
  std::vector<Tensor> other_dtype = {Tensor::empty({5, 1}, DType::bf16), Tensor::empty({5, 3}, DType::f32)};
  EXPECT_THROW(kernels::concat_cols(whole, other_dtype), std::invalid_argument);
  try {
    kernels::mul_forward(out, a, b);
    ADD_FAILURE() << "mul_forward accepted operands of different sizes";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("mul_forward"), std::string::npos) << message;
    EXPECT_NE(message.find(b.describe()), std::string::npos) << message;
  }
}

TEST(ElementwiseLarge, ParallelPathsMatchReference) {
  const int64_t n = 100003;  // above the serial threshold
  Tensor x = random_tensor({n}, DType::bf16, 60, 4.0), out = Tensor::empty({n}, DType::f32);
  kernels::silu_forward(out, x);
  auto vx = x.to_doubles();
  std::vector<double> ref(vx.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu_reference(vx[i]);
  EXPECT_TRUE(all_close(out.to_doubles(), ref, tolerance_for(DType::f32, 4), "silu, large"));
  EXPECT_TRUE(kernels::all_finite(x));
  std::vector<double> values = vx;
  values.back() = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(kernels::all_finite(Tensor::from_doubles(values, {n}, DType::bf16)));
}

}  // namespace

// ---- e^x in f32 (kernels/cpu/exp_f32.h) -------------------------------------------------

namespace {

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Every 4,099th bit pattern (all signs and exponents, NaNs among them) and the edges
// of the special ranges.
std::vector<float> exp_inputs() {
  std::vector<float> xs;
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4099) xs.push_back(float_of(static_cast<uint32_t>(u)));
  for (float x : {0.0f, -0.0f, 88.0f, -88.0f, 0x1.62e42ep6f, 0x1.62e430p6f, -0x1.9fe368p6f, -0x1.9fe36ap6f,
                  -0x1.9d1d9ep6f, -87.33655f, 1e-30f, -1e-30f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                  -std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()})
    xs.push_back(x);
  return xs;
}

}  // namespace

// Within one rounding of e^x in f64 (0.502 ULP plus f32's own half ULP: at most
// one ULP apart), on the vector path (whole chunks) and one value at a time.
TEST(ExpF32, WithinOneUlpOfE) {
  const std::vector<float> xs = exp_inputs();
  std::vector<float> many(xs.size());
  kernels::cpu::exp_f32(many.data(), xs.data(), static_cast<int64_t>(xs.size()));
  int checked = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    float one;
    kernels::cpu::exp_f32(&one, &xs[i], 1);
    ASSERT_EQ(float_bits(one), float_bits(many[i])) << "x = " << xs[i] << ": one at a time and in a chunk differ";
    const double want = std::exp(static_cast<double>(xs[i]));
    if (std::isnan(xs[i])) {
      EXPECT_TRUE(std::isnan(many[i])) << xs[i];
      continue;
    }
    const float rounded = static_cast<float>(want);
    const float below = std::nextafter(rounded, -INFINITY), above = std::nextafter(rounded, INFINITY);
    EXPECT_TRUE(many[i] == rounded || many[i] == below || many[i] == above)
        << "e^" << xs[i] << " = " << want << ", got " << many[i];
    ++checked;
  }
  EXPECT_GT(checked, 1000000);
}

#ifdef __GLIBC__
// The bits of glibc's expf (the same method; since glibc 2.28), which the cpu's
// SiLU and sigmoid called one element at a time before: every sampled pattern,
// NaN payloads included (exhaustively, all 2^32 inputs agreed with glibc 2.36).
TEST(ExpF32, IsGlibcExpfBitForBit) {
  if (!(__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 28)))
    GTEST_SKIP() << "glibc before 2.28 has another expf";
  const std::vector<float> xs = exp_inputs();
  std::vector<float> many(xs.size());
  kernels::cpu::exp_f32(many.data(), xs.data(), static_cast<int64_t>(xs.size()));
  std::vector<float> negated(xs.size());
  kernels::cpu::exp_f32(negated.data(), xs.data(), static_cast<int64_t>(xs.size()), /*negate=*/true);
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_EQ(float_bits(many[i]), float_bits(std::exp(xs[i]))) << "x = " << xs[i];
    ASSERT_EQ(float_bits(negated[i]), float_bits(std::exp(-xs[i]))) << "x = -" << xs[i];
  }
}
#endif

// SiLU, its backward and sigmoid take e^-x from exp_f32 a chunk at a time; their
// values are those of the expressions they always had with std::exp, bit for bit,
// for every 16-bit and f32 mix, across chunk edges, past the parallel threshold, in place.
TEST(ElementwiseExp, SiluAndSigmoidKeepTheBitsOfStdExp) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(255), int64_t(256), int64_t(257), int64_t(100003)}) {
      const std::string what = std::string(dtype_name(dtype)) + " x " + std::to_string(n);
      // Random values with large and special ones among them (the scalar special cases inside vector chunks).
      std::vector<double> xs = random_tensor({n}, DType::f32, 91).to_doubles();
      const double specials[] = {100.0, -100.0, 88.5, -88.5, -87.9, 0.0, -0.0, 1e-3, 30.0, -30.0};
      for (int64_t i = 0; i < n && i < 80; i += 8) xs[static_cast<size_t>(i)] = specials[i / 8];
      std::vector<float> x_values(xs.begin(), xs.end());
      Tensor x = Tensor::empty({n}, dtype);
      kernels::cast(x, Tensor::from_host(x_values.data(), {n}, DType::f32, Device::cpu));
      const Tensor g = random_tensor({n}, dtype, 92);
      xs = x.to_doubles();
      const std::vector<double> gs = g.to_doubles();
      std::vector<float> silu(static_cast<size_t>(n)), grad(static_cast<size_t>(n)), sig(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(xs[static_cast<size_t>(i)]), go = static_cast<float>(gs[static_cast<size_t>(i)]);
        const float s = 1.0f / (1.0f + std::exp(-v));
        silu[static_cast<size_t>(i)] = v * s;
        grad[static_cast<size_t>(i)] = go * (s * (1.0f + v * (1.0f - s)));
        sig[static_cast<size_t>(i)] = s;
      }
      auto stored = [&](const std::vector<float>& values) {
        Tensor t = Tensor::from_host(values.data(), {n}, DType::f32, Device::cpu);
        Tensor out = Tensor::empty({n}, dtype);
        kernels::cast(out, t);
        return out;
      };
      auto bits_equal = [&](const Tensor& got, const Tensor& want, const std::string& op) {
        ASSERT_EQ(got.numel(), want.numel());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), static_cast<size_t>(n) * dtype_size(dtype)), 0) << op << " " << what;
      };
      Tensor out = Tensor::empty({n}, dtype);
      kernels::silu_forward(out, x);
      bits_equal(out, stored(silu), "silu_forward");
      kernels::silu_backward(out, g, x);
      bits_equal(out, stored(grad), "silu_backward");
      kernels::sigmoid_forward(out, x);
      bits_equal(out, stored(sig), "sigmoid_forward");
      Tensor in_place = x.clone();
      kernels::silu_forward(in_place, in_place);
      bits_equal(in_place, stored(silu), "silu_forward in place");
      Tensor grad_in_place = g.clone();
      kernels::silu_backward(grad_in_place, grad_in_place, x);
      bits_equal(grad_in_place, stored(grad), "silu_backward into grad_out");
    }
  }
}
