// swe_solver.h: the global shallow-water equations on the rotating sphere in
// vorticity-divergence form, spectral transform method, classical RK4 in double
// precision (SWE.md). The state is the spectral coefficients of vorticity zeta,
// divergence delta and TOTAL geopotential Phi = g h.
//
// Invariants: the l = 0 coefficient of Phi (the mass) never changes, bit for
// bit, because the tendency of Phi is a divergence; hyperdiffusion acts on zeta
// and delta only, once after every full RK4 step. A solver holds its own
// workspace, so one solver serves one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "tools/data/swe_transform.h"

namespace gc::data {

inline constexpr double kEarthRadiusM = 6.37122e6;
inline constexpr double kEarthRotationPerS = 7.292e-5;  // Omega
inline constexpr double kGravityMPerS2 = 9.80616;

struct SweState {
  std::vector<Complex> vorticity;     // [num_coeffs] 1/s
  std::vector<Complex> divergence;    // [num_coeffs] 1/s
  std::vector<Complex> geopotential;  // [num_coeffs] m^2/s^2, total Phi = g h
};

// Time step of about 75% of the RK4 stability limit for winds of ~50 m/s over a
// 10 km deep layer: 1800 s at T21, scaled by 1/sqrt(T(T+1)) elsewhere.
double swe_stable_time_step_s(int truncation);

class SweSolver {
 public:
  // Coriolis defaults to f = 2 Omega sin(lat).
  SweSolver(int truncation, double dt_seconds, bool hyperdiffusion = true);
  SweSolver(const SphericalTransform& transform, double dt_seconds, bool hyperdiffusion = true);

  const SphericalTransform& transform() const { return transform_; }
  double dt_seconds() const { return dt_seconds_; }
  bool hyperdiffusion() const { return hyperdiffusion_; }
  SweState zero_state() const;

  // Replaces the Coriolis parameter with any field on the grid (a rotated pole
  // for Williamson case 2).
  void set_coriolis(const std::vector<double>& coriolis_per_s);  // [nlat][nlon]
  const std::vector<double>& coriolis() const { return coriolis_; }

  // d(zeta, delta, Phi)/dt of the inviscid equations.
  void tendency(const SweState& state, SweState& out);
  // One RK4 step followed by the del^8 hyperdiffusion of zeta and delta:
  // factor exp(-(dt / 7200 s) (l(l+1) / (T(T+1)))^4).
  void step(SweState& state);
  void advance(SweState& state, int steps);

  // Height h = Phi / g (m) and the winds u, v (m/s) on the grid; any output may be null.
  void grid_fields(const SweState& state, double* height_m, double* u_m_per_s, double* v_m_per_s);  // [nlat][nlon]
  // Mean geopotential over the sphere (m^2/s^2): the conserved mass.
  double mean_geopotential(const SweState& state) const;
  // Mean over the sphere of h |v|^2 / 2 + g h^2 / 2 (total energy per unit area and density).
  double mean_energy(const SweState& state);

  // Sets Phi from nonlinear balance with the current zeta and delta:
  // Phi_lm = -(a^2 / (l(l+1))) curl[(zeta + f) v]_lm - K_lm for l >= 1, mean g * mean_depth_m.
  void balance_geopotential(SweState& state, double mean_depth_m);

 private:
  void synthesize_winds(const SweState& state);  // fills psi_, chi_, u_grid_, v_grid_

  SphericalTransform transform_;
  double dt_seconds_;
  bool hyperdiffusion_;
  std::vector<double> coriolis_;           // [nlat][nlon]
  std::vector<double> diffusion_factor_;   // [num_coeffs]
  std::vector<double> one_minus_mu2_;      // [nlat]
  // Workspace.
  std::vector<Complex> psi_, chi_, energy_coeffs_;           // [num_coeffs]
  std::vector<Complex> fourier_[5];                          // [nlat][T+1] each
  std::vector<double> vorticity_grid_, geopotential_grid_;   // [nlat][nlon]
  std::vector<double> u_grid_, v_grid_;                      // [nlat][nlon] cos-weighted winds
  std::vector<double> products_[5];                          // [nlat][nlon] each
  SweState stage_[5];
};

// Deterministic 64-bit mixing (splitmix64 finalizer); used to derive one
// independent seed per trajectory from (seed, index).
uint64_t swe_mix_seed(uint64_t seed, uint64_t index);

struct RandomStateOptions {
  double rms_vorticity_per_s = 3e-5;
  double mean_depth_m = 1e4;
  double peak_degree = 8.0;   // the red spectrum exp(-((l - peak)/width)^2 / 2)
  double degree_width = 4.0;
};

// Random red-spectrum vorticity (isotropic complex normal coefficients), zero
// divergence, Phi in nonlinear balance. Same seed, same state, on every platform
// (own generator, no <random> distributions).
SweState random_balanced_state(SweSolver& solver, uint64_t seed, const RandomStateOptions& options = {});

// Williamson et al. (1992) case 2: steady zonal flow about a pole tilted by
// alpha, u0 = 2 pi a / 12 days, g h0 = 2.94e4 m^2/s^2. Carries the matching
// rotated Coriolis field and the exact height, which is also the solution at
// every later time.
struct WilliamsonCase2 {
  SweState state;
  std::vector<double> coriolis_per_s;  // [nlat][nlon]
  std::vector<double> height_m;        // [nlat][nlon]
};
WilliamsonCase2 williamson_case2(const SphericalTransform& transform, double alpha_rad);

// Williamson case 6: Rossby-Haurwitz wave, wavenumber R = 4, omega = K =
// 7.848e-6 1/s, h0 = 8000 m; standard Coriolis.
SweState williamson_case6(const SphericalTransform& transform);

// Normalized l2 error of a height field against the truth with Gauss weights:
// sqrt(sum w (h - t)^2 / sum w t^2).
double weighted_l2_error(const SphericalTransform& transform, const std::vector<double>& height_m,
                         const std::vector<double>& truth_m);  // [nlat][nlon] each

}  // namespace gc::data
