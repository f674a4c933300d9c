// solar.h: the forcings GraphCast is fed besides the weather: top-of-atmosphere incident
// solar radiation (ERA5's `toa_incident_solar_radiation`) and the year/day progress features,
// computed as DeepMind's reference code computes them (graphcast/solar_radiation.py and
// data_utils.py at commit 08cf736), so that gc's forcings equal those of a DeepMind run.
//
// TOA radiation at time t, in J/m^2, is the flux integrated over the hour that ends at t:
// num_integration_bins + 1 samples of the instantaneous flux (tsi * (1 AU / r)^2 *
// max(sin(solar altitude), 0)), trapezoidal rule. The orbital parameters (declination,
// equation of time, Earth-Sun distance) are ECMWF's empirical series in Julian years since
// J2000; the total solar irradiance is ERA5's yearly table, interpolated linearly in the
// fractional year and held constant outside 1951.5..2034.5.
//
// Not obvious: DeepMind runs this in float32 (jax without x64), and float32 cannot hold the
// sample times. A J2000 day number near 6,000 has an ulp of 2^-11 day (42 s), so the 10 s
// samples of the integral land on a 42 s lattice (84 s after 2022). On the fixture's 2016
// times that moves the integral by up to 36 J/m^2 (7e-6 of its maximum). SolarTime::deepmind_f32
// rounds every sample time exactly as DeepMind's f32 arithmetic does and computes the rest in
// f64: that reproduces DeepMind's forcings to 4 J/m^2 (8e-7), what is left of its f32 chain.
// SolarTime::exact keeps f64 times (DeepMind's code run with x64; equal to 2e-15).
#pragma once

#include <cstdint>
#include <vector>

namespace gc::data {

enum class SolarTime {
  deepmind_f32,  // sample times rounded to f32 as DeepMind's own runs do (the default)
  exact,         // sample times in f64
};

struct SolarRadiationOptions {
  int64_t integration_period_s = 3600;  // the interval that ends at each time (ERA5: 1 h)
  int num_integration_bins = 360;       // trapezoid intervals (must divide the period in ns)
  SolarTime time = SolarTime::deepmind_f32;
};

// ERA5's total solar irradiance (W/m^2) at a time: yearly values interpolated in the
// fractional year (year + (day of year - 1 + fraction of day) / days in the year).
double era5_total_solar_irradiance(int64_t seconds_since_epoch);

// Days since J2000.0 (2000-01-01T12:00) as pandas' to_julian_date() - 2451545 gives them.
double j2000_days(int64_t seconds_since_epoch);

// TOA incident solar radiation in J/m^2, [times, lat, lon] row-major, for every time (the end
// of each integration period, seconds since 1970-01-01 UTC) at every lat x lon (degrees).
// Throws std::invalid_argument for an empty period, a bin count < 1 or one that does not
// divide the period.
std::vector<double> toa_incident_solar_radiation(const std::vector<int64_t>& seconds_since_epoch,
                                                 const std::vector<double>& lat_deg,
                                                 const std::vector<double>& lon_deg,
                                                 const SolarRadiationOptions& options = {});

// Year progress in [0, 1): seconds since 1970 in units of the mean tropical year (365.24219
// days), fractional part, as float32 (DeepMind's feature is f32).
float year_progress(int64_t seconds_since_epoch);

// Day progress in [0, 1) at a longitude (degrees): the UTC fraction of the day plus
// longitude / 360, fractional part, as float32.
float day_progress(int64_t seconds_since_epoch, double lon_deg);

// The features GraphCast sees for a progress p: sin and cos of 2 pi p, where, as in
// DeepMind's f32 numpy code, the phase p * 2 pi is rounded to float32 before sin/cos.
struct ProgressFeatures {
  float sin, cos;
};
ProgressFeatures progress_features(float progress);

}  // namespace gc::data
