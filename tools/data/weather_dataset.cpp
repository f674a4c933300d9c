// weather_dataset.cpp: the reader and prefetcher of weather_dataset.h.
#include "tools/data/weather_dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/dtype.h"
#include "tools/io/json.h"
#include "tools/io/npz.h"

namespace gc::data {

struct WeatherFiles {
  std::vector<int> descriptors;
  ~WeatherFiles() {
    for (int fd : descriptors)
      if (fd >= 0) ::close(fd);
  }
};

namespace {

constexpr char kMagic[8] = {'G', 'C', 'W', 'X', 'C', 'H', 'K', '1'};

[[noreturn]] void fail(const std::string& dir, const std::string& what) {
  throw WeatherDataError("weather data " + dir + ": " + what);
}

// A file name inside the folder: no separators, no parent, no hidden names.
bool plain_file_name(const std::string& name) {
  if (name.empty() || name.size() > 255 || name[0] == '.') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

int64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return static_cast<int64_t>(v);
}

uint32_t read_le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Reads exactly `bytes` at `offset`; false on a short read or an error.
bool pread_all(int fd, void* out, size_t bytes, int64_t offset) {
  auto* p = static_cast<unsigned char*>(out);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    bytes -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

}  // namespace

int64_t WeatherDataset::time_index(int64_t seconds) const {
  const int64_t delta = seconds - start_seconds;
  if (delta < 0 || delta % kWeatherStepSeconds != 0) return -1;
  const int64_t t = delta / kWeatherStepSeconds;
  return t < times ? t : -1;
}

const WeatherVariable* WeatherDataset::find(const std::string& name) const {
  for (const WeatherVariable& v : variables)
    if (v.name == name) return &v;
  return nullptr;
}

int64_t WeatherDataset::channel_of(const std::string& name, int level_hpa) const {
  const WeatherVariable* v = find(name);
  if (v == nullptr) return -1;
  if (!v->has_levels) return v->first_channel;
  for (size_t l = 0; l < levels_hpa.size(); ++l)
    if (levels_hpa[l] == level_hpa) return v->first_channel + static_cast<int64_t>(l);
  return -1;
}

std::vector<std::string> WeatherDataset::channel_names() const {
  std::vector<std::string> names;
  for (const WeatherVariable& v : variables) {
    if (!v.has_levels) {
      names.push_back(v.name);
      continue;
    }
    for (int level : levels_hpa) names.push_back(v.name + "@" + std::to_string(level));
  }
  return names;
}

void WeatherDataset::read_frame(int64_t t, float* out) const {
  if (t < 0 || t >= times) fail(dir, "time index " + std::to_string(t) + " outside 0.." + std::to_string(times - 1));
  const int64_t chunk = t / chunk_times, within = t % chunk_times;
  const int64_t item = bf16 ? 2 : 4;
  const int64_t bytes = frame_values() * item;
  const int64_t offset = kWeatherChunkHeaderBytes + within * bytes;
  const int fd = files->descriptors[static_cast<size_t>(chunk)];
  if (!bf16) {
    if (!pread_all(fd, out, static_cast<size_t>(bytes), offset))
      fail(dir, chunk_files[static_cast<size_t>(chunk)] + ": cannot read time " + std::to_string(t) + " (" +
                    std::strerror(errno) + ")");
    return;
  }
  // bf16: read into the upper half of `out`, then widen in place from the front
  // (element i's 4 bytes end at or before bf16 element i's, so nothing is
  // overwritten before it is read).
  const int64_t n = frame_values();
  auto* half = reinterpret_cast<uint16_t*>(out + n / 2 + (n % 2));
  static_assert(sizeof(float) == 2 * sizeof(uint16_t), "bf16 is half a float");
  if (!pread_all(fd, half, static_cast<size_t>(bytes), offset))
    fail(dir, chunk_files[static_cast<size_t>(chunk)] + ": cannot read time " + std::to_string(t));
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, half + i, 2);
    out[i] = bf16_to_f32(bits);
  }
}

WeatherDataset parse_weather_description(const std::string& text, const std::string& dir) {
  json::Value d;
  try {
    d = json::Value::parse(text);
  } catch (const std::exception& e) {
    fail(dir, std::string("dataset.json is not JSON: ") + e.what());
  }
  WeatherDataset data;
  data.dir = dir;
  try {
    if (!d.is_object()) fail(dir, "dataset.json is not an object");
    const json::Value* format = d.find("format");
    if (format == nullptr || !format->is_string() || format->as_string() != "gc-weather")
      fail(dir, "dataset.json is not gc's weather format (\"format\": \"gc-weather\")");
    if (d.at("version").as_int() != 1)
      fail(dir, "format version " + std::to_string(d.at("version").as_int()) + "; this gc reads version 1");
    const std::string dtype = d.at("dtype").as_string();
    if (dtype != "f32" && dtype != "bf16") fail(dir, "dtype '" + dtype + "': f32 or bf16");
    data.bf16 = dtype == "bf16";

    const json::Value& grid = d.at("grid");
    for (const json::Value& v : grid.at("latitudes").as_array()) data.latitudes_deg.push_back(v.as_double());
    for (const json::Value& v : grid.at("longitudes").as_array()) data.longitudes_deg.push_back(v.as_double());
    if (data.latitudes_deg.empty() || data.longitudes_deg.empty()) fail(dir, "the grid is empty");
    for (size_t i = 0; i < data.latitudes_deg.size(); ++i) {
      const double lat = data.latitudes_deg[i];
      if (!(lat >= -90.0 && lat <= 90.0)) fail(dir, "latitude " + std::to_string(i) + " is outside -90..90");
      if (i > 0 && !(lat < data.latitudes_deg[i - 1]))
        fail(dir, "latitudes must run north to south, strictly decreasing (latitude " + std::to_string(i) + ")");
    }
    const double n_lon = static_cast<double>(data.longitudes_deg.size());
    for (size_t j = 0; j < data.longitudes_deg.size(); ++j)
      if (!(std::fabs(data.longitudes_deg[j] - 360.0 * static_cast<double>(j) / n_lon) <= 1e-6))
        fail(dir, "longitude " + std::to_string(j) + " is not 360 * " + std::to_string(j) + " / " +
                      std::to_string(data.longitudes_deg.size()) + " (gc's grids run 0, 360/n, ...)");
    if (data.nodes() > (int64_t{1} << 31)) fail(dir, "the grid has more than 2^31 nodes");

    for (const json::Value& v : d.at("levels").as_array()) {
      const int64_t level = v.as_int();
      if (level <= 0 || level > 2000) fail(dir, "pressure level " + std::to_string(level) + " hPa is not in 1..2000");
      if (!data.levels_hpa.empty() && level <= data.levels_hpa.back()) fail(dir, "pressure levels must be ascending");
      data.levels_hpa.push_back(static_cast<int>(level));
    }

    const json::Value& time = d.at("time");
    data.start_seconds = time.at("start_seconds").as_int();
    if (time.at("step_hours").as_int() != 6) fail(dir, "the time step must be 6 hours");
    data.times = time.at("count").as_int();
    if (data.times < 1 || data.times > 100000000) fail(dir, "time count " + std::to_string(data.times) + " out of range");
    if (data.start_seconds % kWeatherStepSeconds != 0 || std::llabs(data.start_seconds) > (int64_t{1} << 40))
      fail(dir, "the first time is not at 00, 06, 12 or 18 UTC of a plausible date");

    std::set<std::string> names;
    for (const json::Value& v : d.at("variables").as_array()) {
      WeatherVariable var;
      var.name = v.at("name").as_string();
      var.units = v.at("units").as_string();
      var.has_levels = v.at("levels").as_bool();
      var.role = v.at("role").as_string();
      if (var.name.empty() || var.name.find('/') != std::string::npos || var.name.find('@') != std::string::npos)
        fail(dir, "variable name '" + var.name + "' is empty or holds '/' or '@'");
      if (!names.insert(var.name).second) fail(dir, "variable '" + var.name + "' appears twice");
      if (var.role != "state" && var.role != "target" && var.role != "forcing")
        fail(dir, "variable '" + var.name + "' has role '" + var.role + "': state, target or forcing");
      if (var.has_levels && data.levels_hpa.empty()) fail(dir, "variable '" + var.name + "' has levels but there are none");
      var.first_channel = data.channels;
      var.channels = var.has_levels ? static_cast<int64_t>(data.levels_hpa.size()) : 1;
      data.channels += var.channels;
      data.variables.push_back(var);
      if (data.variables.size() > 10000) fail(dir, "more than 10000 variables");
    }
    if (data.variables.empty()) fail(dir, "no variables");
    if (const json::Value* statics = d.find("static")) {
      for (const json::Value& v : statics->as_array()) {
        WeatherStatic s{v.at("name").as_string(), v.at("units").as_string()};
        if (s.name.empty() || !names.insert(s.name).second) fail(dir, "static field '" + s.name + "' is empty or repeated");
        data.statics.push_back(s);
      }
    }

    const json::Value& chunks = d.at("chunks");
    data.chunk_times = chunks.at("times").as_int();
    if (data.chunk_times < 1) fail(dir, "chunks.times must be at least 1");
    const int64_t expected_chunks = (data.times + data.chunk_times - 1) / data.chunk_times;
    const std::vector<json::Value>& files = chunks.at("files").as_array();
    if (static_cast<int64_t>(files.size()) != expected_chunks)
      fail(dir, std::to_string(files.size()) + " chunk files for " + std::to_string(data.times) + " times of " +
                    std::to_string(data.chunk_times) + " (expected " + std::to_string(expected_chunks) + ")");
    for (const json::Value& f : files) {
      const std::string& name = f.as_string();
      if (!plain_file_name(name)) fail(dir, "chunk file name '" + name + "' is not a plain file name");
      data.chunk_files.push_back(dir + "/" + name);
    }
    const double frame_bytes = static_cast<double>(data.nodes()) * static_cast<double>(data.channels) * (data.bf16 ? 2 : 4);
    if (frame_bytes * static_cast<double>(data.chunk_times) > 1e18) fail(dir, "a chunk would exceed 10^18 bytes");
    const std::string statistics = d.at("statistics").as_string();
    if (!plain_file_name(statistics)) fail(dir, "statistics file name '" + statistics + "' is not a plain file name");
    data.statistics_path = dir + "/" + statistics;
    if (const json::Value* s = d.find("static_file")) {
      if (!plain_file_name(s->as_string())) fail(dir, "static file name is not a plain file name");
      data.static_path = dir + "/" + s->as_string();
    } else if (!data.statics.empty()) {
      fail(dir, "static fields are listed but there is no static_file");
    }
  } catch (const json::TypeError& e) {
    fail(dir, std::string("dataset.json: ") + e.what());
  }
  return data;
}

WeatherDataset open_weather_dataset(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) fail(dir, "no such folder");
  std::ifstream in(dir + "/dataset.json", std::ios::binary);
  if (!in) {
    std::ifstream conversion(dir + "/conversion.json");
    fail(dir, conversion ? "no dataset.json: the conversion has not finished (run tools/era5/convert.py with the "
                           "same arguments again to resume it)"
                         : "no dataset.json (convert ERA5 / WeatherBench2 data with tools/era5/convert.py)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > (64u << 20)) fail(dir, "dataset.json is larger than 64 MiB");
  WeatherDataset data = parse_weather_description(text.str(), dir);
  data.files = std::make_shared<WeatherFiles>();
  const int64_t item = data.bf16 ? 2 : 4;
  for (size_t k = 0; k < data.chunk_files.size(); ++k) {
    const std::string& path = data.chunk_files[k];
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(dir, path + ": cannot open (" + std::strerror(errno) + ")");
    data.files->descriptors.push_back(fd);
    struct stat fs {};
    if (::fstat(fd, &fs) != 0 || !S_ISREG(fs.st_mode)) fail(dir, path + ": not a regular file");
    const int64_t first = static_cast<int64_t>(k) * data.chunk_times;
    const int64_t count = std::min(data.chunk_times, data.times - first);
    const int64_t expected = kWeatherChunkHeaderBytes + count * data.frame_values() * item;
    if (static_cast<int64_t>(fs.st_size) != expected)
      fail(dir, path + ": " + std::to_string(fs.st_size) + " bytes, expected " + std::to_string(expected) +
                    " (header + " + std::to_string(count) + " times of " + std::to_string(data.frame_values()) +
                    " values): truncated or from another conversion");
    unsigned char h[kWeatherChunkHeaderBytes];
    if (!pread_all(fd, h, sizeof h, 0)) fail(dir, path + ": cannot read the header");
    if (std::memcmp(h, kMagic, 8) != 0) fail(dir, path + ": not a gc weather chunk (magic)");
    const bool ok = read_le32(h + 8) == 1 && read_le32(h + 12) == (data.bf16 ? 1u : 0u) &&
                    read_le64(h + 16) == first && read_le64(h + 24) == count && read_le64(h + 32) == data.n_lat() &&
                    read_le64(h + 40) == data.n_lon() && read_le64(h + 48) == data.channels;
    if (!ok)
      fail(dir, path + ": its header does not match dataset.json (version, dtype, first time " + std::to_string(first) +
                    ", " + std::to_string(count) + " times, grid, " + std::to_string(data.channels) + " channels)");
  }
  return data;
}

WeatherStatistics load_weather_statistics(const WeatherDataset& data, const std::vector<std::string>& required,
                                          const std::string& path_given) {
  const std::string path = path_given.empty() ? data.statistics_path : path_given;
  NpzFile file;
  try {
    file = load_npz(path);
  } catch (const std::runtime_error& e) {
    fail(data.dir, std::string("statistics: ") + e.what());
  }
  WeatherStatistics stats;
  for (const std::string& name : required) {
    const WeatherVariable* v = data.find(name);
    const size_t levels = v != nullptr && v->has_levels ? data.levels_hpa.size() : 1;
    for (const char* key : {"mean", "stddev", "diffs_stddev"}) {
      const NpyArray* a = file.find(std::string(key) + "/" + name);
      if (a == nullptr) fail(data.dir, path + ": no " + key + "/" + name);
      if (a->kind != NpyKind::f32 && a->kind != NpyKind::f64)
        fail(data.dir, path + ": " + key + "/" + name + " is " + a->describe() + ", not floating point");
      if (static_cast<size_t>(a->numel()) != levels)
        fail(data.dir, path + ": " + key + "/" + name + " has " + std::to_string(a->numel()) + " values, expected " +
                           std::to_string(levels));
      std::vector<float> values;
      for (double x : a->to_doubles()) values.push_back(static_cast<float>(x));
      // diffs_stddev may be 0 (static fields have no changes); the trainer checks its targets'.
      const std::string k = key;
      for (float x : values)
        if (!std::isfinite(x) || (k == "stddev" && !(x > 0)) || (k == "diffs_stddev" && !(x >= 0)))
          fail(data.dir, path + ": " + key + "/" + name + " holds " + std::to_string(x) +
                             (k == "mean" ? "" : k == "stddev" ? " (a standard deviation must be > 0)" : " (must be >= 0)"));
      (std::string(key) == "mean" ? stats.mean : std::string(key) == "stddev" ? stats.stddev : stats.diffs_stddev)[name] =
          values;
    }
  }
  return stats;
}

std::map<std::string, std::vector<float>> load_weather_static(const WeatherDataset& data) {
  std::map<std::string, std::vector<float>> fields;
  if (data.statics.empty()) return fields;
  NpzFile file;
  try {
    file = load_npz(data.static_path);
  } catch (const std::runtime_error& e) {
    fail(data.dir, std::string("static fields: ") + e.what());
  }
  for (const WeatherStatic& s : data.statics) {
    const NpyArray* a = file.find(s.name);
    if (a == nullptr) fail(data.dir, data.static_path + ": no " + s.name);
    if (a->shape != std::vector<int64_t>{data.n_lat(), data.n_lon()} || a->kind == NpyKind::unicode)
      fail(data.dir, data.static_path + ": " + s.name + " is " + a->describe() + ", expected [" +
                         std::to_string(data.n_lat()) + ", " + std::to_string(data.n_lon()) + "] numbers");
    std::vector<float>& out = fields[s.name];
    for (double x : a->to_doubles()) out.push_back(static_cast<float>(x));
  }
  return fields;
}

// ---- prefetcher -----------------------------------------------------------------------------

WeatherPrefetcher::WeatherPrefetcher(const WeatherDataset& data,
                                     std::function<std::vector<int64_t>(int64_t request)> frames_of,
                                     int64_t frames_per_request, int slots, float* pool, int64_t first_request,
                                     FillExtra fill_extra, int64_t extra_floats)
    : data_(data),
      frames_of_(std::move(frames_of)),
      frames_per_request_(frames_per_request),
      slots_(slots),
      pool_(pool),
      fill_extra_(std::move(fill_extra)),
      extra_floats_(extra_floats),
      slot_floats_(frames_per_request * data.frame_values() + extra_floats),
      next_to_fill_(first_request),
      consumer_at_(first_request - 1),
      filled_up_to_(first_request) {
  if (slots_ < 2) throw std::invalid_argument("WeatherPrefetcher: at least 2 slots");
  thread_ = std::thread([this] { run(); });
}

WeatherPrefetcher::~WeatherPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void WeatherPrefetcher::run() {
  const int64_t frame = data_.frame_values();
  for (;;) {
    int64_t request;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // A slot is free when its previous request is behind the consumer.
      changed_.wait(lock, [&] { return stop_ || next_to_fill_ - consumer_at_ < slots_; });
      if (stop_) return;
      request = next_to_fill_;
    }
    float* slot = pool_ + (request % slots_) * slot_floats_;
    try {
      const std::vector<int64_t> frames = frames_of_(request);
      if (static_cast<int64_t>(frames.size()) != frames_per_request_)
        throw std::logic_error("WeatherPrefetcher: a request of another frame count");
      for (size_t f = 0; f < frames.size(); ++f) data_.read_frame(frames[f], slot + static_cast<int64_t>(f) * frame);
      if (fill_extra_) fill_extra_(request, slot + frames_per_request_ * frame);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = e.what();
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++next_to_fill_;
      filled_up_to_ = next_to_fill_;
    }
    changed_.notify_all();
  }
}

const float* WeatherPrefetcher::acquire(int64_t request) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (request != consumer_at_ + 1) throw std::logic_error("WeatherPrefetcher: requests must be acquired in order");
  consumer_at_ = request;  // request - 1's slot is free again
  changed_.notify_all();
  if (filled_up_to_ <= request && error_.empty()) {
    const auto start = std::chrono::steady_clock::now();
    changed_.wait(lock, [&] { return filled_up_to_ > request || !error_.empty(); });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++waits_;
  }
  if (filled_up_to_ <= request) throw WeatherDataError(error_);
  return pool_ + (request % slots_) * slot_floats_;
}

}  // namespace gc::data
