// swe_transform.cpp: Gaussian grid, Legendre tables, FFT and the spectral
// transforms declared in swe_transform.h. Every latitude sum walks only the
// northern rows and folds the southern mirror row in through the parity of
// l + m, which halves both the tables and the work.
#include "tools/data/swe_transform.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace gc::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Explicit complex product: std::complex's operator* carries a NaN-recovery
// slow path that the transforms never need.
inline Complex mul(Complex a, Complex b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}
inline Complex times_i(Complex a, double m) { return {-m * a.imag(), m * a.real()}; }  // i m a

bool is_power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

// Unnormalized Legendre P_n(x) and P_{n-1}(x) by the three-term recurrence.
void legendre_pair(int n, double x, double& p_n, double& p_n_minus_1) {
  double p_prev = 1.0, p = x;
  for (int k = 1; k < n; ++k) {
    const double p_next = ((2.0 * k + 1.0) * x * p - k * p_prev) / (k + 1.0);
    p_prev = p;
    p = p_next;
  }
  p_n = p;
  p_n_minus_1 = p_prev;
}

}  // namespace

void gauss_legendre(int n, std::vector<double>& nodes, std::vector<double>& weights) {
  if (n < 1) throw std::invalid_argument("gauss_legendre: need at least one node, got " + std::to_string(n));
  nodes.assign(static_cast<size_t>(n), 0.0);
  weights.assign(static_cast<size_t>(n), 0.0);
  // The northern half is computed and mirrored, so the nodes are exactly
  // antisymmetric and the weights exactly symmetric (the hemispheric folding of
  // the transforms depends on mu_{n-1-j} == -mu_j bit for bit).
  for (int i = 0; i < (n + 1) / 2; ++i) {
    double x = std::cos(kPi * (i + 0.75) / (n + 0.5));
    double p_n = 0, p_prev = 0, derivative = 1;
    for (int iteration = 0; iteration < 100; ++iteration) {
      legendre_pair(n, x, p_n, p_prev);
      derivative = n * (x * p_n - p_prev) / (x * x - 1.0);
      const double dx = p_n / derivative;
      x -= dx;
      if (std::fabs(dx) < 1e-16) break;
    }
    legendre_pair(n, x, p_n, p_prev);
    derivative = n * (x * p_n - p_prev) / (x * x - 1.0);
    const double weight = 2.0 / ((1.0 - x * x) * derivative * derivative);
    nodes[static_cast<size_t>(i)] = x;
    nodes[static_cast<size_t>(n - 1 - i)] = -x;
    weights[static_cast<size_t>(i)] = weight;
    weights[static_cast<size_t>(n - 1 - i)] = weight;
  }
  if (n % 2 == 1) nodes[static_cast<size_t>(n / 2)] = 0.0;
}

SphericalTransform::SphericalTransform(int truncation)
    : SphericalTransform(truncation, 0, 0) {}

SphericalTransform::SphericalTransform(int truncation, int nlat, int nlon) : truncation_(truncation) {
  if (truncation < 1) throw std::invalid_argument("SphericalTransform: truncation must be >= 1, got " +
                                                  std::to_string(truncation));
  if (nlon == 0 && nlat == 0) default_grid(truncation, nlat, nlon);
  if (!is_power_of_two(nlon) || nlon <= 2 * truncation)
    throw std::invalid_argument("SphericalTransform: nlon must be a power of two > 2T (T = " +
                                std::to_string(truncation) + "), got " + std::to_string(nlon));
  if (nlat % 2 != 0 || nlat <= truncation)
    throw std::invalid_argument("SphericalTransform: nlat must be even and > T (T = " + std::to_string(truncation) +
                                "), got " + std::to_string(nlat));
  nlat_ = nlat;
  nlon_ = nlon;
  nhalf_ = nlat / 2;
  m_offset_.resize(static_cast<size_t>(truncation + 1));
  int offset = 0;
  for (int m = 0; m <= truncation; ++m) {
    m_offset_[static_cast<size_t>(m)] = offset;
    offset += truncation + 1 - m;
  }
  num_coeffs_ = offset;
  gauss_legendre(nlat_, mu_, gauss_weights_);
  build_tables();

  twiddles_.resize(static_cast<size_t>(nlon_ / 2));
  for (int k = 0; k < nlon_ / 2; ++k)
    twiddles_[static_cast<size_t>(k)] = std::polar(1.0, -2.0 * kPi * k / nlon_);
  bit_reverse_.resize(static_cast<size_t>(nlon_));
  int bits = 0;
  while ((1 << bits) < nlon_) ++bits;
  for (int i = 0; i < nlon_; ++i) {
    int reversed = 0;
    for (int b = 0; b < bits; ++b)
      if (i & (1 << b)) reversed |= 1 << (bits - 1 - b);
    bit_reverse_[static_cast<size_t>(i)] = reversed;
  }
}

void SphericalTransform::default_grid(int truncation, int& nlat, int& nlon) {
  nlon = 1;
  while (nlon < 3 * truncation + 1) nlon *= 2;
  nlat = nlon / 2;
}

void SphericalTransform::build_tables() {
  const int T = truncation_;
  legendre_p_.assign(static_cast<size_t>(nhalf_) * num_coeffs_, 0.0);
  legendre_h_.assign(static_cast<size_t>(nhalf_) * num_coeffs_, 0.0);
  auto eps = [](int l, int m) { return std::sqrt((double(l) * l - double(m) * m) / (4.0 * l * l - 1.0)); };
  std::vector<double> p(static_cast<size_t>(T + 3));  // P_lm for l = m..T+1 at one (m, mu), indexed by l
  for (int j = 0; j < nhalf_; ++j) {
    const double x = mu_[static_cast<size_t>(j)];
    const double cos_lat = std::sqrt(1.0 - x * x);
    double p_mm = std::sqrt(0.5);
    for (int m = 0; m <= T; ++m) {
      if (m > 0) p_mm *= std::sqrt((2.0 * m + 1.0) / (2.0 * m)) * cos_lat;
      p[static_cast<size_t>(m)] = p_mm;
      p[static_cast<size_t>(m + 1)] = std::sqrt(2.0 * m + 3.0) * x * p_mm;
      for (int l = m + 2; l <= T + 1; ++l)
        p[static_cast<size_t>(l)] =
            (x * p[static_cast<size_t>(l - 1)] - eps(l - 1, m) * p[static_cast<size_t>(l - 2)]) / eps(l, m);
      for (int l = m; l <= T; ++l) {
        const double p_below = l > m ? p[static_cast<size_t>(l - 1)] : 0.0;
        legendre_p_[table_index(l, m, j)] = p[static_cast<size_t>(l)];
        legendre_h_[table_index(l, m, j)] =
            -l * eps(l + 1, m) * p[static_cast<size_t>(l + 1)] + (l + 1) * eps(l, m) * p_below;
      }
    }
  }
}

std::vector<double> SphericalTransform::latitudes_deg() const {
  std::vector<double> out(static_cast<size_t>(nlat_));
  for (int j = 0; j < nlat_; ++j) out[static_cast<size_t>(j)] = std::asin(mu_[static_cast<size_t>(j)]) * 180.0 / kPi;
  return out;
}

std::vector<double> SphericalTransform::longitudes_deg() const {
  std::vector<double> out(static_cast<size_t>(nlon_));
  for (int k = 0; k < nlon_; ++k) out[static_cast<size_t>(k)] = 360.0 * k / nlon_;
  return out;
}

void SphericalTransform::fft(Complex* data, int sign) const {
  const int n = nlon_;
  for (int i = 0; i < n; ++i) {
    const int r = bit_reverse_[static_cast<size_t>(i)];
    if (i < r) std::swap(data[i], data[r]);
  }
  for (int length = 2; length <= n; length <<= 1) {
    const int half = length / 2, stride = n / length;
    for (int start = 0; start < n; start += length) {
      for (int k = 0; k < half; ++k) {
        Complex w = twiddles_[static_cast<size_t>(k * stride)];
        if (sign > 0) w = std::conj(w);
        const Complex top = data[start + k];
        const Complex bottom = mul(data[start + k + half], w);
        data[start + k] = top + bottom;
        data[start + k + half] = top - bottom;
      }
    }
  }
}

void SphericalTransform::grid_to_fourier(const double* grid, Complex* fourier) const {
  const int n = nlon_, modes = truncation_ + 1;
  std::vector<Complex> z(static_cast<size_t>(n));
  const double scale = 0.5 / n;
  // Two real rows x, y ride in one complex FFT of z = x + i y:
  // X_m = (Z_m + conj Z_{n-m}) / 2, Y_m = (Z_m - conj Z_{n-m}) / (2 i).
  for (int j = 0; j < nlat_; j += 2) {
    const double* x = grid + static_cast<size_t>(j) * n;
    const double* y = x + n;
    for (int k = 0; k < n; ++k) z[static_cast<size_t>(k)] = {x[k], y[k]};
    fft(z.data(), -1);
    Complex* fx = fourier + static_cast<size_t>(j) * modes;
    Complex* fy = fx + modes;
    for (int m = 0; m < modes; ++m) {
      const Complex a = z[static_cast<size_t>(m)], b = std::conj(z[static_cast<size_t>((n - m) % n)]);
      fx[m] = (a + b) * scale;
      const Complex d = a - b;  // Y = d / (2i) = -i d / 2
      fy[m] = Complex(d.imag(), -d.real()) * scale;
    }
  }
}

void SphericalTransform::fourier_to_grid(const Complex* fourier, double* grid) const {
  const int n = nlon_, modes = truncation_ + 1;
  std::vector<Complex> z(static_cast<size_t>(n));
  for (int j = 0; j < nlat_; j += 2) {
    const Complex* fx = fourier + static_cast<size_t>(j) * modes;
    const Complex* fy = fx + modes;
    std::fill(z.begin(), z.end(), Complex(0.0, 0.0));
    // The m = 0 coefficient of a real field is real; an imaginary part would
    // leak between the paired rows, so it is dropped.
    z[0] = {fx[0].real(), fy[0].real()};
    for (int m = 1; m < modes; ++m) {
      const Complex x = fx[m], y = fy[m];
      z[static_cast<size_t>(m)] = x + Complex(-y.imag(), y.real());
      const Complex xc = std::conj(x), yc = std::conj(y);
      z[static_cast<size_t>(n - m)] = xc + Complex(-yc.imag(), yc.real());
    }
    fft(z.data(), +1);
    double* x = grid + static_cast<size_t>(j) * n;
    double* y = x + n;
    for (int k = 0; k < n; ++k) {
      x[k] = z[static_cast<size_t>(k)].real();
      y[k] = z[static_cast<size_t>(k)].imag();
    }
  }
}

void SphericalTransform::legendre_analysis(const Complex* fourier, Complex* coeffs) const {
  const int T = truncation_, modes = T + 1;
  for (int i = 0; i < num_coeffs_; ++i) coeffs[i] = 0.0;
  for (int m = 0; m <= T; ++m) {
    Complex* c = coeffs + m_offset_[static_cast<size_t>(m)];
    const int count = T + 1 - m;
    for (int j = 0; j < nhalf_; ++j) {
      const Complex north = fourier[static_cast<size_t>(j) * modes + m];
      const Complex south = fourier[static_cast<size_t>(nlat_ - 1 - j) * modes + m];
      const double w = gauss_weights_[static_cast<size_t>(j)];
      const Complex even = (north + south) * w, odd = (north - south) * w;
      const double* p = &legendre_p_[table_index(m, m, j)];
      for (int k = 0; k < count; k += 2) c[k] += even * p[k];
      for (int k = 1; k < count; k += 2) c[k] += odd * p[k];
    }
  }
}

void SphericalTransform::legendre_synthesis(const Complex* coeffs, Complex* fourier) const {
  const int T = truncation_, modes = T + 1;
  for (int m = 0; m <= T; ++m) {
    const Complex* c = coeffs + m_offset_[static_cast<size_t>(m)];
    const int count = T + 1 - m;
    for (int j = 0; j < nhalf_; ++j) {
      const double* p = &legendre_p_[table_index(m, m, j)];
      Complex even = 0.0, odd = 0.0;
      for (int k = 0; k < count; k += 2) even += c[k] * p[k];
      for (int k = 1; k < count; k += 2) odd += c[k] * p[k];
      fourier[static_cast<size_t>(j) * modes + m] = even + odd;
      fourier[static_cast<size_t>(nlat_ - 1 - j) * modes + m] = even - odd;
    }
  }
}

void SphericalTransform::analysis(const double* grid, Complex* coeffs) const {
  std::vector<Complex> fourier(fourier_size());
  grid_to_fourier(grid, fourier.data());
  legendre_analysis(fourier.data(), coeffs);
}

void SphericalTransform::synthesis(const Complex* coeffs, double* grid) const {
  std::vector<Complex> fourier(fourier_size());
  legendre_synthesis(coeffs, fourier.data());
  fourier_to_grid(fourier.data(), grid);
}

void SphericalTransform::inverse_laplacian(const Complex* coeffs, Complex* out, double radius_m) const {
  const double a2 = radius_m * radius_m;
  for (int m = 0; m <= truncation_; ++m)
    for (int l = m; l <= truncation_; ++l) {
      const int i = coeff_index(l, m);
      out[i] = l == 0 ? Complex(0.0, 0.0) : coeffs[i] * (-a2 / (double(l) * (l + 1)));
    }
}

void SphericalTransform::uv_fourier_from_psi_chi(const Complex* psi, const Complex* chi, Complex* u_fourier,
                                                 Complex* v_fourier, double radius_m) const {
  const int T = truncation_, modes = T + 1;
  const double inv_a = 1.0 / radius_m;
  for (int m = 0; m <= T; ++m) {
    const Complex* psi_m = psi + m_offset_[static_cast<size_t>(m)];
    const Complex* chi_m = chi + m_offset_[static_cast<size_t>(m)];
    const int count = T + 1 - m;
    for (int j = 0; j < nhalf_; ++j) {
      const double* p = &legendre_p_[table_index(m, m, j)];
      const double* h = &legendre_h_[table_index(m, m, j)];
      // Sums split by the parity of l + m ("even" terms are symmetric in P,
      // antisymmetric in H).
      Complex chi_p[2] = {0.0, 0.0}, psi_p[2] = {0.0, 0.0}, chi_h[2] = {0.0, 0.0}, psi_h[2] = {0.0, 0.0};
      for (int k = 0; k < count; ++k) {
        const int parity = k & 1;
        chi_p[parity] += chi_m[k] * p[k];
        psi_p[parity] += psi_m[k] * p[k];
        chi_h[parity] += chi_m[k] * h[k];
        psi_h[parity] += psi_m[k] * h[k];
      }
      const Complex chi_p_north = chi_p[0] + chi_p[1], chi_p_south = chi_p[0] - chi_p[1];
      const Complex psi_p_north = psi_p[0] + psi_p[1], psi_p_south = psi_p[0] - psi_p[1];
      const Complex chi_h_north = chi_h[0] + chi_h[1], chi_h_south = chi_h[1] - chi_h[0];
      const Complex psi_h_north = psi_h[0] + psi_h[1], psi_h_south = psi_h[1] - psi_h[0];
      const size_t north = static_cast<size_t>(j) * modes + m, south = static_cast<size_t>(nlat_ - 1 - j) * modes + m;
      u_fourier[north] = (times_i(chi_p_north, m) - psi_h_north) * inv_a;
      v_fourier[north] = (times_i(psi_p_north, m) + chi_h_north) * inv_a;
      u_fourier[south] = (times_i(chi_p_south, m) - psi_h_south) * inv_a;
      v_fourier[south] = (times_i(psi_p_south, m) + chi_h_south) * inv_a;
    }
  }
}

void SphericalTransform::divergence_curl_from_fourier(const Complex* a_fourier, const Complex* b_fourier,
                                                      Complex* divergence, Complex* curl, double radius_m) const {
  const int T = truncation_, modes = T + 1;
  if (divergence)
    for (int i = 0; i < num_coeffs_; ++i) divergence[i] = 0.0;
  if (curl)
    for (int i = 0; i < num_coeffs_; ++i) curl[i] = 0.0;
  for (int m = 0; m <= T; ++m) {
    const int count = T + 1 - m;
    Complex* div_m = divergence ? divergence + m_offset_[static_cast<size_t>(m)] : nullptr;
    Complex* curl_m = curl ? curl + m_offset_[static_cast<size_t>(m)] : nullptr;
    for (int j = 0; j < nhalf_; ++j) {
      const double x = mu_[static_cast<size_t>(j)];
      const double s = gauss_weights_[static_cast<size_t>(j)] / ((1.0 - x * x) * radius_m);
      const size_t north = static_cast<size_t>(j) * modes + m, south = static_cast<size_t>(nlat_ - 1 - j) * modes + m;
      const Complex a_sum = (a_fourier[north] + a_fourier[south]) * s, a_diff = (a_fourier[north] - a_fourier[south]) * s;
      const Complex b_sum = (b_fourier[north] + b_fourier[south]) * s, b_diff = (b_fourier[north] - b_fourier[south]) * s;
      // index [parity of l+m]: P pairs with the sum for even, the difference for odd; H the other way round.
      const Complex im_a[2] = {times_i(a_sum, m), times_i(a_diff, m)};
      const Complex im_b[2] = {times_i(b_sum, m), times_i(b_diff, m)};
      const Complex a_for_h[2] = {a_diff, a_sum}, b_for_h[2] = {b_diff, b_sum};
      const double* p = &legendre_p_[table_index(m, m, j)];
      const double* h = &legendre_h_[table_index(m, m, j)];
      if (div_m)
        for (int k = 0; k < count; ++k) div_m[k] += im_a[k & 1] * p[k] - b_for_h[k & 1] * h[k];
      if (curl_m)
        for (int k = 0; k < count; ++k) curl_m[k] += im_b[k & 1] * p[k] + a_for_h[k & 1] * h[k];
    }
  }
}

void SphericalTransform::uv_from_vorticity_divergence(const Complex* vorticity, const Complex* divergence,
                                                      double* u_cos, double* v_cos, double radius_m) const {
  std::vector<Complex> psi(static_cast<size_t>(num_coeffs_)), chi(static_cast<size_t>(num_coeffs_));
  inverse_laplacian(vorticity, psi.data(), radius_m);
  inverse_laplacian(divergence, chi.data(), radius_m);
  std::vector<Complex> u_fourier(fourier_size()), v_fourier(fourier_size());
  uv_fourier_from_psi_chi(psi.data(), chi.data(), u_fourier.data(), v_fourier.data(), radius_m);
  fourier_to_grid(u_fourier.data(), u_cos);
  fourier_to_grid(v_fourier.data(), v_cos);
}

void SphericalTransform::vorticity_divergence_from_uv(const double* u_cos, const double* v_cos, Complex* vorticity,
                                                      Complex* divergence, double radius_m) const {
  std::vector<Complex> u_fourier(fourier_size()), v_fourier(fourier_size());
  grid_to_fourier(u_cos, u_fourier.data());
  grid_to_fourier(v_cos, v_fourier.data());
  divergence_curl_from_fourier(u_fourier.data(), v_fourier.data(), divergence, vorticity, radius_m);
}

double SphericalTransform::mean_square(const Complex* coeffs) const {
  double total = 0.0;
  for (int l = 0; l <= truncation_; ++l) total += 0.5 * coeffs[l].real() * coeffs[l].real();
  for (int i = truncation_ + 1; i < num_coeffs_; ++i) total += std::norm(coeffs[i]);
  return total;
}

}  // namespace gc::data
