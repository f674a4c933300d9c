// test_swe.cpp: the spectral transform and the shallow-water solver against the
// bounds of SWE.md: Gauss weights, scalar and vector round trips, Williamson
// cases 2 (exact steady state, rotated pole and Coriolis) and 6 (Rossby-Haurwitz
// wave), mass conservation, and the balance of the random initial state.
// Oracles independent of the transform itself: closed-form fields (P_10, P_11,
// solid-body rotation), a naive DFT, and polynomial moments of the quadrature.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "tools/data/swe_solver.h"
#include "tools/data/swe_transform.h"

namespace gc::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Band-limited coefficients of a real field: m = 0 real, seeded, never all zero,
// l < min_degree left zero.
std::vector<Complex> random_coefficients(const SphericalTransform& tr, uint64_t seed, int min_degree = 0) {
  std::vector<Complex> c(static_cast<size_t>(tr.num_coeffs()));
  uint64_t state = seed;
  auto uniform = [&state]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  };
  for (int m = 0; m <= tr.truncation(); ++m)
    for (int l = std::max(m, min_degree); l <= tr.truncation(); ++l)
      c[static_cast<size_t>(tr.coeff_index(l, m))] = Complex(uniform(), m == 0 ? 0.0 : uniform());
  c[static_cast<size_t>(tr.coeff_index(tr.truncation(), 0))] = 0.75;
  return c;
}

double max_abs_difference(const std::vector<Complex>& a, const std::vector<Complex>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

double max_abs(const std::vector<Complex>& a) {
  double worst = 0.0;
  for (const Complex& c : a) worst = std::max(worst, std::abs(c));
  return worst;
}

// ---------------------------------------------------------------- Gauss grid

class SweGauss : public ::testing::TestWithParam<int> {};

TEST_P(SweGauss, WeightsSumToTwoAndIntegratePolynomials) {
  const int n = GetParam();
  std::vector<double> nodes, weights;
  gauss_legendre(n, nodes, weights);
  // Accumulate in long double so that the test measures the weights, not the summation.
  long double sum = 0.0L;
  for (double w : weights) sum += w;
  EXPECT_LE(std::fabs(static_cast<double>(sum - 2.0L)), 1e-15) << "n = " << n;
  for (int i = 0; i + 1 < n; ++i) EXPECT_GT(nodes[static_cast<size_t>(i)], nodes[static_cast<size_t>(i + 1)]);
  // Exact for polynomials of degree <= 2n - 1: integral of x^(2k) over [-1, 1] = 2 / (2k + 1).
  for (int k = 0; 2 * k <= 2 * n - 1; ++k) {
    long double integral = 0.0L;
    for (int i = 0; i < n; ++i)
      integral += weights[static_cast<size_t>(i)] * std::pow(nodes[static_cast<size_t>(i)], 2 * k);
    EXPECT_NEAR(static_cast<double>(integral), 2.0 / (2 * k + 1), 1e-14) << "n = " << n << ", degree " << 2 * k;
  }
}

INSTANTIATE_TEST_SUITE_P(Nodes, SweGauss, ::testing::Values(1, 2, 31, 32, 64, 65, 128),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

TEST(SweTransform, DefaultGridsAndLatitudeOrder) {
  SphericalTransform t21(21), t42(42);
  EXPECT_EQ(t21.nlat(), 32);
  EXPECT_EQ(t21.nlon(), 64);
  EXPECT_EQ(t42.nlat(), 64);
  EXPECT_EQ(t42.nlon(), 128);
  const std::vector<double> lat = t21.latitudes_deg();
  EXPECT_GT(lat.front(), 85.0);  // north to south, no pole rows
  EXPECT_LT(lat.front(), 90.0);
  EXPECT_DOUBLE_EQ(lat.back(), -lat.front());
  EXPECT_DOUBLE_EQ(t21.longitudes_deg()[1], 360.0 / 64);
  EXPECT_THROW(SphericalTransform(21, 32, 48), std::invalid_argument);  // not a power of two
  EXPECT_THROW(SphericalTransform(21, 20, 64), std::invalid_argument);  // too few latitudes
  EXPECT_THROW(SphericalTransform(0), std::invalid_argument);
}

TEST(SweTransform, FftMatchesNaiveDft) {
  SphericalTransform tr(21);
  const int n = tr.nlon();
  std::vector<Complex> data(static_cast<size_t>(n)), reference(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) data[static_cast<size_t>(k)] = Complex(std::sin(1.7 * k + 0.3), std::cos(0.9 * k * k));
  for (int sign : {-1, +1}) {
    for (int j = 0; j < n; ++j) {
      Complex sum = 0.0;
      for (int k = 0; k < n; ++k) sum += data[static_cast<size_t>(k)] * std::polar(1.0, sign * 2.0 * kPi * j * k / n);
      reference[static_cast<size_t>(j)] = sum;
    }
    std::vector<Complex> fast = data;
    tr.fft(fast.data(), sign);
    EXPECT_LT(max_abs_difference(fast, reference), 1e-12) << "sign " << sign;
  }
}

TEST(SweTransform, SynthesisOfClosedFormHarmonics) {
  SphericalTransform tr(21);
  std::vector<Complex> c(static_cast<size_t>(tr.num_coeffs()));
  std::vector<double> grid(tr.grid_size());
  c[static_cast<size_t>(tr.coeff_index(1, 0))] = 1.0;  // P_10 = sqrt(3/2) mu
  c[static_cast<size_t>(tr.coeff_index(1, 1))] = 1.0;  // 2 Re(P_11 e^{i lambda}) = sqrt(3) cos(lat) cos(lambda)
  tr.synthesis(c.data(), grid.data());
  double worst = 0.0;
  for (int j = 0; j < tr.nlat(); ++j)
    for (int k = 0; k < tr.nlon(); ++k) {
      const double mu = tr.mu()[static_cast<size_t>(j)], lambda = 2.0 * kPi * k / tr.nlon();
      const double expected = std::sqrt(1.5) * mu + std::sqrt(3.0) * std::sqrt(1.0 - mu * mu) * std::cos(lambda);
      worst = std::max(worst, std::fabs(grid[static_cast<size_t>(j) * tr.nlon() + k] - expected));
    }
  EXPECT_LT(worst, 1e-14);
}

class SweRoundTrip : public ::testing::TestWithParam<int> {};

TEST_P(SweRoundTrip, ScalarBelow1e13) {
  SphericalTransform tr(GetParam());
  const std::vector<Complex> c = random_coefficients(tr, 11 + GetParam());
  std::vector<double> grid(tr.grid_size());
  std::vector<Complex> back(c.size());
  tr.synthesis(c.data(), grid.data());
  tr.analysis(grid.data(), back.data());
  const double error = max_abs_difference(back, c) / max_abs(c);
  std::printf("[ scalar round trip T%d: %.2e ]\n", GetParam(), error);
  EXPECT_LT(error, 1e-13);
}

TEST_P(SweRoundTrip, VectorBelow1e12) {
  SphericalTransform tr(GetParam());
  std::vector<Complex> vorticity = random_coefficients(tr, 21 + GetParam(), 1);
  std::vector<Complex> divergence = random_coefficients(tr, 31 + GetParam(), 1);
  for (auto& x : vorticity) x *= 1e-5;
  for (auto& x : divergence) x *= 3e-6;
  std::vector<double> u_cos(tr.grid_size()), v_cos(tr.grid_size());
  tr.uv_from_vorticity_divergence(vorticity.data(), divergence.data(), u_cos.data(), v_cos.data(), kEarthRadiusM);
  std::vector<Complex> vorticity_back(vorticity.size()), divergence_back(divergence.size());
  tr.vorticity_divergence_from_uv(u_cos.data(), v_cos.data(), vorticity_back.data(), divergence_back.data(),
                                  kEarthRadiusM);
  const double error_vorticity = max_abs_difference(vorticity_back, vorticity) / max_abs(vorticity);
  const double error_divergence = max_abs_difference(divergence_back, divergence) / max_abs(divergence);
  std::printf("[ vector round trip T%d: zeta %.2e delta %.2e ]\n", GetParam(), error_vorticity, error_divergence);
  EXPECT_LT(error_vorticity, 1e-12);
  EXPECT_LT(error_divergence, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Truncations, SweRoundTrip, ::testing::Values(1, 21, 31, 42),
                         [](const auto& info) { return "T" + std::to_string(info.param); });

TEST(SweTransform, SolidBodyRotationWinds) {
  // zeta = (2 u0 / a) sin(lat) is solid-body rotation u = u0 cos(lat), v = 0:
  // pins the signs of psi and H.
  SphericalTransform tr(21);
  const double u0 = 20.0;
  std::vector<double> vorticity_grid(tr.grid_size());
  for (int j = 0; j < tr.nlat(); ++j)
    for (int k = 0; k < tr.nlon(); ++k)
      vorticity_grid[static_cast<size_t>(j) * tr.nlon() + k] = 2.0 * u0 / kEarthRadiusM * tr.mu()[static_cast<size_t>(j)];
  std::vector<Complex> vorticity(static_cast<size_t>(tr.num_coeffs())), zero(vorticity.size());
  tr.analysis(vorticity_grid.data(), vorticity.data());
  std::vector<double> u_cos(tr.grid_size()), v_cos(tr.grid_size());
  tr.uv_from_vorticity_divergence(vorticity.data(), zero.data(), u_cos.data(), v_cos.data(), kEarthRadiusM);
  double worst = 0.0;
  for (int j = 0; j < tr.nlat(); ++j) {
    const double cos2 = 1.0 - tr.mu()[static_cast<size_t>(j)] * tr.mu()[static_cast<size_t>(j)];
    for (int k = 0; k < tr.nlon(); ++k) {
      const size_t i = static_cast<size_t>(j) * tr.nlon() + k;
      worst = std::max({worst, std::fabs(u_cos[i] - u0 * cos2), std::fabs(v_cos[i])});
    }
  }
  EXPECT_LT(worst, 1e-12 * u0);
}

// ------------------------------------------------------------- Williamson 2

using Case2Params = std::tuple<int, int, bool>;  // truncation, rotation index, hyperdiffusion
class SweWilliamson2 : public ::testing::TestWithParam<Case2Params> {};

TEST_P(SweWilliamson2, SteadyFor5Days) {
  const auto [truncation, rotation, diffusion] = GetParam();
  const double alphas[3] = {0.0, kPi / 4, kPi / 2 - 0.05};
  SphericalTransform tr(truncation);
  const int steps = static_cast<int>(std::ceil(5 * 86400.0 / swe_stable_time_step_s(truncation)));
  SweSolver solver(tr, 5 * 86400.0 / steps, diffusion);
  WilliamsonCase2 w = williamson_case2(tr, alphas[rotation]);
  solver.set_coriolis(w.coriolis_per_s);
  const double mass_before = solver.mean_geopotential(w.state);
  solver.advance(w.state, steps);
  std::vector<double> height(tr.grid_size());
  solver.grid_fields(w.state, height.data(), nullptr, nullptr);
  const double error = weighted_l2_error(tr, height, w.height_m);
  const double mass_drift = std::fabs(solver.mean_geopotential(w.state) - mass_before) / mass_before;
  std::printf("[ Williamson 2 T%d alpha %.4f diffusion %d: l2(h) %.2e, mass drift %.1e ]\n", truncation,
              alphas[rotation], diffusion, error, mass_drift);
  const double bound = !diffusion ? 1e-12 : truncation >= 42 ? 1e-10 : 1e-8;
  EXPECT_LE(error, bound);
  EXPECT_LT(mass_drift, 1e-12);
}

std::string case2_name(const ::testing::TestParamInfo<Case2Params>& info) {
  static const char* alpha_names[3] = {"alpha0", "alphaPiOver4", "alphaNearPiOver2"};
  return "T" + std::to_string(std::get<0>(info.param)) + "_" + alpha_names[std::get<1>(info.param)] +
         (std::get<2>(info.param) ? "_diffusion" : "_inviscid");
}

INSTANTIATE_TEST_SUITE_P(Rotations, SweWilliamson2,
                         ::testing::Combine(::testing::Values(21, 42), ::testing::Values(0, 1, 2), ::testing::Bool()),
                         case2_name);

TEST(SweWilliamson2Rotated, WrongCoriolisIsNotSteady) {
  // With the pole tilted but f left unrotated the flow is not a steady state:
  // shows that the test above can fail.
  SphericalTransform tr(21);
  SweSolver solver(tr, 1800.0, false);
  WilliamsonCase2 w = williamson_case2(tr, kPi / 4);
  solver.advance(w.state, 48);
  std::vector<double> height(tr.grid_size());
  solver.grid_fields(w.state, height.data(), nullptr, nullptr);
  EXPECT_GT(weighted_l2_error(tr, height, w.height_m), 1e-4);
}

// ------------------------------------------------------------- Williamson 6

TEST(SweWilliamson6, RossbyHaurwitzT42For14Days) {
  SphericalTransform tr(42);
  const int steps = static_cast<int>(std::ceil(14 * 86400.0 / swe_stable_time_step_s(42)));
  SweSolver solver(tr, 14 * 86400.0 / steps, true);
  SweState state = williamson_case6(tr);
  const double energy_before = solver.mean_energy(state), mass_before = solver.mean_geopotential(state);
  std::vector<double> height(tr.grid_size()), u(tr.grid_size()), v(tr.grid_size());
  solver.grid_fields(state, height.data(), u.data(), v.data());
  const double max_wind_before = *std::max_element(u.begin(), u.end());
  const auto start = std::chrono::steady_clock::now();
  solver.advance(state, steps);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  solver.grid_fields(state, height.data(), u.data(), v.data());
  double max_wind = 0.0, min_height = 1e30, max_height = 0.0;
  for (size_t i = 0; i < tr.grid_size(); ++i) {
    ASSERT_TRUE(std::isfinite(height[i]) && std::isfinite(u[i]) && std::isfinite(v[i])) << "blow-up at " << i;
    max_wind = std::max(max_wind, std::hypot(u[i], v[i]));
    min_height = std::min(min_height, height[i]);
    max_height = std::max(max_height, height[i]);
  }
  const double energy_change = (solver.mean_energy(state) - energy_before) / energy_before;
  const double mass_drift = std::fabs(solver.mean_geopotential(state) - mass_before) / mass_before;
  std::printf("[ Williamson 6 T42, %d steps in %.2f s: energy change %.2e, mass drift %.1e, h %.0f..%.0f m, "
              "max wind %.1f m/s (initially %.1f) ]\n",
              steps, seconds, energy_change, mass_drift, min_height, max_height, max_wind, max_wind_before);
  EXPECT_LT(std::fabs(energy_change), 1e-4);
  EXPECT_LT(mass_drift, 1e-12);
  EXPECT_LT(max_wind, 2.0 * max_wind_before);  // bounded: the wave keeps its shape in 14 days
  EXPECT_GT(min_height, 7000.0);
  EXPECT_LT(max_height, 11000.0);
}

// ------------------------------------------------------ random balanced state

TEST(SweRandomState, ScaledBalancedAndSeeded) {
  SweSolver solver(21, 1800.0);
  const SweState state = random_balanced_state(solver, 42);
  const SphericalTransform& tr = solver.transform();
  EXPECT_NEAR(std::sqrt(tr.mean_square(state.vorticity.data())), 3e-5, 1e-18);
  EXPECT_EQ(max_abs(state.divergence), 0.0);
  EXPECT_NEAR(solver.mean_geopotential(state), kGravityMPerS2 * 1e4, 1e-9);
  // Nonlinear balance: the divergence tendency vanishes to round-off while the
  // vorticity tendency does not.
  SweState tendency = solver.zero_state();
  solver.tendency(state, tendency);
  const double divergence_tendency = std::sqrt(tr.mean_square(tendency.divergence.data()));
  const double vorticity_tendency = std::sqrt(tr.mean_square(tendency.vorticity.data()));
  std::printf("[ balanced state: rms d(delta)/dt %.2e, rms d(zeta)/dt %.2e 1/s^2 ]\n", divergence_tendency,
              vorticity_tendency);
  EXPECT_LT(divergence_tendency, 1e-9 * vorticity_tendency);
  EXPECT_GT(vorticity_tendency, 1e-11);

  const SweState same = random_balanced_state(solver, 42), other = random_balanced_state(solver, 43);
  EXPECT_EQ(max_abs_difference(same.vorticity, state.vorticity), 0.0);
  EXPECT_EQ(max_abs_difference(same.geopotential, state.geopotential), 0.0);
  EXPECT_GT(max_abs_difference(other.vorticity, state.vorticity), 1e-6);
}

TEST(SweRandomState, MassExactlyConservedOverTwoDays) {
  SweSolver solver(21, 1800.0);
  SweState state = random_balanced_state(solver, 7);
  const double mass_before = solver.mean_geopotential(state);
  solver.advance(state, 96);
  EXPECT_LT(std::fabs(solver.mean_geopotential(state) - mass_before) / mass_before, 1e-12);
  for (const Complex& c : state.vorticity) ASSERT_TRUE(std::isfinite(c.real()) && std::isfinite(c.imag()));
}

TEST(SweSolver, RejectsBadArguments) {
  EXPECT_THROW(SweSolver(21, 0.0), std::invalid_argument);
  EXPECT_THROW(SweSolver(21, -5.0), std::invalid_argument);
  SweSolver solver(21, 1800.0);
  EXPECT_THROW(solver.set_coriolis(std::vector<double>(5)), std::invalid_argument);
}

}  // namespace
}  // namespace gc::data
