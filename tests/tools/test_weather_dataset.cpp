// test_weather_dataset.cpp: the reader of gc's weather format (tools/data/
// weather_dataset.h) on a converted data set: by default the committed fixture
// tests/data/weather/ (made by tests/era5/run.sh --fixture), or the folder in
// GC_WEATHER_DIR (tests/era5/run.sh points it at fresh f32 and bf16 conversions).
// Its expected.npz holds frames of the NetCDF source as numpy read them; the
// reader must return them exactly (f32) or within bf16's rounding, and the
// prefetcher must deliver what direct reads give. Damaged folders must fail
// with messages naming the file and the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "tools/data/weather_dataset.h"
#include "tools/io/npz.h"

namespace gc::data {
namespace {

std::string data_dir() {
  const char* dir = std::getenv("GC_WEATHER_DIR");
  return dir != nullptr && *dir ? dir : "tests/data/weather";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const WeatherDataError& e) {
    return e.what();
  }
  return "(no error)";
}

// A copy of the fixture that a test may damage.
std::string copy_of_fixture(const std::string& name) {
  const std::string dir = test::scratch_folder(name);
  std::filesystem::copy(data_dir(), dir, std::filesystem::copy_options::recursive |
                                             std::filesystem::copy_options::overwrite_existing);
  return dir;
}

TEST(WeatherDataset, DescriptionOfTheConversion) {
  const WeatherDataset d = open_weather_dataset(data_dir());
  EXPECT_EQ(d.n_lat(), 10);
  EXPECT_EQ(d.n_lon(), 18);
  EXPECT_DOUBLE_EQ(d.latitudes_deg.front(), 90.0);  // north to south, poles kept
  EXPECT_DOUBLE_EQ(d.latitudes_deg.back(), -90.0);
  EXPECT_DOUBLE_EQ(d.longitudes_deg[1], 20.0);
  EXPECT_EQ(d.levels_hpa, (std::vector<int>{500, 850, 1000}));
  EXPECT_EQ(d.time_seconds(0), 1451520000 + (d.times == 8 ? 0 : -4 * 86400));  // 2015-12-31T00 or -27T00
  ASSERT_NE(d.find("temperature"), nullptr);
  EXPECT_EQ(d.find("temperature")->units, "K");
  EXPECT_EQ(d.channel_of("geopotential", 850), 1);  // the first variable; levels inner
  ASSERT_NE(d.find("2m_temperature"), nullptr);
  const int64_t t0 = d.find("temperature")->first_channel;
  EXPECT_EQ(d.channel_of("temperature", 1000), t0 + 2);
  EXPECT_EQ(d.channel_of("2m_temperature"), d.find("2m_temperature")->first_channel);
  EXPECT_EQ(d.find("2m_temperature")->channels, 1);
  EXPECT_EQ(d.channel_of("temperature", 700), -1);
  EXPECT_EQ(d.channel_names()[static_cast<size_t>(t0)], "temperature@500");
  EXPECT_EQ(d.time_index(d.time_seconds(5)), 5);
  EXPECT_EQ(d.time_index(d.time_seconds(5) + 3600), -1);
  EXPECT_EQ(d.time_index(d.time_seconds(d.times)), -1);
}

TEST(WeatherDataset, FramesEqualTheSource) {
  const WeatherDataset d = open_weather_dataset(data_dir());
  const NpzFile expected = load_npz(data_dir() + "/expected.npz");
  const std::vector<double> times = expected.at("times").to_doubles();
  ASSERT_FALSE(times.empty());
  std::vector<float> frame(static_cast<size_t>(d.frame_values()));
  for (double t : times) {
    d.read_frame(static_cast<int64_t>(t), frame.data());
    const std::vector<double> want = expected.at("frame/" + std::to_string(static_cast<int64_t>(t))).to_doubles();
    ASSERT_EQ(want.size(), frame.size());
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (d.bf16) {
        ASSERT_LE(std::fabs(frame[i] - want[i]), std::ldexp(std::fabs(want[i]), -8)) << "time " << t << " value " << i;
      } else {
        ASSERT_EQ(frame[i], static_cast<float>(want[i])) << "time " << t << " value " << i;
      }
      worst = std::max(worst, std::fabs(frame[i] - want[i]));
    }
    if (!d.bf16) {
      EXPECT_EQ(worst, 0.0);
    }
  }
  const auto statics = load_weather_static(d);
  for (const WeatherStatic& s : d.statics) {
    const std::vector<double> want = expected.at("static/" + s.name).to_doubles();
    ASSERT_EQ(statics.at(s.name).size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(statics.at(s.name)[i], static_cast<float>(want[i]));
  }
}

TEST(WeatherDataset, StatisticsInDeepMindsLayout) {
  const WeatherDataset d = open_weather_dataset(data_dir());
  std::vector<std::string> names;
  for (const WeatherVariable& v : d.variables) names.push_back(v.name);
  for (const WeatherStatic& s : d.statics) names.push_back(s.name);
  names.push_back("year_progress_sin");
  names.push_back("day_progress_cos");
  const WeatherStatistics stats = load_weather_statistics(d, names);
  const NpzFile file = load_npz(d.statistics_path);
  EXPECT_EQ(stats.mean.at("temperature").size(), 3u);
  EXPECT_EQ(stats.stddev.at("2m_temperature").size(), 1u);
  for (size_t l = 0; l < 3; ++l)
    EXPECT_EQ(stats.diffs_stddev.at("geopotential")[l],
              static_cast<float>(file.at("diffs_stddev/geopotential").to_doubles()[l]));
  // Sanity of the synthetic pattern: mean temperature near 250 K + level term.
  EXPECT_NEAR(stats.mean.at("temperature")[0], 250.0 + 20.0 * 0.5, 20.0);
  EXPECT_GT(stats.stddev.at("temperature")[0], 0.0f);
  EXPECT_NE(error_of([&] { load_weather_statistics(d, {"specific_humidity"}); }).find("no mean/specific_humidity"),
            std::string::npos);
}

TEST(WeatherDataset, PrefetcherDeliversWhatDirectReadsGive) {
  const WeatherDataset d = open_weather_dataset(data_dir());
  const int64_t frames = 3;
  auto frames_of = [&](int64_t request) {
    return std::vector<int64_t>{request % d.times, (request * 7 + 3) % d.times, (request + 1) % d.times};
  };
  for (int slots : {2, 3, 5}) {
    std::vector<float> pool(static_cast<size_t>(WeatherPrefetcher::pool_floats(d, frames, slots)));
    WeatherPrefetcher prefetcher(d, frames_of, frames, slots, pool.data(), 4);
    std::vector<float> direct(static_cast<size_t>(d.frame_values()));
    for (int64_t r = 4; r < 30; ++r) {
      const float* got = prefetcher.acquire(r);
      const std::vector<int64_t> want = frames_of(r);
      for (int64_t f = 0; f < frames; ++f) {
        d.read_frame(want[static_cast<size_t>(f)], direct.data());
        for (int64_t i = 0; i < d.frame_values(); ++i)
          ASSERT_EQ(got[f * d.frame_values() + i], direct[static_cast<size_t>(i)]) << slots << " slots, request " << r;
      }
    }
    EXPECT_THROW(prefetcher.acquire(100), std::logic_error);  // out of order
  }
}

TEST(WeatherDataset, PrefetcherFillsTheExtraValuesOfEachRequest) {
  const WeatherDataset d = open_weather_dataset(data_dir());
  const int64_t extra = 7;
  std::vector<float> pool(static_cast<size_t>(WeatherPrefetcher::pool_floats(d, 2, 3, extra)));
  WeatherPrefetcher prefetcher(
      d, [&](int64_t r) { return std::vector<int64_t>{r % d.times, (r + 3) % d.times}; }, 2, 3, pool.data(), 0,
      [](int64_t r, float* out) {
        for (int64_t i = 0; i < 7; ++i) out[i] = static_cast<float>(r * 100 + i);
      },
      extra);
  std::vector<float> direct(static_cast<size_t>(d.frame_values()));
  for (int64_t r = 0; r < 12; ++r) {
    const float* slot = prefetcher.acquire(r);
    d.read_frame((r + 3) % d.times, direct.data());
    for (int64_t i = 0; i < d.frame_values(); ++i) ASSERT_EQ(slot[d.frame_values() + i], direct[static_cast<size_t>(i)]);
    for (int64_t i = 0; i < extra; ++i) ASSERT_EQ(slot[2 * d.frame_values() + i], static_cast<float>(r * 100 + i)) << r;
  }
}

TEST(WeatherDataset, PrefetcherReportsReadErrors) {
  const WeatherDataset d = open_weather_dataset(data_dir());
  std::vector<float> pool(static_cast<size_t>(WeatherPrefetcher::pool_floats(d, 1, 2)));
  WeatherPrefetcher prefetcher(
      d, [&](int64_t r) { return std::vector<int64_t>{r < 3 ? r : d.times + 5}; }, 1, 2, pool.data());
  for (int64_t r = 0; r < 3; ++r) EXPECT_NE(prefetcher.acquire(r), nullptr);
  const std::string message = error_of([&] { prefetcher.acquire(3); });
  EXPECT_NE(message.find("outside 0.."), std::string::npos) << message;
}

TEST(WeatherDataset, DamagedFoldersAreRefusedClearly) {
  {
    const std::string dir = copy_of_fixture("truncated");
    std::filesystem::resize_file(dir + "/chunk-00001.bin", std::filesystem::file_size(dir + "/chunk-00001.bin") - 4);
    const std::string m = error_of([&] { open_weather_dataset(dir); });
    EXPECT_NE(m.find("chunk-00001.bin"), std::string::npos) << m;
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  }
  {
    const std::string dir = copy_of_fixture("header");
    std::fstream f(dir + "/chunk-00002.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(16);
    f.put(1);  // first time index
    f.close();
    const std::string m = error_of([&] { open_weather_dataset(dir); });
    EXPECT_NE(m.find("does not match dataset.json"), std::string::npos) << m;
  }
  {
    const std::string dir = copy_of_fixture("unfinished");
    std::filesystem::remove(dir + "/dataset.json");
    std::ofstream(dir + "/conversion.json") << "{}";
    const std::string m = error_of([&] { open_weather_dataset(dir); });
    EXPECT_NE(m.find("the conversion has not finished"), std::string::npos) << m;
  }
  EXPECT_NE(error_of([] { open_weather_dataset("/nonexistent/weather"); }).find("no such folder"), std::string::npos);
}

TEST(WeatherDataset, DescriptionsAreValidated) {
  std::ifstream in("tests/data/weather/dataset.json");  // the fixture's own text, whatever GC_WEATHER_DIR says
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string good = buffer.str();
  EXPECT_NO_THROW(parse_weather_description(good, "d"));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  auto refused = [&](const std::string& text, const std::string& words) {
    const std::string m = error_of([&] { parse_weather_description(text, "d"); });
    EXPECT_NE(m.find(words), std::string::npos) << m;
    EXPECT_EQ(m.rfind("weather data d: ", 0), 0u) << m;
  };
  refused("{", "not JSON");
  refused(with("\"gc-weather\"", "\"netcdf\""), "not gc's weather format");
  refused(with("\"step_hours\": 6", "\"step_hours\": 1"), "6 hours");
  refused(with("\"dtype\": \"f32\"", "\"dtype\": \"f16\""), "f32 or bf16");
  refused(with("\"role\": \"state\"", "\"role\": \"other\""), "role");
  refused(with("\"chunk-00002.bin\"", "\"../chunk-00002.bin\""), "not a plain file name");
  refused(with("\"times\": 3", "\"times\": 4"), "chunk files for");
  refused(with("\"levels\": [\n  500,\n  850", "\"levels\": [\n  850,\n  500"), "ascending");
  refused(with("\"latitudes\": [\n   90.0,\n   70.0", "\"latitudes\": [\n   70.0,\n   90.0"), "north to south");
  refused(with("\"statistics\": \"stats.npz\"", "\"statistics\": 3"), "dataset.json");
}

}  // namespace
}  // namespace gc::data
