// The compiler builds what the source says: constant initializers whose upper
// half is zero survive optimization. GCC 12.2 with -march=native on AVX-512
// machines made {1, 1, 0, 0} (f64) and {1, 1, 1, 1, 0, 0, 0, 0} (f32) into a
// broadcast of the first element unless its straight-line vectorizer is off
// (the Makefile's WORKAROUNDS); these tests fail on a build without it.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace gc {
namespace {

template <class T>
__attribute__((noinline)) std::vector<double> as_doubles(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

TEST(Compiler, ConstantInitializersWithAZeroUpperHalfSurviveOptimization) {
  const std::vector<double> upper_half_zero = {0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(as_doubles(std::vector<double>{1, 1, 0, 0}), (std::vector<double>{1, 1, upper_half_zero[0], 0}));
  EXPECT_EQ(as_doubles(std::vector<float>{1, 1, 1, 1, 0, 0, 0, 0}),
            (std::vector<double>{1, 1, 1, 1, upper_half_zero[1], 0, 0, 0}));
  EXPECT_EQ(as_doubles(std::vector<int64_t>{1, 1, 0, 0}), (std::vector<double>{1, 1, upper_half_zero[2], 0}));
  EXPECT_EQ(as_doubles(std::vector<int32_t>{1, 1, 1, 1, 0, 0, 0, 0}),
            (std::vector<double>{1, 1, 1, 1, upper_half_zero[3], 0, 0, 0}));
}

}  // namespace
}  // namespace gc
