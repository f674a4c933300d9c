// swe_transform.h: the spherical-harmonic transform of the shallow-water data
// generator (SWE.md): a Gaussian grid, fully normalized associated Legendre
// functions (integral of P^2 over mu in [-1, 1] is 1, no Condon-Shortley phase)
// and their H_lm = (1 - mu^2) dP_lm/dmu, a radix-2 FFT in longitude, scalar
// analysis/synthesis and the vector transforms of the vorticity-divergence form.
//
// Conventions that callers rely on:
// - Latitude rows run NORTH TO SOUTH: row 0 is the northernmost Gauss latitude,
//   mu_j = sin(lat_j) decreases with j. Longitudes are 360 k / nlon degrees,
//   k = 0..nlon-1, starting at 0 (Greenwich), eastward.
// - A grid field is row-major [nlat][nlon]; a Fourier field is [nlat][T+1]
//   complex (m = 0..T) with F_m = (1/nlon) sum_k f_k exp(-i m lambda_k) and
//   f = F_0 + 2 Re sum_{m>=1} F_m exp(i m lambda); a spectral field is
//   [num_coeffs] complex with (l, m) at coeff_index(l, m), m-major
//   (m = 0..T, then l = m..T).
// - Tables hold only the northern half: P(-mu) = (-1)^(l+m) P(mu) and
//   H(-mu) = -(-1)^(l+m) H(mu) give the southern rows.
// The object is immutable after construction, so one instance may be shared by
// any number of threads.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

namespace gc::data {

using Complex = std::complex<double>;

// Gauss-Legendre nodes (descending: x_0 closest to +1) and weights on [-1, 1],
// by Newton iteration from x = cos(pi (i - 1/4) / (n + 1/2)). Weights sum to 2.
void gauss_legendre(int n, std::vector<double>& nodes, std::vector<double>& weights);

class SphericalTransform {
 public:
  // Default alias-free grid for quadratic terms: nlon = smallest power of two
  // >= 3T+1, nlat = nlon / 2 (T21 -> 32 x 64, T42 -> 64 x 128).
  explicit SphericalTransform(int truncation);
  // Any grid with nlon a power of two > 2T and an even nlat > T (so that the
  // Gauss quadrature integrates products of two degree-T functions exactly);
  // nlat = nlon = 0 selects the default grid.
  SphericalTransform(int truncation, int nlat, int nlon);
  // The default grid of a truncation, without building the tables.
  static void default_grid(int truncation, int& nlat, int& nlon);

  int truncation() const { return truncation_; }
  int nlat() const { return nlat_; }
  int nlon() const { return nlon_; }
  int num_coeffs() const { return num_coeffs_; }
  int num_fourier() const { return truncation_ + 1; }  // Fourier modes m = 0..T kept per row
  size_t grid_size() const { return static_cast<size_t>(nlat_) * nlon_; }
  size_t fourier_size() const { return static_cast<size_t>(nlat_) * (truncation_ + 1); }
  int coeff_index(int l, int m) const { return m_offset_[m] + (l - m); }

  const std::vector<double>& mu() const { return mu_; }                        // [nlat] sin(lat), north to south
  const std::vector<double>& gauss_weights() const { return gauss_weights_; }  // [nlat], sum 2
  std::vector<double> latitudes_deg() const;                                   // [nlat] north to south
  std::vector<double> longitudes_deg() const;                                  // [nlon] from 0 eastward

  // In-place complex FFT of length nlon, unnormalized: sign -1 computes
  // sum_k x_k exp(-2 pi i j k / n), sign +1 the conjugate transform.
  void fft(Complex* data, int sign) const;  // [nlon]

  // Longitude stage. Rows are transformed in pairs through one complex FFT.
  void grid_to_fourier(const double* grid, Complex* fourier) const;  // [nlat][nlon] -> [nlat][T+1]
  void fourier_to_grid(const Complex* fourier, double* grid) const;  // [nlat][T+1] -> [nlat][nlon]

  // Latitude stage: c_lm = sum_j w_j F_m(mu_j) P_lm(mu_j) and its inverse.
  void legendre_analysis(const Complex* fourier, Complex* coeffs) const;   // [nlat][T+1] -> [num_coeffs]
  void legendre_synthesis(const Complex* coeffs, Complex* fourier) const;  // [num_coeffs] -> [nlat][T+1]

  // Full scalar transforms (allocate their own Fourier scratch).
  void analysis(const double* grid, Complex* coeffs) const;   // [nlat][nlon] -> [num_coeffs]
  void synthesis(const Complex* coeffs, double* grid) const;  // [num_coeffs] -> [nlat][nlon]

  // psi_lm = -a^2 zeta_lm / (l(l+1)), chi likewise from delta; the l = 0 term is 0.
  void inverse_laplacian(const Complex* coeffs, Complex* out, double radius_m) const;  // [num_coeffs] each

  // Cos-weighted winds U = u cos(lat), V = v cos(lat) in Fourier space from
  // streamfunction psi and velocity potential chi:
  //   U_m = (1/a) sum_l [i m chi_lm P_lm - psi_lm H_lm], V_m = (1/a) sum_l [i m psi_lm P_lm + chi_lm H_lm].
  void uv_fourier_from_psi_chi(const Complex* psi, const Complex* chi,  // [num_coeffs] each
                               Complex* u_fourier, Complex* v_fourier,  // [nlat][T+1] each
                               double radius_m) const;
  // Divergence and curl of the vector whose cos-weighted components have Fourier
  // coefficients (A, B):
  //   div_lm  = (1/a) sum_j w_j/(1-mu_j^2) [i m A_m P_lm - B_m H_lm]
  //   curl_lm = (1/a) sum_j w_j/(1-mu_j^2) [i m B_m P_lm + A_m H_lm]
  // Either output may be null when not needed.
  void divergence_curl_from_fourier(const Complex* a_fourier, const Complex* b_fourier,  // [nlat][T+1] each
                                    Complex* divergence, Complex* curl,                  // [num_coeffs] each
                                    double radius_m) const;

  // Grid-level conveniences built on the stages above.
  void uv_from_vorticity_divergence(const Complex* vorticity, const Complex* divergence,  // [num_coeffs]
                                    double* u_cos, double* v_cos,                         // [nlat][nlon]
                                    double radius_m) const;
  void vorticity_divergence_from_uv(const double* u_cos, const double* v_cos,  // [nlat][nlon]
                                    Complex* vorticity, Complex* divergence,   // [num_coeffs]
                                    double radius_m) const;

  // Mean over the sphere of f^2 for the field with coefficients c (Parseval:
  // sum_l c_l0^2 / 2 + sum_{m>0} |c_lm|^2, for the Fourier convention above).
  double mean_square(const Complex* coeffs) const;  // [num_coeffs]

 private:
  // Index of (l, m, northern row j) in the P/H tables: m-major, then j, then l.
  size_t table_index(int l, int m, int j) const {
    return static_cast<size_t>(m_offset_[m]) * nhalf_ + static_cast<size_t>(j) * (truncation_ + 1 - m) + (l - m);
  }
  void build_tables();

  int truncation_, nlat_, nlon_, nhalf_, num_coeffs_;
  std::vector<int> m_offset_;           // [T+1] start of each m block in a spectral field
  std::vector<double> mu_;              // [nlat]
  std::vector<double> gauss_weights_;   // [nlat]
  std::vector<double> legendre_p_;      // [nhalf * num_coeffs] P_lm at northern rows
  std::vector<double> legendre_h_;      // [nhalf * num_coeffs] H_lm at northern rows
  std::vector<Complex> twiddles_;       // [nlon/2] exp(-2 pi i k / nlon)
  std::vector<int> bit_reverse_;        // [nlon]
};

}  // namespace gc::data
