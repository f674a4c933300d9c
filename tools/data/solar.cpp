// solar.cpp: TOA incident solar radiation and the progress features (see solar.h).
//
// The integral is over samples k = 0..N of the hour that ends at t; the orbital parameters
// depend only on the sample time, so they are computed once per sample and the inner loop
// over the grid is a few multiply-adds: cos(hour angle) = cos(a_k + lon) expands into
// cos a_k cos lon - sin a_k sin lon with both factors precomputed.
#include "tools/data/solar.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

namespace gc::data {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kSecondsPerDay = 86400.0;
constexpr double kJulianYearDays = 365.25;
constexpr double kJ2000JulianDate = 2451545.0;
constexpr double kUnixEpochJulianDate = 2440587.5;  // 1970-01-01T00:00 UTC

// ERA5's yearly total solar irradiance (IFS cycle 41r2 values, scaled by 0.9965 to agree with
// recent observations), at mid-year 1951.5, 1952.5, ..., 2034.5: 1951-1995 as measured, then
// the 1996-2008 solar cycle repeated for 2009-2021 and 2022-2034. Source: ERA5's
// documentation as tabulated in DeepMind's solar_radiation.era5_tsi_data.
constexpr double kTsiScale = 0.9965;
constexpr double kTsiFirstYear = 1951.5;
constexpr std::array<double, 45> kTsi1951To1995 = {
    1365.7765, 1365.7676, 1365.6284, 1365.6564, 1365.7773, 1366.3109, 1366.6681, 1366.6328,
    1366.3828, 1366.2767, 1365.9199, 1365.7484, 1365.6963, 1365.6976, 1365.7341, 1365.9178,
    1366.1143, 1366.1644, 1366.2476, 1366.2426, 1365.9580, 1366.0525, 1365.7991, 1365.7271,
    1365.5345, 1365.6453, 1365.8331, 1366.2747, 1366.6348, 1366.6482, 1366.6951, 1366.2859,
    1366.1992, 1365.8103, 1365.6416, 1365.6379, 1365.7899, 1366.0826, 1366.6479, 1366.5533,
    1366.4457, 1366.3021, 1366.0286, 1365.7971, 1365.6996};
constexpr std::array<double, 13> kTsiCycle1996 = {1365.6121, 1365.7399, 1366.1021, 1366.3851, 1366.6836,
                                                  1366.6022, 1366.6807, 1366.2300, 1366.0480, 1365.8545,
                                                  1365.8107, 1365.7240, 1365.6918};
constexpr int kTsiYears = 45 + 3 * 13;  // 1951.5 .. 2034.5

double tsi_table(int i) {  // W/m^2 at mid-year kTsiFirstYear + i
  const double raw = i < 45 ? kTsi1951To1995[static_cast<size_t>(i)] : kTsiCycle1996[static_cast<size_t>((i - 45) % 13)];
  return kTsiScale * raw;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct CivilDate {
  int64_t year;
  int month, day;  // 1-based
};

// Proleptic Gregorian date of a day count since 1970-01-01: shift to a calendar that starts
// on March 1 of year 0, so that the leap day ends each 4-, 100- and 400-year cycle.
CivilDate civil_from_days(int64_t days) {
  const int64_t shifted = days + 719468;  // days from 0000-03-01 to 1970-01-01
  const int64_t era = floor_div(shifted, 146097);
  const int64_t day_of_era = shifted - era * 146097;                                          // [0, 146096]
  const int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;  // [0, 399]
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);  // from March 1
  const int64_t month_from_march = (5 * day_of_year + 2) / 153;                                // [0, 11]
  CivilDate date;
  date.day = static_cast<int>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  date.month = static_cast<int>(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
  date.year = year_of_era + era * 400 + (date.month <= 2 ? 1 : 0);
  return date;
}

bool is_leap_year(int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int day_of_year(const CivilDate& date) {  // 1-based
  static constexpr std::array<int, 12> kDaysBefore = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  return kDaysBefore[static_cast<size_t>(date.month - 1)] + date.day + (date.month > 2 && is_leap_year(date.year) ? 1 : 0);
}

// What the flux at one sample time needs, independent of the grid point.
struct SunPosition {
  double sin_declination, cos_declination;
  double cos_hour_angle_at_greenwich, sin_hour_angle_at_greenwich;
  double distance_factor;  // (1 AU / Earth-Sun distance)^2
};

// ECMWF's empirical orbital series (IFS/GEM fctast) in Julian years since J2000.
SunPosition sun_position(double days_since_j2000) {
  const double theta = days_since_j2000 / kJulianYearDays;
  const double rotational_phase = days_since_j2000 - std::floor(days_since_j2000);  // 0 at 12:00
  const double rel = 1.7535 + 6.283076 * theta;   // mean anomaly-like angle
  const double rem = 6.240041 + 6.283020 * theta;
  const double rlls = 4.8951 + 6.283076 * theta;  // mean longitude
  const double ecliptic_longitude = 4.8952 + 6.283320 * theta - 0.0075 * std::sin(rel) - 0.0326 * std::cos(rel) -
                                    0.0003 * std::sin(2.0 * rel) + 0.0002 * std::cos(2.0 * rel);
  const double obliquity = 0.409093;  // radians, 23.4393 degrees
  const double equation_of_time_s = 591.8 * std::sin(2.0 * rlls) - 459.4 * std::sin(rem) +
                                    39.5 * std::sin(rem) * std::cos(2.0 * rlls) - 12.7 * std::sin(4.0 * rlls) -
                                    4.8 * std::sin(2.0 * rem);
  const double distance_au = 1.0001 - 0.0163 * std::sin(rel) + 0.0037 * std::cos(rel);
  SunPosition sun;
  sun.sin_declination = std::sin(obliquity) * std::sin(ecliptic_longitude);
  sun.cos_declination = std::sqrt(1.0 - sun.sin_declination * sun.sin_declination);
  const double hour_angle = 2.0 * kPi * (rotational_phase + equation_of_time_s / kSecondsPerDay);
  sun.cos_hour_angle_at_greenwich = std::cos(hour_angle);
  sun.sin_hour_angle_at_greenwich = std::sin(hour_angle);
  sun.distance_factor = 1.0 / (distance_au * distance_au);
  return sun;
}

}  // namespace

double j2000_days(int64_t seconds_since_epoch) {
  const int64_t days = floor_div(seconds_since_epoch, 86400);
  const int64_t second_of_day = seconds_since_epoch - days * 86400;
  const int64_t hour = second_of_day / 3600, minute = second_of_day / 60 % 60, second = second_of_day % 60;
  // As pandas: the Julian date of midnight (exact in f64) plus the hours as a fraction of a day.
  const double julian_date = (static_cast<double>(days) + kUnixEpochJulianDate) +
                             (static_cast<double>(hour) + static_cast<double>(minute) / 60.0 +
                              static_cast<double>(second) / 3600.0) /
                                 24.0;
  return julian_date - kJ2000JulianDate;
}

double era5_total_solar_irradiance(int64_t seconds_since_epoch) {
  const int64_t days = floor_div(seconds_since_epoch, 86400);
  const CivilDate date = civil_from_days(days);
  const double day_fraction = static_cast<double>(seconds_since_epoch - days * 86400) / kSecondsPerDay;
  const double year_length = is_leap_year(date.year) ? 366.0 : 365.0;
  const double fractional_year =
      static_cast<double>(date.year) + (static_cast<double>(day_of_year(date) - 1) + day_fraction) / year_length;
  if (fractional_year <= kTsiFirstYear) return tsi_table(0);
  if (fractional_year >= kTsiFirstYear + (kTsiYears - 1)) return tsi_table(kTsiYears - 1);
  const int i = static_cast<int>(std::floor(fractional_year - kTsiFirstYear));
  const double slope = tsi_table(i + 1) - tsi_table(i);
  return slope * (fractional_year - (kTsiFirstYear + i)) + tsi_table(i);
}

std::vector<double> toa_incident_solar_radiation(const std::vector<int64_t>& seconds_since_epoch,
                                                 const std::vector<double>& lat_deg,
                                                 const std::vector<double>& lon_deg,
                                                 const SolarRadiationOptions& options) {
  const int64_t bins = options.num_integration_bins;
  if (options.integration_period_s <= 0)
    throw std::invalid_argument("toa_incident_solar_radiation: the integration period must be positive, got " +
                                std::to_string(options.integration_period_s) + " s");
  const int64_t period_ns = options.integration_period_s * 1000000000LL;
  if (bins < 1 || period_ns % bins != 0)
    throw std::invalid_argument("toa_incident_solar_radiation: " + std::to_string(bins) +
                                " integration bins do not divide the period of " +
                                std::to_string(options.integration_period_s) + " s into whole nanoseconds");
  const int64_t step_ns = period_ns / bins;
  // Sample offsets in days before the end time, as pandas' timedelta_range / 1 day gives them.
  std::vector<double> offsets_days(static_cast<size_t>(bins + 1));
  for (int64_t k = 0; k <= bins; ++k)
    offsets_days[static_cast<size_t>(k)] = static_cast<double>(-period_ns + k * step_ns) / (kSecondsPerDay * 1e9);

  const size_t n_lat = lat_deg.size(), n_lon = lon_deg.size();
  std::vector<double> sin_lat(n_lat), cos_lat(n_lat), sin_lon(n_lon), cos_lon(n_lon);
  for (size_t i = 0; i < n_lat; ++i) {
    sin_lat[i] = std::sin(lat_deg[i] * kPi / 180.0);
    cos_lat[i] = std::cos(lat_deg[i] * kPi / 180.0);
  }
  for (size_t j = 0; j < n_lon; ++j) {
    sin_lon[j] = std::sin(lon_deg[j] * kPi / 180.0);
    cos_lon[j] = std::cos(lon_deg[j] * kPi / 180.0);
  }

  const double dx_s = static_cast<double>(step_ns) / 1e9;
  std::vector<double> out(seconds_since_epoch.size() * n_lat * n_lon, 0.0);
  std::vector<SunPosition> sun(offsets_days.size());
  for (size_t t = 0; t < seconds_since_epoch.size(); ++t) {
    const double end_days = j2000_days(seconds_since_epoch[t]);
    const double tsi = era5_total_solar_irradiance(seconds_since_epoch[t]);
    for (size_t k = 0; k < sun.size(); ++k) {
      double days = end_days + offsets_days[k];
      if (options.time == SolarTime::deepmind_f32)  // f32(f32(end) + f32(offset)), as jax without x64
        days = static_cast<double>(static_cast<float>(end_days) + static_cast<float>(offsets_days[k]));
      sun[k] = sun_position(days);
    }
    double* out_t = out.data() + t * n_lat * n_lon;
    for (size_t i = 0; i < n_lat; ++i) {
      for (size_t j = 0; j < n_lon; ++j) {
        double integral = 0.0;  // trapezoid: dx * (f_0 / 2 + f_1 + ... + f_{N-1} + f_N / 2)
        for (size_t k = 0; k < sun.size(); ++k) {
          const SunPosition& s = sun[k];
          const double cos_hour_angle =
              s.cos_hour_angle_at_greenwich * cos_lon[j] - s.sin_hour_angle_at_greenwich * sin_lon[j];
          const double sin_altitude = cos_lat[i] * s.cos_declination * cos_hour_angle + sin_lat[i] * s.sin_declination;
          const double flux = s.distance_factor * std::max(sin_altitude, 0.0);
          integral += (k == 0 || k + 1 == sun.size()) ? 0.5 * flux : flux;
        }
        out_t[i * n_lon + j] = tsi * integral * dx_s;
      }
    }
  }
  return out;
}

float year_progress(int64_t seconds_since_epoch) {
  const double years = static_cast<double>(seconds_since_epoch) / kSecondsPerDay / 365.24219;
  return static_cast<float>(years - std::floor(years));
}

float day_progress(int64_t seconds_since_epoch, double lon_deg) {
  const int64_t second_of_day = seconds_since_epoch - floor_div(seconds_since_epoch, 86400) * 86400;
  const double progress =
      static_cast<double>(second_of_day) / kSecondsPerDay + lon_deg * (kPi / 180.0) / (2.0 * kPi);
  return static_cast<float>(progress - std::floor(progress));
}

ProgressFeatures progress_features(float progress) {
  const float phase = progress * static_cast<float>(2.0 * kPi);
  return {static_cast<float>(std::sin(static_cast<double>(phase))),
          static_cast<float>(std::cos(static_cast<double>(phase)))};
}

}  // namespace gc::data
