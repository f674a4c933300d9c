// swe_solver.cpp: tendencies, RK4, hyperdiffusion, diagnostics and initial
// conditions of the shallow-water solver (swe_solver.h). One tendency is four
// syntheses (zeta, Phi, U, V), five grid products and five analyses, all into
// the solver's preallocated workspace.
#include "tools/data/swe_solver.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "runtime/random.h"

namespace gc::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// out = base + scale * increment, for all three fields.
void axpy_state(const SweState& base, double scale, const SweState& increment, SweState& out) {
  const size_t n = base.vorticity.size();
  for (size_t i = 0; i < n; ++i) {
    out.vorticity[i] = base.vorticity[i] + scale * increment.vorticity[i];
    out.divergence[i] = base.divergence[i] + scale * increment.divergence[i];
    out.geopotential[i] = base.geopotential[i] + scale * increment.geopotential[i];
  }
}

void resize_state(SweState& state, int num_coeffs) {
  state.vorticity.assign(static_cast<size_t>(num_coeffs), Complex(0.0, 0.0));
  state.divergence.assign(static_cast<size_t>(num_coeffs), Complex(0.0, 0.0));
  state.geopotential.assign(static_cast<size_t>(num_coeffs), Complex(0.0, 0.0));
}

}  // namespace

double swe_stable_time_step_s(int truncation) {
  if (truncation < 1) throw std::invalid_argument("swe_stable_time_step_s: truncation must be >= 1");
  return 1800.0 * std::sqrt(21.0 * 22.0 / (double(truncation) * (truncation + 1)));
}

uint64_t swe_mix_seed(uint64_t seed, uint64_t index) {
  uint64_t state = seed ^ (0xD1B54A32D192ED03ull * (index + 1));
  next_random(state);
  return next_random(state);
}

SweSolver::SweSolver(int truncation, double dt_seconds, bool hyperdiffusion)
    : SweSolver(SphericalTransform(truncation), dt_seconds, hyperdiffusion) {}

SweSolver::SweSolver(const SphericalTransform& transform, double dt_seconds, bool hyperdiffusion)
    : transform_(transform), dt_seconds_(dt_seconds), hyperdiffusion_(hyperdiffusion) {
  if (!(dt_seconds > 0.0) || !std::isfinite(dt_seconds))
    throw std::invalid_argument("SweSolver: time step must be positive and finite, got " + std::to_string(dt_seconds));
  const int T = transform_.truncation(), nlat = transform_.nlat(), nlon = transform_.nlon();
  const int n = transform_.num_coeffs();
  coriolis_.resize(transform_.grid_size());
  one_minus_mu2_.resize(static_cast<size_t>(nlat));
  for (int j = 0; j < nlat; ++j) {
    const double mu = transform_.mu()[static_cast<size_t>(j)];
    one_minus_mu2_[static_cast<size_t>(j)] = 1.0 - mu * mu;
    for (int k = 0; k < nlon; ++k) coriolis_[static_cast<size_t>(j) * nlon + k] = 2.0 * kEarthRotationPerS * mu;
  }
  diffusion_factor_.resize(static_cast<size_t>(n));
  const double max_eigen = double(T) * (T + 1);
  for (int m = 0; m <= T; ++m)
    for (int l = m; l <= T; ++l) {
      const double ratio = double(l) * (l + 1) / max_eigen;
      diffusion_factor_[static_cast<size_t>(transform_.coeff_index(l, m))] =
          std::exp(-(dt_seconds_ / 7200.0) * std::pow(ratio, 4));
    }
  psi_.resize(static_cast<size_t>(n));
  chi_.resize(static_cast<size_t>(n));
  energy_coeffs_.resize(static_cast<size_t>(n));
  for (auto& f : fourier_) f.resize(transform_.fourier_size());
  for (auto& g : products_) g.resize(transform_.grid_size());
  vorticity_grid_.resize(transform_.grid_size());
  geopotential_grid_.resize(transform_.grid_size());
  u_grid_.resize(transform_.grid_size());
  v_grid_.resize(transform_.grid_size());
  for (auto& s : stage_) resize_state(s, n);
}

SweState SweSolver::zero_state() const {
  SweState state;
  resize_state(state, transform_.num_coeffs());
  return state;
}

void SweSolver::set_coriolis(const std::vector<double>& coriolis_per_s) {
  if (coriolis_per_s.size() != transform_.grid_size())
    throw std::invalid_argument("SweSolver::set_coriolis: expected " + std::to_string(transform_.grid_size()) +
                                " grid values, got " + std::to_string(coriolis_per_s.size()));
  coriolis_ = coriolis_per_s;
}

void SweSolver::synthesize_winds(const SweState& state) {
  const double a = kEarthRadiusM;
  transform_.inverse_laplacian(state.vorticity.data(), psi_.data(), a);
  transform_.inverse_laplacian(state.divergence.data(), chi_.data(), a);
  transform_.uv_fourier_from_psi_chi(psi_.data(), chi_.data(), fourier_[0].data(), fourier_[1].data(), a);
  transform_.fourier_to_grid(fourier_[0].data(), u_grid_.data());
  transform_.fourier_to_grid(fourier_[1].data(), v_grid_.data());
}

void SweSolver::tendency(const SweState& state, SweState& out) {
  const double a = kEarthRadiusM;
  const int T = transform_.truncation(), nlat = transform_.nlat(), nlon = transform_.nlon();
  synthesize_winds(state);
  transform_.legendre_synthesis(state.vorticity.data(), fourier_[2].data());
  transform_.fourier_to_grid(fourier_[2].data(), vorticity_grid_.data());
  transform_.legendre_synthesis(state.geopotential.data(), fourier_[3].data());
  transform_.fourier_to_grid(fourier_[3].data(), geopotential_grid_.data());

  // products_: (zeta+f)U, (zeta+f)V, Phi U, Phi V, E = Phi + (U^2+V^2)/(2(1-mu^2)).
  for (int j = 0; j < nlat; ++j) {
    const double half_inv_cos2 = 0.5 / one_minus_mu2_[static_cast<size_t>(j)];
    const size_t row = static_cast<size_t>(j) * nlon;
    for (int k = 0; k < nlon; ++k) {
      const size_t i = row + k;
      const double u = u_grid_[i], v = v_grid_[i], phi = geopotential_grid_[i];
      const double absolute_vorticity = vorticity_grid_[i] + coriolis_[i];
      products_[0][i] = absolute_vorticity * u;
      products_[1][i] = absolute_vorticity * v;
      products_[2][i] = phi * u;
      products_[3][i] = phi * v;
      products_[4][i] = phi + (u * u + v * v) * half_inv_cos2;
    }
  }
  for (int f = 0; f < 5; ++f) transform_.grid_to_fourier(products_[f].data(), fourier_[f].data());
  // out.vorticity <- div1, out.divergence <- curl1, out.geopotential <- div2.
  transform_.divergence_curl_from_fourier(fourier_[0].data(), fourier_[1].data(), out.vorticity.data(),
                                          out.divergence.data(), a);
  transform_.divergence_curl_from_fourier(fourier_[2].data(), fourier_[3].data(), out.geopotential.data(), nullptr,
                                          a);
  transform_.legendre_analysis(fourier_[4].data(), energy_coeffs_.data());
  for (int m = 0; m <= T; ++m)
    for (int l = m; l <= T; ++l) {
      const size_t i = static_cast<size_t>(transform_.coeff_index(l, m));
      out.vorticity[i] = -out.vorticity[i];
      out.divergence[i] += (double(l) * (l + 1) / (a * a)) * energy_coeffs_[i];
      out.geopotential[i] = -out.geopotential[i];
    }
}

void SweSolver::step(SweState& state) {
  SweState& k1 = stage_[0];
  SweState& k2 = stage_[1];
  SweState& k3 = stage_[2];
  SweState& k4 = stage_[3];
  SweState& probe = stage_[4];
  const double dt = dt_seconds_;
  tendency(state, k1);
  axpy_state(state, 0.5 * dt, k1, probe);
  tendency(probe, k2);
  axpy_state(state, 0.5 * dt, k2, probe);
  tendency(probe, k3);
  axpy_state(state, dt, k3, probe);
  tendency(probe, k4);
  const double sixth = dt / 6.0;
  for (size_t i = 0; i < state.vorticity.size(); ++i) {
    state.vorticity[i] += sixth * (k1.vorticity[i] + 2.0 * (k2.vorticity[i] + k3.vorticity[i]) + k4.vorticity[i]);
    state.divergence[i] +=
        sixth * (k1.divergence[i] + 2.0 * (k2.divergence[i] + k3.divergence[i]) + k4.divergence[i]);
    state.geopotential[i] +=
        sixth * (k1.geopotential[i] + 2.0 * (k2.geopotential[i] + k3.geopotential[i]) + k4.geopotential[i]);
  }
  if (hyperdiffusion_)
    for (size_t i = 0; i < state.vorticity.size(); ++i) {
      state.vorticity[i] *= diffusion_factor_[i];
      state.divergence[i] *= diffusion_factor_[i];
    }
}

void SweSolver::advance(SweState& state, int steps) {
  for (int s = 0; s < steps; ++s) step(state);
}

void SweSolver::grid_fields(const SweState& state, double* height_m, double* u_m_per_s, double* v_m_per_s) {
  const int nlat = transform_.nlat(), nlon = transform_.nlon();
  if (height_m) {
    transform_.synthesis(state.geopotential.data(), height_m);
    for (size_t i = 0; i < transform_.grid_size(); ++i) height_m[i] /= kGravityMPerS2;
  }
  if (!u_m_per_s && !v_m_per_s) return;
  synthesize_winds(state);
  for (int j = 0; j < nlat; ++j) {
    const double inv_cos = 1.0 / std::sqrt(one_minus_mu2_[static_cast<size_t>(j)]);
    for (int k = 0; k < nlon; ++k) {
      const size_t i = static_cast<size_t>(j) * nlon + k;
      if (u_m_per_s) u_m_per_s[i] = u_grid_[i] * inv_cos;
      if (v_m_per_s) v_m_per_s[i] = v_grid_[i] * inv_cos;
    }
  }
}

double SweSolver::mean_geopotential(const SweState& state) const {
  return state.geopotential[0].real() * std::sqrt(0.5);  // c_00 P_00
}

double SweSolver::mean_energy(const SweState& state) {
  const int nlat = transform_.nlat(), nlon = transform_.nlon();
  synthesize_winds(state);
  transform_.synthesis(state.geopotential.data(), geopotential_grid_.data());
  double total = 0.0;
  for (int j = 0; j < nlat; ++j) {
    const double inv_cos2 = 1.0 / one_minus_mu2_[static_cast<size_t>(j)];
    double row = 0.0;
    for (int k = 0; k < nlon; ++k) {
      const size_t i = static_cast<size_t>(j) * nlon + k;
      const double phi = geopotential_grid_[i];
      row += 0.5 * phi * (u_grid_[i] * u_grid_[i] + v_grid_[i] * v_grid_[i]) * inv_cos2 + 0.5 * phi * phi;
    }
    total += transform_.gauss_weights()[static_cast<size_t>(j)] * row;
  }
  return total / (2.0 * nlon * kGravityMPerS2);
}

void SweSolver::balance_geopotential(SweState& state, double mean_depth_m) {
  const double a = kEarthRadiusM;
  const int T = transform_.truncation(), nlat = transform_.nlat(), nlon = transform_.nlon();
  synthesize_winds(state);
  transform_.synthesis(state.vorticity.data(), vorticity_grid_.data());
  for (int j = 0; j < nlat; ++j) {
    const double half_inv_cos2 = 0.5 / one_minus_mu2_[static_cast<size_t>(j)];
    for (int k = 0; k < nlon; ++k) {
      const size_t i = static_cast<size_t>(j) * nlon + k;
      const double absolute_vorticity = vorticity_grid_[i] + coriolis_[i];
      products_[0][i] = absolute_vorticity * u_grid_[i];
      products_[1][i] = absolute_vorticity * v_grid_[i];
      products_[2][i] = (u_grid_[i] * u_grid_[i] + v_grid_[i] * v_grid_[i]) * half_inv_cos2;
    }
  }
  for (int f = 0; f < 3; ++f) transform_.grid_to_fourier(products_[f].data(), fourier_[f].data());
  transform_.divergence_curl_from_fourier(fourier_[0].data(), fourier_[1].data(), nullptr, psi_.data(), a);
  transform_.legendre_analysis(fourier_[2].data(), energy_coeffs_.data());
  for (int m = 0; m <= T; ++m)
    for (int l = std::max(m, 1); l <= T; ++l) {
      const size_t i = static_cast<size_t>(transform_.coeff_index(l, m));
      state.geopotential[i] = -(a * a / (double(l) * (l + 1))) * psi_[i] - energy_coeffs_[i];
    }
  state.geopotential[0] = Complex(kGravityMPerS2 * mean_depth_m / std::sqrt(0.5), 0.0);
}

SweState random_balanced_state(SweSolver& solver, uint64_t seed, const RandomStateOptions& options) {
  const SphericalTransform& transform = solver.transform();
  const int T = transform.truncation();
  SweState state = solver.zero_state();
  uint64_t rng = seed;
  for (int m = 0; m <= T; ++m)
    for (int l = std::max(m, 1); l <= T; ++l) {
      const double x = (l - options.peak_degree) / options.degree_width;
      const double amplitude = std::exp(-0.5 * x * x);
      Complex z;
      if (m == 0) {
        z = Complex(next_normal(rng), 0.0);
      } else {
        const double re = next_normal(rng), im = next_normal(rng);
        z = Complex(re, im) * std::sqrt(0.5);  // E|z|^2 = 1 keeps the field isotropic
      }
      state.vorticity[static_cast<size_t>(transform.coeff_index(l, m))] = amplitude * z;
    }
  const double rms = std::sqrt(transform.mean_square(state.vorticity.data()));
  if (!(rms > 0.0)) throw std::logic_error("random_balanced_state: drew an all-zero vorticity field");
  for (auto& c : state.vorticity) c *= options.rms_vorticity_per_s / rms;
  solver.balance_geopotential(state, options.mean_depth_m);
  return state;
}

WilliamsonCase2 williamson_case2(const SphericalTransform& transform, double alpha_rad) {
  const double a = kEarthRadiusM, omega = kEarthRotationPerS;
  const double u0 = 2.0 * kPi * a / (12.0 * 86400.0), gh0 = 2.94e4;
  const int nlat = transform.nlat(), nlon = transform.nlon();
  WilliamsonCase2 out;
  out.coriolis_per_s.resize(transform.grid_size());
  out.height_m.resize(transform.grid_size());
  std::vector<double> vorticity(transform.grid_size()), geopotential(transform.grid_size());
  for (int j = 0; j < nlat; ++j) {
    const double mu = transform.mu()[static_cast<size_t>(j)], cos_lat = std::sqrt(1.0 - mu * mu);
    for (int k = 0; k < nlon; ++k) {
      const double lambda = 2.0 * kPi * k / nlon;
      // sin of the latitude measured from the tilted pole.
      const double s = -std::cos(lambda) * cos_lat * std::sin(alpha_rad) + mu * std::cos(alpha_rad);
      const size_t i = static_cast<size_t>(j) * nlon + k;
      vorticity[i] = 2.0 * u0 / a * s;
      geopotential[i] = gh0 - (a * omega * u0 + 0.5 * u0 * u0) * s * s;
      out.coriolis_per_s[i] = 2.0 * omega * s;
      out.height_m[i] = geopotential[i] / kGravityMPerS2;
    }
  }
  out.state.vorticity.resize(static_cast<size_t>(transform.num_coeffs()));
  out.state.geopotential.resize(static_cast<size_t>(transform.num_coeffs()));
  out.state.divergence.assign(static_cast<size_t>(transform.num_coeffs()), Complex(0.0, 0.0));
  transform.analysis(vorticity.data(), out.state.vorticity.data());
  transform.analysis(geopotential.data(), out.state.geopotential.data());
  return out;
}

SweState williamson_case6(const SphericalTransform& transform) {
  const double a = kEarthRadiusM, Omega = kEarthRotationPerS, g = kGravityMPerS2;
  const double omega = 7.848e-6, K = 7.848e-6, h0 = 8000.0;
  const double R = 4.0;
  const int nlat = transform.nlat(), nlon = transform.nlon();
  std::vector<double> vorticity(transform.grid_size()), geopotential(transform.grid_size());
  for (int j = 0; j < nlat; ++j) {
    const double mu = transform.mu()[static_cast<size_t>(j)], c = std::sqrt(1.0 - mu * mu);
    const double c2 = c * c, cR = std::pow(c, R), c2R = cR * cR;
    const double A = 0.5 * omega * (2.0 * Omega + omega) * c2 +
                     0.25 * K * K * c2R * ((R + 1.0) * c2 + (2.0 * R * R - R - 2.0) - 2.0 * R * R / c2);
    const double B = 2.0 * (Omega + omega) * K / ((R + 1.0) * (R + 2.0)) * cR *
                     ((R * R + 2.0 * R + 2.0) - (R + 1.0) * (R + 1.0) * c2);
    const double C = 0.25 * K * K * c2R * ((R + 1.0) * c2 - (R + 2.0));
    for (int k = 0; k < nlon; ++k) {
      const double lambda = 2.0 * kPi * k / nlon;
      const size_t i = static_cast<size_t>(j) * nlon + k;
      vorticity[i] = 2.0 * omega * mu - K * mu * cR * (R * R + 3.0 * R + 2.0) * std::cos(R * lambda);
      geopotential[i] = g * h0 + a * a * (A + B * std::cos(R * lambda) + C * std::cos(2.0 * R * lambda));
    }
  }
  SweState state;
  state.vorticity.resize(static_cast<size_t>(transform.num_coeffs()));
  state.geopotential.resize(static_cast<size_t>(transform.num_coeffs()));
  state.divergence.assign(static_cast<size_t>(transform.num_coeffs()), Complex(0.0, 0.0));
  transform.analysis(vorticity.data(), state.vorticity.data());
  transform.analysis(geopotential.data(), state.geopotential.data());
  return state;
}

double weighted_l2_error(const SphericalTransform& transform, const std::vector<double>& height_m,
                         const std::vector<double>& truth_m) {
  if (height_m.size() != transform.grid_size() || truth_m.size() != transform.grid_size())
    throw std::invalid_argument("weighted_l2_error: fields must have nlat * nlon values");
  double error = 0.0, norm = 0.0;
  for (int j = 0; j < transform.nlat(); ++j) {
    const double w = transform.gauss_weights()[static_cast<size_t>(j)];
    for (int k = 0; k < transform.nlon(); ++k) {
      const size_t i = static_cast<size_t>(j) * transform.nlon() + k;
      const double d = height_m[i] - truth_m[i];
      error += w * d * d;
      norm += w * truth_m[i] * truth_m[i];
    }
  }
  return std::sqrt(error / norm);
}

}  // namespace gc::data
