// test_random.cpp: gc's own random numbers. The stream is splitmix64 exactly
// (the reference outputs of its author's splitmix64.c), uniforms stay inside
// (0, 1), and the normals have the moments and tails of N(0, 1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "runtime/random.h"

using namespace gc;

TEST(Random, IsSplitmix64) {
  uint64_t state = 1234567;
  for (uint64_t expected : {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
                            4593380528125082431ull, 16408922859458223821ull})
    EXPECT_EQ(next_random(state), expected);
}

TEST(Random, UniformsAreInsideTheOpenInterval) {
  uint64_t state = 0;
  double lo = 1, hi = 0, sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = next_uniform_open(state);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  EXPECT_GT(lo, 0.0);
  EXPECT_LT(hi, 1.0);
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

TEST(Random, NormalsHaveTheMomentsAndTailsOfAStandardNormal) {
  uint64_t state = 42;
  const int n = 400000;
  double sum = 0, sum2 = 0, sum4 = 0;
  int beyond_two = 0;
  for (int i = 0; i < n; ++i) {
    const double z = next_normal(state);
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
    beyond_two += std::fabs(z) > 2.0;
  }
  // Standard errors at n = 4e5: mean 0.0016, variance 0.0022, kurtosis 0.008, tail 0.0003.
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.01);
  EXPECT_NEAR(sum4 / n, 3.0, 0.05);
  EXPECT_NEAR(static_cast<double>(beyond_two) / n, 0.0455, 0.002);
}

TEST(Random, TheSameSeedGivesTheSameStream) {
  uint64_t a = 7, b = 7, c = 8;
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = next_normal(a), y = next_normal(b), z = next_normal(c);
    EXPECT_EQ(x, y);
    differs = differs || x != z;
  }
  EXPECT_TRUE(differs);
}
