// weather_dataset.h: gc's weather data format (docs/DATA.md), the reader of what
// tools/era5/convert.py writes from ERA5 / WeatherBench2, and its prefetcher.
//
// A data set is a folder: dataset.json (variables with units, pressure levels,
// latitudes north to south, longitudes from 0, regular 6-hourly times, the chunk
// files), chunk-NNNNN.bin (a 64-byte header, then times x lat x lon x channels
// values, f32 or bf16 little-endian; channels are the variables in the
// description's order, the levels of a variable inner), stats.npz (DeepMind's
// statistics layout: mean/<var>, stddev/<var>, diffs_stddev/<var>, f32 [levels]
// or []) and static.npz (<var> f32 [lat, lon]).
//
// Not obvious: a frame is read with one pread of its bytes at a computed offset,
// never by reading or mapping a whole chunk, so a data set far larger than host
// memory costs only the frames in flight. Every count and offset in the
// description and the chunk headers is checked against the files when the data
// set is opened (each chunk's header must say exactly its times, grid and
// channels, and its size must be header + values), so a frame read can only
// fail on an I/O error. Reads are thread-safe (pread on descriptors opened once).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace gc::data {

// A data set that cannot be read: the message starts with "weather data <dir>: ".
class WeatherDataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int64_t kWeatherStepSeconds = 6 * 3600;
inline constexpr int64_t kWeatherChunkHeaderBytes = 64;

struct WeatherVariable {
  std::string name, units;
  bool has_levels = false;   // one channel per pressure level, else one
  std::string role;          // "state" (input and target), "target" (target only), "forcing"
  int64_t first_channel = 0;
  int64_t channels = 1;
};

struct WeatherStatic {
  std::string name, units;
};

struct WeatherFiles;  // the open chunk descriptors, shared by copies of a data set

struct WeatherDataset {
  std::string dir;
  bool bf16 = false;                  // values on disk: bf16 (else f32)
  std::vector<double> latitudes_deg;  // [n_lat] north to south
  std::vector<double> longitudes_deg; // [n_lon] 0, 360/n, ...
  std::vector<int> levels_hpa;        // [levels] ascending
  int64_t start_seconds = 0;          // first time, seconds since 1970-01-01 UTC
  int64_t times = 0;                  // 6-hourly from start_seconds
  std::vector<WeatherVariable> variables;
  std::vector<WeatherStatic> statics;
  int64_t channels = 0;
  int64_t chunk_times = 0;
  std::vector<std::string> chunk_files;  // paths
  std::string statistics_path, static_path;
  std::shared_ptr<WeatherFiles> files;

  int64_t n_lat() const { return static_cast<int64_t>(latitudes_deg.size()); }
  int64_t n_lon() const { return static_cast<int64_t>(longitudes_deg.size()); }
  int64_t nodes() const { return n_lat() * n_lon(); }
  int64_t frame_values() const { return nodes() * channels; }
  int64_t time_seconds(int64_t t) const { return start_seconds + t * kWeatherStepSeconds; }
  // The time index of a moment (seconds since 1970), or -1 when it is not one of the times.
  int64_t time_index(int64_t seconds) const;
  const WeatherVariable* find(const std::string& name) const;
  // The channel of a variable at a level (level ignored for surface variables); -1 if absent.
  int64_t channel_of(const std::string& name, int level_hpa = 0) const;
  // "geopotential@500", "2m_temperature": one name per channel.
  std::vector<std::string> channel_names() const;

  // Time t into out [n_lat][n_lon][channels] as f32 (bf16 widened exactly).
  // Throws WeatherDataError on an I/O error.
  void read_frame(int64_t t, float* out) const;
};

// Opens and validates DIR (dataset.json, every chunk's header and size). Throws
// WeatherDataError naming the folder and the problem: a folder without
// dataset.json is named as an unfinished conversion.
WeatherDataset open_weather_dataset(const std::string& dir);
// The same from a description's text; chunk paths are relative to `dir`.
WeatherDataset parse_weather_description(const std::string& text, const std::string& dir);

// DeepMind's statistics layout, per variable one value per level (one for others).
struct WeatherStatistics {
  std::map<std::string, std::vector<float>> mean, stddev, diffs_stddev;
};
// Reads `path` (stats.npz by default): WeatherDataError naming the file and the
// first variable of `required` without its three entries of the right length
// (levels for variables with levels, 1 otherwise), or with a stddev <= 0.
WeatherStatistics load_weather_statistics(const WeatherDataset& data, const std::vector<std::string>& required,
                                          const std::string& path = "");
// The static fields, [n_lat * n_lon] each, in the data's row order.
std::map<std::string, std::vector<float>> load_weather_static(const WeatherDataset& data);

// Reads ahead, in a background thread, the frames that requests 0, 1, 2, ...
// will need (frames_of(i): the time indices of request i, the same count for
// every request), into a fixed ring of `slots` buffers: host memory is bounded by
// slots * (frames * frame_values + extra_floats) * 4 bytes, allocated once by the
// caller (pool). fill_extra(i, extra), when given, also runs in the thread and
// writes extra_floats values after request i's frames (the trainer's forcings).
// acquire(i) returns request i's slot (blocking until it is filled) and
// releases request i - 1's; requests must be acquired in order.
class WeatherPrefetcher {
 public:
  using FillExtra = std::function<void(int64_t request, float* extra)>;
  WeatherPrefetcher(const WeatherDataset& data, std::function<std::vector<int64_t>(int64_t request)> frames_of,
                    int64_t frames_per_request, int slots, float* pool, int64_t first_request = 0,
                    FillExtra fill_extra = {}, int64_t extra_floats = 0);
  ~WeatherPrefetcher();
  WeatherPrefetcher(const WeatherPrefetcher&) = delete;
  WeatherPrefetcher& operator=(const WeatherPrefetcher&) = delete;

  // [frames_per_request][frame_values] of request i, then its extra_floats, valid
  // until the next acquire.
  const float* acquire(int64_t request);
  static int64_t pool_floats(const WeatherDataset& data, int64_t frames_per_request, int slots, int64_t extra_floats = 0) {
    return (data.frame_values() * frames_per_request + extra_floats) * slots;
  }
  double wait_seconds() const { return wait_seconds_; }  // time acquire spent blocked
  int64_t waits() const { return waits_; }               // acquires that had to wait

 private:
  void run();

  const WeatherDataset& data_;
  std::function<std::vector<int64_t>(int64_t)> frames_of_;
  int64_t frames_per_request_;
  int slots_;
  float* pool_;
  FillExtra fill_extra_;
  int64_t extra_floats_;
  int64_t slot_floats_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t next_to_fill_;   // producer's next request
  int64_t consumer_at_;    // the request the consumer holds (its slot is busy)
  int64_t filled_up_to_;   // requests < this are ready
  bool stop_ = false;
  std::string error_;      // a read error of the thread, rethrown by acquire
  double wait_seconds_ = 0;
  int64_t waits_ = 0;
  std::thread thread_;
};

}  // namespace gc::data
