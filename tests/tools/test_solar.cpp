// test_solar.cpp: gc's TOA solar radiation and progress features against DeepMind's code:
// (1) f64 values of graphcast.solar_radiation at single points (tools/reference/
// solar_values.py, jax with x64), (2) the f32 forcings of DeepMind's own run in
// tests/data/deepmind (inputs.npz: 2 input times, forcings.npz: 3 target times, 19 x 36 grid).
//
// The fixture's .npz files are read by a small reader of numpy's stored (uncompressed) zip64
// archives, enough for little-endian f4/f8/i8 arrays in C order.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/data/solar.h"

namespace {

const char* const kFixture = "tests/data/deepmind";

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> values;  // converted from f4/f8/i8
};

uint64_t little_endian(const std::string& bytes, size_t at, int width) {
  if (at + static_cast<size_t>(width) > bytes.size()) throw std::runtime_error("npz: truncated");
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<size_t>(i)]);
  return v;
}

NpyArray parse_npy(const std::string& npy, const std::string& name) {
  if (npy.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error(name + ": not an .npy");
  const int major = static_cast<unsigned char>(npy[6]);
  const size_t header_len = static_cast<size_t>(little_endian(npy, 8, major == 1 ? 2 : 4));
  const size_t data_at = (major == 1 ? 10 : 12) + header_len;
  const std::string header = npy.substr(major == 1 ? 10 : 12, header_len);
  auto field = [&](const std::string& key) {
    const size_t at = header.find("'" + key + "':");
    if (at == std::string::npos) throw std::runtime_error(name + ": no " + key);
    return header.substr(at + key.size() + 3);
  };
  const std::string descr = field("descr").substr(field("descr").find('\'') + 1, 3);
  if (field("fortran_order").find("False") != 1) throw std::runtime_error(name + ": Fortran order");
  NpyArray array;
  std::string shape = field("shape");
  shape = shape.substr(shape.find('(') + 1, shape.find(')') - shape.find('(') - 1);
  std::stringstream dims(shape);
  for (std::string dim; std::getline(dims, dim, ',');)
    if (dim.find_first_not_of(' ') != std::string::npos) array.shape.push_back(std::stoll(dim));
  size_t count = 1;
  for (int64_t d : array.shape) count *= static_cast<size_t>(d);
  const int width = descr == "<f4" ? 4 : (descr == "<f8" || descr == "<i8") ? 8 : 0;
  if (width == 0) throw std::runtime_error(name + ": unsupported dtype " + descr);
  if (data_at + count * static_cast<size_t>(width) > npy.size()) throw std::runtime_error(name + ": truncated data");
  for (size_t i = 0; i < count; ++i) {
    const uint64_t bits = little_endian(npy, data_at + i * static_cast<size_t>(width), width);
    if (descr == "<f4") {
      float f;
      const uint32_t b32 = static_cast<uint32_t>(bits);
      std::memcpy(&f, &b32, 4);
      array.values.push_back(f);
    } else if (descr == "<f8") {
      double d;
      std::memcpy(&d, &bits, 8);
      array.values.push_back(d);
    } else {
      array.values.push_back(static_cast<double>(static_cast<int64_t>(bits)));
    }
  }
  return array;
}

// Every member of an .npz (zip of stored .npy, numpy writes zip64 sizes), by name without .npy.
std::map<std::string, NpyArray> read_npz(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path + " (run the tests from the repository root)");
  const std::string zip((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::map<std::string, NpyArray> members;
  size_t at = 0;
  while (at + 30 <= zip.size() && little_endian(zip, at, 4) == 0x04034b50) {
    if (little_endian(zip, at + 8, 2) != 0) throw std::runtime_error(path + ": compressed member");
    uint64_t size = little_endian(zip, at + 18, 4);
    const size_t name_len = static_cast<size_t>(little_endian(zip, at + 26, 2));
    const size_t extra_len = static_cast<size_t>(little_endian(zip, at + 28, 2));
    const std::string name = zip.substr(at + 30, name_len);
    for (size_t e = at + 30 + name_len; e + 4 <= at + 30 + name_len + extra_len;) {
      const size_t id = static_cast<size_t>(little_endian(zip, e, 2)), len = static_cast<size_t>(little_endian(zip, e + 2, 2));
      if (id == 1 && size == 0xffffffffu) size = little_endian(zip, e + 12, 8);  // zip64: uncompressed, compressed
      e += 4 + len;
    }
    const size_t data_at = at + 30 + name_len + extra_len;
    members[name.substr(0, name.size() - 4)] = parse_npy(zip.substr(data_at, static_cast<size_t>(size)), path + ":" + name);
    at = data_at + static_cast<size_t>(size);
  }
  if (members.empty()) throw std::runtime_error(path + ": no members");
  return members;
}

std::vector<int64_t> as_int64(const NpyArray& a) { return std::vector<int64_t>(a.values.begin(), a.values.end()); }

// One row of DeepMind's f64 result (tools/reference/solar_values.py at graphcast 08cf736,
// jax_enable_x64): {seconds since 1970, lat, lon, TOA J/m^2, days since J2000}.
struct PointValue {
  int64_t seconds;
  double lat, lon, joules_per_m2, j2000_days;
};
const PointValue kDeepMindF64[] = {
    {1451649600, 51.5, 0.0, 1313783.5702101258, 5844.0},                    // 2016-01-01T12:00:00
    {1451649600, -33.9, 18.4, 4907109.003145617, 5844.0},                   // 2016-01-01T12:00:00
    {1451671200, -89.0, 200.0, 1997096.5458836432, 5844.25},                // 2016-01-01T18:00:00
    {298792800, 89.0, 123.0, 1956141.4052562756, -7499.25},                 // 1979-06-21T06:00:00
    {298792800, 40.0, 100.0, 4537575.719895039, -7499.25},                  // 1979-06-21T06:00:00
    {-626020200, 10.0, 45.0, 4732135.4728339575, -18203.10416666651},       // 1950-03-01T09:30:00
    {1583017200, -20.0, 170.0, 3992829.747008844, 7364.458333333489},       // 2020-02-29T23:00:00
    {1584727200, 0.0, 300.0, 4608251.74066048, 7384.25},                    // 2020-03-20T18:00:00
    {1704063600, -75.0, 359.75, 813807.739408732, 8765.458333333489},       // 2023-12-31T23:00:00
    {2224767600, 60.0, 250.0, 2224314.6721470887, 14792.125},               // 2040-07-01T15:00:00
    {1451606400, 51.5, 0.0, 0.0, 5843.5},                                   // 2016-01-01T00:00:00
    {1451649600, 51.5, 305.0, 5095.946955223636, 5844.0},                   // sunrise within the hour
};

// The largest hourly TOA integral: 1361 W/m^2 * 1.034 (perihelion) * 3600 s.
constexpr double kMaxJoulesPerM2 = 5.07e6;

TEST(Solar, J2000DaysEqualPandas) {
  for (const PointValue& p : kDeepMindF64) EXPECT_EQ(gc::data::j2000_days(p.seconds), p.j2000_days) << p.seconds;
}

// f64 against DeepMind's x64 run: the same formulas in a different order (angle addition
// for the hour angle), so the results differ by f64 rounding of angles up to ~100 rad (1e-14
// rad) over 361 samples: bound 1e-12 of the maximum (5e-6 J/m^2); measured 2e-15.
TEST(Solar, ExactMatchesDeepMindF64) {
  gc::data::SolarRadiationOptions exact;
  exact.time = gc::data::SolarTime::exact;
  double worst = 0;
  for (const PointValue& p : kDeepMindF64) {
    const double got = gc::data::toa_incident_solar_radiation({p.seconds}, {p.lat}, {p.lon}, exact).at(0);
    EXPECT_NEAR(got, p.joules_per_m2, 1e-12 * kMaxJoulesPerM2) << p.seconds << " " << p.lat << " " << p.lon;
    worst = std::max(worst, std::fabs(got - p.joules_per_m2));
  }
  std::printf("[ measured ] f64 vs DeepMind x64: max |error| %.3g J/m^2 (%.3g of the max)\n", worst,
              worst / kMaxJoulesPerM2);
}

struct FixtureTimes {
  std::vector<int64_t> seconds;
  std::vector<double> lat, lon;
  std::map<std::string, std::vector<double>> values;  // [time, lat, lon] per forcing
};

std::vector<FixtureTimes> fixture_forcings() {
  std::vector<FixtureTimes> out;
  for (const char* file : {"inputs.npz", "forcings.npz"}) {
    auto npz = read_npz(std::string(kFixture) + "/" + file);
    FixtureTimes f;
    f.seconds = as_int64(npz.at("datetime"));
    f.lat = npz.at("lat").values;
    f.lon = npz.at("lon").values;
    for (const char* name : {"toa_incident_solar_radiation", "year_progress_sin", "year_progress_cos",
                             "day_progress_sin", "day_progress_cos"}) {
      const NpyArray& a = npz.at(name);
      EXPECT_EQ(a.shape, (std::vector<int64_t>{static_cast<int64_t>(f.seconds.size()),
                                               static_cast<int64_t>(f.lat.size()), static_cast<int64_t>(f.lon.size())}))
          << file << ":" << name;
      f.values[name] = a.values;
    }
    out.push_back(f);
  }
  return out;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// DeepMind's run is f32 throughout; with its sample times reproduced exactly, what remains
// is f32 rounding in DeepMind's chain: theta = t / 365.25 rounds to 6e-8 relative, i.e.
// ~1e-6 rad in the orbital angles (16 Julian years * 2 pi * 6e-8), which moves the declination
// by ~2.4e-6 and the flux by ~3e-6 of its peak; the hour angle rounds to ~4e-7 rad; the stored
// result to 2^-24. Bound: 3e-6 of the maximum (15 J/m^2); measured 4 J/m^2.
constexpr double kF32Tolerance = 3e-6 * kMaxJoulesPerM2;

TEST(Solar, DeepMindF32MatchesFixtureForcings) {
  double worst = 0, worst_exact = 0;
  gc::data::SolarRadiationOptions exact;
  exact.time = gc::data::SolarTime::exact;
  for (const FixtureTimes& f : fixture_forcings()) {
    const std::vector<double>& ref = f.values.at("toa_incident_solar_radiation");
    const auto got = gc::data::toa_incident_solar_radiation(f.seconds, f.lat, f.lon);
    worst = std::max(worst, max_abs_difference(got, ref));
    worst_exact = std::max(worst_exact,
                           max_abs_difference(gc::data::toa_incident_solar_radiation(f.seconds, f.lat, f.lon, exact), ref));
  }
  EXPECT_LE(worst, kF32Tolerance);
  // DeepMind's 42 s time lattice is visible: with f64 times the error is 36 J/m^2.
  EXPECT_GT(worst_exact, kF32Tolerance);
  std::printf("[ measured ] TOA vs DeepMind f32 fixture: max |error| %.4g J/m^2 (%.3g of the max); "
              "with f64 times %.4g J/m^2 (%.3g)\n",
              worst, worst / kMaxJoulesPerM2, worst_exact, worst_exact / kMaxJoulesPerM2);
}

// The progress features are f32 in DeepMind (numpy f32 sin/cos of an f32 phase); gc rounds
// the same phase and takes sin/cos in f64, so they differ by numpy's f32 sin/cos error:
// 2 f32 ulps of 1 (|value| <= 1).
TEST(Solar, ProgressFeaturesMatchFixture) {
  double worst = 0;
  for (const FixtureTimes& f : fixture_forcings()) {
    const size_t n_lat = f.lat.size(), n_lon = f.lon.size();
    for (size_t t = 0; t < f.seconds.size(); ++t) {
      const auto year = gc::data::progress_features(gc::data::year_progress(f.seconds[t]));
      for (size_t i = 0; i < n_lat; ++i) {
        for (size_t j = 0; j < n_lon; ++j) {
          const size_t at = (t * n_lat + i) * n_lon + j;
          const auto day = gc::data::progress_features(gc::data::day_progress(f.seconds[t], f.lon[j]));
          const double errors[] = {year.sin - f.values.at("year_progress_sin")[at],
                                   year.cos - f.values.at("year_progress_cos")[at],
                                   day.sin - f.values.at("day_progress_sin")[at],
                                   day.cos - f.values.at("day_progress_cos")[at]};
          for (double e : errors) worst = std::max(worst, std::fabs(e));
        }
      }
    }
  }
  EXPECT_LE(worst, 2 * FLT_EPSILON);
  std::printf("[ measured ] progress features vs DeepMind: max |error| %.3g\n", worst);
}

TEST(Solar, ProgressIsAFractionForAnyTime) {
  for (int64_t s : {int64_t{-626020200}, int64_t{0}, int64_t{1451606400}, int64_t{4102444800}}) {
    const float y = gc::data::year_progress(s);
    EXPECT_GE(y, 0.0f);
    EXPECT_LE(y, 1.0f);
    for (double lon : {0.0, 179.5, 359.75, -10.0}) {
      const float d = gc::data::day_progress(s, lon);
      EXPECT_GE(d, 0.0f);
      EXPECT_LE(d, 1.0f);
    }
  }
  // 06:00 UTC at 90 E is local noon: progress 0.5.
  EXPECT_FLOAT_EQ(gc::data::day_progress(1451628000, 90.0), 0.5f);
}

TEST(Solar, TotalSolarIrradianceIsHeldOutsideTheTable) {
  // Before 1951.5 and after 2034.5 np.interp holds the end values.
  EXPECT_EQ(gc::data::era5_total_solar_irradiance(-631152000), gc::data::era5_total_solar_irradiance(-599616000));
  EXPECT_EQ(gc::data::era5_total_solar_irradiance(2082758400 + 31536000),
            gc::data::era5_total_solar_irradiance(2240611200));
}

TEST(Solar, RejectsBadIntegrationOptions) {
  gc::data::SolarRadiationOptions bad;
  bad.num_integration_bins = 7;  // 3600 s is not a whole number of ns in 7 bins
  EXPECT_THROW(gc::data::toa_incident_solar_radiation({0}, {0.0}, {0.0}, bad), std::invalid_argument);
  bad.num_integration_bins = 0;
  EXPECT_THROW(gc::data::toa_incident_solar_radiation({0}, {0.0}, {0.0}, bad), std::invalid_argument);
  bad.num_integration_bins = 360;
  bad.integration_period_s = 0;
  EXPECT_THROW(gc::data::toa_incident_solar_radiation({0}, {0.0}, {0.0}, bad), std::invalid_argument);
}

}  // namespace
