// test_swe_dataset.cpp: the SWE trajectory data set and its cache: determinism
// (seed and thread count), layout and physical sanity of the channels, the
// 6-hour change figures of SWE.md, the cache round trip and the detection of
// truncated and corrupted cache files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tools/data/swe_dataset.h"
#include "tools/data/swe_transform.h"

namespace gc::data {
namespace {

SweDatasetConfig small_config() {
  SweDatasetConfig c;
  c.train_trajectories = 2;
  c.validation_trajectories = 1;
  c.test_trajectories = 2;
  c.frames_per_trajectory = 3;
  c.spinup_days = 0.5;
  c.seed = 99;
  return c;
}

// small_config() with training trajectories only.
SweDatasetConfig training_only_config(int trajectories, int frames_per_trajectory, double spinup_days) {
  SweDatasetConfig c = small_config();
  c.train_trajectories = trajectories;
  c.validation_trajectories = c.test_trajectories = 0;
  c.frames_per_trajectory = frames_per_trajectory;
  c.spinup_days = spinup_days;
  return c;
}

bool same_bytes(const SweDataset& a, const SweDataset& b) {
  return a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

// A fresh folder per test, removed afterwards.
class SweCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gc_swe_cache_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

std::string expect_runtime_error(const std::string& path) {
  try {
    load_swe_dataset(path);
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "message must name the file: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "loading " << path << " did not throw";
  return "";
}

TEST(SweDataset, LayoutSplitsAndPhysicalRanges) {
  const SweDataset d = generate_swe_dataset(small_config(), 2, false);
  ASSERT_EQ(d.nlat, 32);
  ASSERT_EQ(d.nlon, 64);
  EXPECT_EQ(d.values.size(), size_t{5} * 3 * 32 * 64 * 3);
  EXPECT_DOUBLE_EQ(d.time_step_s, 1800.0);
  EXPECT_EQ(d.first_trajectory(SweSplit::validation), 2);
  EXPECT_EQ(d.first_trajectory(SweSplit::test), 3);
  EXPECT_EQ(d.split_trajectories(SweSplit::test), 2);
  EXPECT_GT(d.latitudes_deg.front(), d.latitudes_deg.back());
  EXPECT_STREQ(swe_channel_name(0), "h");
  EXPECT_STREQ(swe_channel_unit(2), "m/s");
  EXPECT_EQ(d.frame(1, 2), d.values.data() + (1 * 3 + 2) * d.frame_elements());
  EXPECT_THROW(d.frame(5, 0), std::out_of_range);
  for (int t = 0; t < d.trajectories(); ++t)
    for (int f = 0; f < d.frames(); ++f) {
      const float* frame = d.frame(t, f);
      // Mass is conserved: the Gauss-weighted mean height is the mean depth.
      double mean_height = 0.0, max_wind = 0.0;
      for (int j = 0; j < d.nlat; ++j)
        for (int k = 0; k < d.nlon; ++k) {
          const float* p = frame + (static_cast<size_t>(j) * d.nlon + k) * kSweChannels;
          mean_height += d.gauss_weights[static_cast<size_t>(j)] * p[0] / (2.0 * d.nlon);
          max_wind = std::max(max_wind, std::hypot(double(p[1]), double(p[2])));
          ASSERT_TRUE(p[0] > 5000.0f && p[0] < 15000.0f) << "h = " << p[0];
        }
      EXPECT_NEAR(mean_height, 1e4, 1e-2);
      EXPECT_GT(max_wind, 5.0);
      EXPECT_LT(max_wind, 150.0);
    }
}

TEST(SweDataset, DeterministicAcrossRunsAndThreadCounts) {
  const SweDatasetConfig config = small_config();
  const SweDataset one_thread = generate_swe_dataset(config, 1, false);
  const SweDataset two_threads = generate_swe_dataset(config, 2, false);
  EXPECT_TRUE(same_bytes(one_thread, two_threads));
  EXPECT_TRUE(same_bytes(one_thread, generate_swe_dataset(config, 2, false)));
  SweDatasetConfig other = config;
  other.seed = 100;
  EXPECT_FALSE(same_bytes(one_thread, generate_swe_dataset(other, 2, false)));
  // Trajectories differ from each other.
  EXPECT_NE(std::memcmp(one_thread.frame(0, 0), one_thread.frame(1, 0), one_thread.frame_elements() * 4), 0);
  // A trajectory's bytes depend only on (seed, index): growing the test split keeps the others.
  SweDatasetConfig more = config;
  more.test_trajectories = 3;
  const SweDataset bigger = generate_swe_dataset(more, 2, false);
  EXPECT_EQ(std::memcmp(bigger.values.data(), one_thread.values.data(), one_thread.values.size() * 4), 0);
}

TEST(SweDataset, SixHourChangeOfHeightAndVorticity) {
  // SWE.md: a 6-hour step changes Phi' by ~30% and zeta by ~50% of their rms;
  // persistence must be a meaningful but beatable baseline.
  const SweDatasetConfig config = training_only_config(4, 5, 2.0);
  const SweDataset d = generate_swe_dataset(config, 2, false);
  const SphericalTransform tr(config.truncation);
  const size_t points = tr.grid_size();
  auto fields = [&](int t, int f, std::vector<double>& height_anomaly, std::vector<Complex>& vorticity) {
    const float* frame = d.frame(t, f);
    std::vector<double> u_cos(points), v_cos(points);
    height_anomaly.resize(points);
    double mean = 0.0;
    for (size_t i = 0; i < points; ++i) {
      const double mu = tr.mu()[i / tr.nlon()];
      height_anomaly[i] = frame[i * kSweChannels];
      mean += tr.gauss_weights()[i / tr.nlon()] * height_anomaly[i] / (2.0 * tr.nlon());
      u_cos[i] = frame[i * kSweChannels + 1] * std::sqrt(1 - mu * mu);
      v_cos[i] = frame[i * kSweChannels + 2] * std::sqrt(1 - mu * mu);
    }
    for (double& h : height_anomaly) h -= mean;
    std::vector<Complex> divergence(static_cast<size_t>(tr.num_coeffs()));
    vorticity.resize(static_cast<size_t>(tr.num_coeffs()));
    tr.vorticity_divergence_from_uv(u_cos.data(), v_cos.data(), vorticity.data(), divergence.data(), 6.37122e6);
  };
  auto weighted_ms = [&](const std::vector<double>& x) {
    double s = 0.0;
    for (size_t i = 0; i < points; ++i) s += tr.gauss_weights()[i / tr.nlon()] * x[i] * x[i] / (2.0 * tr.nlon());
    return s;
  };
  double change_height = 0, rms_height = 0, change_vorticity = 0, rms_vorticity = 0;
  for (int t = 0; t < d.trajectories(); ++t)
    for (int f = 0; f + 1 < d.frames(); ++f) {
      std::vector<double> h0, h1;
      std::vector<Complex> z0, z1;
      fields(t, f, h0, z0);
      fields(t, f + 1, h1, z1);
      std::vector<double> dh(points);
      std::vector<Complex> dz(z0.size());
      for (size_t i = 0; i < points; ++i) dh[i] = h1[i] - h0[i];
      for (size_t i = 0; i < dz.size(); ++i) dz[i] = z1[i] - z0[i];
      change_height += weighted_ms(dh);
      rms_height += weighted_ms(h0);
      change_vorticity += tr.mean_square(dz.data());
      rms_vorticity += tr.mean_square(z0.data());
    }
  const double height_ratio = std::sqrt(change_height / rms_height);
  const double vorticity_ratio = std::sqrt(change_vorticity / rms_vorticity);
  std::printf("[ 6-hour change / rms: Phi' %.2f, zeta %.2f; rms zeta %.2e 1/s ]\n", height_ratio, vorticity_ratio,
              std::sqrt(rms_vorticity / (d.trajectories() * (d.frames() - 1))));
  EXPECT_GT(height_ratio, 0.10);
  EXPECT_LT(height_ratio, 0.80);
  EXPECT_GT(vorticity_ratio, 0.10);
  EXPECT_LT(vorticity_ratio, 0.80);
}

TEST(SweDataset, ConfigValidation) {
  SweDatasetConfig c = small_config();
  c.frames_per_trajectory = 0;
  EXPECT_THROW(generate_swe_dataset(c, 1, false), std::invalid_argument);
  c = small_config();
  c.train_trajectories = c.validation_trajectories = c.test_trajectories = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = small_config();
  c.frame_interval_hours = -6;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = small_config();
  c.truncation = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

TEST(SweDataset, CacheNameFollowsEverySetting) {
  const SweDatasetConfig base = small_config();
  const std::string name = swe_cache_file_name(base);
  EXPECT_EQ(name.rfind("swe_T21_", 0), 0u) << name;
  EXPECT_EQ(name, swe_cache_file_name(small_config()));
  SweDatasetConfig c = base;
  c.seed += 1;
  EXPECT_NE(swe_cache_file_name(c), name);
  c = base;
  c.spinup_days += 0.25;
  EXPECT_NE(swe_cache_file_name(c), name);
  c = base;
  c.hyperdiffusion = false;
  EXPECT_NE(swe_cache_file_name(c), name);
  c = base;
  c.validation_trajectories += 1;
  EXPECT_NE(swe_cache_file_name(c), name);
}

TEST_F(SweCache, RoundTripAndReuse) {
  const SweDatasetConfig config = small_config();
  bool from_cache = true;
  const SweDataset generated = load_or_generate_swe_dataset(config, dir_.string(), 2, false, &from_cache);
  EXPECT_FALSE(from_cache);
  const std::filesystem::path file = dir_ / swe_cache_file_name(config);
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(std::filesystem::file_size(file), 112 + generated.values.size() * 4 + 8);
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) entries += entry.is_regular_file();
  EXPECT_EQ(entries, 1u) << "no temporary file left behind";

  const SweDataset loaded = load_or_generate_swe_dataset(config, dir_.string(), 2, false, &from_cache);
  EXPECT_TRUE(from_cache);
  EXPECT_TRUE(same_bytes(loaded, generated));
  EXPECT_EQ(swe_config_hash(loaded.config), swe_config_hash(config));
  EXPECT_EQ(loaded.latitudes_deg, generated.latitudes_deg);
  EXPECT_EQ(loaded.gauss_weights, generated.gauss_weights);
  EXPECT_EQ(loaded.time_step_s, generated.time_step_s);
}

TEST_F(SweCache, TruncatedAndCorruptedFilesAreDetected) {
  std::filesystem::create_directories(dir_);
  const SweDataset d = generate_swe_dataset(small_config(), 2, false);
  const std::string path = (dir_ / "data.bin").string();
  save_swe_dataset(d, path);
  ASSERT_TRUE(same_bytes(load_swe_dataset(path), d));
  const auto size = std::filesystem::file_size(path);
  std::vector<char> original(size);
  std::ifstream(path, std::ios::binary).read(original.data(), static_cast<std::streamsize>(size));
  auto write = [&](const std::vector<char>& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };

  std::vector<char> bytes(original.begin(), original.begin() + static_cast<long>(size / 2));
  write(bytes);
  EXPECT_NE(expect_runtime_error(path).find("truncated"), std::string::npos);
  write(std::vector<char>(original.begin(), original.begin() + 50));
  EXPECT_NE(expect_runtime_error(path).find("truncated"), std::string::npos);
  write({});
  EXPECT_NE(expect_runtime_error(path).find("truncated"), std::string::npos);

  bytes = original;
  bytes[size / 2] ^= 0x10;  // one bit of one value
  write(bytes);
  EXPECT_NE(expect_runtime_error(path).find("checksum"), std::string::npos);

  bytes = original;
  bytes[size - 1] ^= 0x01;  // the checksum itself
  write(bytes);
  EXPECT_NE(expect_runtime_error(path).find("checksum"), std::string::npos);

  bytes = original;
  bytes[0] = 'X';
  write(bytes);
  EXPECT_NE(expect_runtime_error(path).find("magic"), std::string::npos);

  bytes = original;
  bytes[40] ^= 0x7f;  // a header count: must be caught before any allocation from it
  write(bytes);
  expect_runtime_error(path);

  bytes = original;
  bytes.push_back(0);
  write(bytes);
  EXPECT_NE(expect_runtime_error(path).find("trailing"), std::string::npos);

  EXPECT_NE(expect_runtime_error((dir_ / "missing.bin").string()).find("cannot open"), std::string::npos);
}

// Header settings that validate() once let through to undefined behaviour (found
// by tests/fuzz/fuzz_swe_dataset): trajectory counts whose sum overflows int, and
// a frame interval whose step count overflows int. Both must be a clear error.
TEST_F(SweCache, HeaderCountsAndIntervalBeyondIntAreCorruption) {
  std::filesystem::create_directories(dir_);
  SweDatasetConfig c = training_only_config(1, 1, 0.0);
  c.truncation = 1;
  const std::string path = (dir_ / "data.bin").string();
  save_swe_dataset(generate_swe_dataset(c, 1, false), path);
  std::vector<char> original(std::filesystem::file_size(path));
  std::ifstream(path, std::ios::binary).read(original.data(), static_cast<std::streamsize>(original.size()));
  auto write_with = [&](size_t offset, const void* value, size_t bytes) {
    std::vector<char> changed = original;
    std::memcpy(changed.data() + offset, value, bytes);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(changed.data(), static_cast<std::streamsize>(changed.size()));
  };
  const uint32_t near_int_max[2] = {0x7fffff00u, 0x7fffff00u};  // train, validation trajectories
  write_with(36, near_int_max, sizeof(near_int_max));
  EXPECT_NE(expect_runtime_error(path).find("corrupted header"), std::string::npos);
  const double frame_interval_hours = 1e30;
  write_with(72, &frame_interval_hours, sizeof(frame_interval_hours));
  EXPECT_NE(expect_runtime_error(path).find("corrupted header"), std::string::npos);

  c.train_trajectories = c.validation_trajectories = 0x7fffff00;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = small_config();
  c.frame_interval_hours = 1e30;
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

TEST_F(SweCache, CorruptedCacheIsRegeneratedWithAWarning) {
  const SweDatasetConfig config = small_config();
  const SweDataset generated = load_or_generate_swe_dataset(config, dir_.string(), 2, false);
  const std::filesystem::path file = dir_ / swe_cache_file_name(config);
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 100);
  bool from_cache = true;
  ::testing::internal::CaptureStderr();
  const SweDataset again = load_or_generate_swe_dataset(config, dir_.string(), 2, false, &from_cache);
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(from_cache);
  EXPECT_NE(warning.find(file.string()), std::string::npos) << warning;
  EXPECT_NE(warning.find("truncated"), std::string::npos) << warning;
  EXPECT_TRUE(same_bytes(again, generated));
  EXPECT_TRUE(same_bytes(load_swe_dataset(file.string()), generated)) << "the file is whole again";
}

TEST(SweDataset, ProgressLinesAboutEveryTenPercent) {
  const SweDatasetConfig config = training_only_config(20, 1, 0.0);
  ::testing::internal::CaptureStderr();
  generate_swe_dataset(config, 2, true);
  const std::string log = ::testing::internal::GetCapturedStderr();
  size_t lines = 0;
  for (char c : log) lines += c == '\n';
  EXPECT_EQ(lines, 10u) << log;
  EXPECT_NE(log.find("20/20 trajectories"), std::string::npos) << log;
}

}  // namespace
}  // namespace gc::data
