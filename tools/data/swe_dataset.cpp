// swe_dataset.cpp: trajectory generation (OpenMP over trajectories, one
// solver per thread), the binary cache format and its atomic writer/validating
// reader (swe_dataset.h).
#include "tools/data/swe_dataset.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "tools/data/swe_solver.h"
#include "tools/io/atomic_file.h"

namespace gc::data {

namespace {

constexpr char kMagic[8] = {'G', 'C', 'S', 'W', 'E', 'D', 'S', '\0'};
// Bump whenever the solver, the initial conditions or the layout change what a
// given config produces: the version is part of the cache file name's hash.
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kByteOrderMark = 0x01020304u;
constexpr size_t kHeaderBytes = 112;

// Word-wise 64-bit hash. Each step is a bijection of the running state for a
// fixed word and of the word for a fixed state, so any single changed word
// changes the result. Streams: feed byte counts that are multiples of 8 except
// in the last call.
struct Hasher {
  uint64_t state = 0x243F6A8885A308D3ull;
  static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  void update(const void* data, size_t bytes) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (; bytes >= 8; bytes -= 8, p += 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      state = rotl(state ^ (word * 0x9E3779B97F4A7C15ull), 29) * 0xBF58476D1CE4E5B9ull;
    }
    if (bytes > 0) {
      uint64_t word = 0;
      std::memcpy(&word, p, bytes);
      state = rotl(state ^ ((word + bytes) * 0x9E3779B97F4A7C15ull), 29) * 0xBF58476D1CE4E5B9ull;
    }
  }
  uint64_t digest() const {
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

struct ByteWriter {
  std::string bytes;
  template <typename T>
  void put(T value) {
    bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
};

struct ByteReader {
  const unsigned char* data;
  size_t size, offset = 0;
  template <typename T>
  T get() {
    T value;
    std::memcpy(&value, data + offset, sizeof(T));
    offset += sizeof(T);
    return value;
  }
};

void put_settings(ByteWriter& w, const SweDatasetConfig& c) {
  w.put(static_cast<uint32_t>(c.truncation));
  w.put(static_cast<uint32_t>(c.train_trajectories));
  w.put(static_cast<uint32_t>(c.validation_trajectories));
  w.put(static_cast<uint32_t>(c.test_trajectories));
  w.put(static_cast<uint32_t>(c.frames_per_trajectory));
  w.put(static_cast<uint32_t>(c.hyperdiffusion ? 1 : 0));
  w.put(c.seed);
  w.put(c.spinup_days);
  w.put(c.frame_interval_hours);
  w.put(c.mean_depth_m);
  w.put(c.rms_vorticity_per_s);
}

std::string header_bytes(const SweDataset& d) {
  ByteWriter w;
  w.bytes.append(kMagic, sizeof(kMagic));
  w.put(kFormatVersion);
  w.put(kByteOrderMark);
  w.put(static_cast<uint32_t>(d.nlat));
  w.put(static_cast<uint32_t>(d.nlon));
  w.put(static_cast<uint32_t>(kSweChannels));
  w.put(static_cast<uint32_t>(0));  // reserved, keeps the 8-byte fields aligned
  put_settings(w, d.config);
  w.put(d.time_step_s);
  w.put(static_cast<uint64_t>(d.values.size()));
  if (w.bytes.size() != kHeaderBytes) throw std::logic_error("swe cache: header layout changed size");
  return w.bytes;
}

int steps_per_frame(const SweDatasetConfig& config) {
  const double interval_s = config.frame_interval_hours * 3600.0;
  return static_cast<int>(std::ceil(interval_s / swe_stable_time_step_s(config.truncation) - 1e-9));
}

// Grid, coordinates and step of a config, values left empty.
SweDataset empty_dataset(const SweDatasetConfig& config) {
  config.validate();
  SphericalTransform transform(config.truncation);
  SweDataset d;
  d.config = config;
  d.nlat = transform.nlat();
  d.nlon = transform.nlon();
  d.time_step_s = config.frame_interval_hours * 3600.0 / steps_per_frame(config);
  d.latitudes_deg = transform.latitudes_deg();
  d.longitudes_deg = transform.longitudes_deg();
  d.gauss_weights = transform.gauss_weights();
  return d;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("swe cache " + path + ": " + what);
}

void write_all(std::FILE* file, const void* data, size_t bytes, const std::string& path) {
  if (bytes > 0 && std::fwrite(data, 1, bytes, file) != bytes)
    fail(path, std::string("write failed: ") + std::strerror(errno));
}

}  // namespace

void SweDatasetConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("SweDatasetConfig: " + what);
  };
  require(truncation >= 1 && truncation <= 255, "truncation must be in 1..255, got " + std::to_string(truncation));
  require(train_trajectories >= 0 && validation_trajectories >= 0 && test_trajectories >= 0,
          "trajectory counts must be >= 0");
  // Summed in 64 bits: the counts of a corrupted cache header may each be near INT_MAX.
  const int64_t total = int64_t{train_trajectories} + validation_trajectories + test_trajectories;
  require(total >= 1, "need at least one trajectory");
  require(total <= std::numeric_limits<int>::max(), "the trajectory counts add up to more than an int holds");
  require(frames_per_trajectory >= 1, "frames_per_trajectory must be >= 1, got " +
                                          std::to_string(frames_per_trajectory));
  require(std::isfinite(spinup_days) && spinup_days >= 0.0, "spinup_days must be >= 0");
  require(std::isfinite(frame_interval_hours) && frame_interval_hours > 0.0, "frame_interval_hours must be > 0");
  // steps_per_frame counts solver steps in an int.
  require(frame_interval_hours * 3600.0 / swe_stable_time_step_s(truncation) < std::numeric_limits<int>::max(),
          "frame_interval_hours needs more than 2^31 solver steps per frame");
  require(std::isfinite(mean_depth_m) && mean_depth_m > 0.0, "mean_depth_m must be > 0");
  require(std::isfinite(rms_vorticity_per_s) && rms_vorticity_per_s > 0.0, "rms_vorticity_per_s must be > 0");
}

const char* swe_channel_name(int channel) {
  static const char* names[kSweChannels] = {"h", "u", "v"};
  if (channel < 0 || channel >= kSweChannels) throw std::out_of_range("swe_channel_name: no channel " + std::to_string(channel));
  return names[channel];
}

const char* swe_channel_unit(int channel) {
  static const char* units[kSweChannels] = {"m", "m/s", "m/s"};
  if (channel < 0 || channel >= kSweChannels) throw std::out_of_range("swe_channel_unit: no channel " + std::to_string(channel));
  return units[channel];
}

const float* SweDataset::frame(int trajectory, int frame_index) const {
  if (trajectory < 0 || trajectory >= trajectories() || frame_index < 0 || frame_index >= frames())
    throw std::out_of_range("SweDataset::frame: (" + std::to_string(trajectory) + ", " +
                            std::to_string(frame_index) + ") outside " + std::to_string(trajectories()) + " x " +
                            std::to_string(frames()));
  return values.data() + (static_cast<size_t>(trajectory) * frames() + frame_index) * frame_elements();
}

int SweDataset::first_trajectory(SweSplit split) const {
  switch (split) {
    case SweSplit::train: return 0;
    case SweSplit::validation: return config.train_trajectories;
    case SweSplit::test: return config.train_trajectories + config.validation_trajectories;
  }
  return 0;
}

int SweDataset::split_trajectories(SweSplit split) const {
  switch (split) {
    case SweSplit::train: return config.train_trajectories;
    case SweSplit::validation: return config.validation_trajectories;
    case SweSplit::test: return config.test_trajectories;
  }
  return 0;
}

SweDataset generate_swe_dataset(const SweDatasetConfig& config, int threads, bool print_progress) {
  SweDataset d = empty_dataset(config);
  const int total = config.total_trajectories(), frames = config.frames_per_trajectory;
  const int frame_steps = steps_per_frame(config);
  const int spinup_steps = static_cast<int>(std::llround(config.spinup_days * 86400.0 / d.time_step_s));
  d.values.assign(static_cast<size_t>(total) * frames * d.frame_elements(), 0.0f);
  const SphericalTransform transform(config.truncation);
  RandomStateOptions options;
  options.rms_vorticity_per_s = config.rms_vorticity_per_s;
  options.mean_depth_m = config.mean_depth_m;
  if (threads <= 0) threads = omp_get_max_threads();
  std::atomic<int> done{0};
  std::exception_ptr error;
  const auto start = std::chrono::steady_clock::now();
  // Exceptions must not leave an OpenMP region: the first one is kept and rethrown.
#pragma omp parallel num_threads(threads)
  {
    try {
      SweSolver solver(transform, d.time_step_s, config.hyperdiffusion);
      std::vector<double> height(transform.grid_size()), u(transform.grid_size()), v(transform.grid_size());
#pragma omp for schedule(dynamic, 1)
      for (int t = 0; t < total; ++t) {
        SweState state = random_balanced_state(solver, swe_mix_seed(config.seed, static_cast<uint64_t>(t)), options);
        solver.advance(state, spinup_steps);
        for (int f = 0; f < frames; ++f) {
          if (f > 0) solver.advance(state, frame_steps);
          solver.grid_fields(state, height.data(), u.data(), v.data());
          float* out = d.values.data() + (static_cast<size_t>(t) * frames + f) * d.frame_elements();
          for (size_t i = 0; i < transform.grid_size(); ++i) {
            out[i * kSweChannels + 0] = static_cast<float>(height[i]);
            out[i * kSweChannels + 1] = static_cast<float>(u[i]);
            out[i * kSweChannels + 2] = static_cast<float>(v[i]);
          }
        }
        const int finished = ++done;
        if (print_progress && (finished * 10 / total != (finished - 1) * 10 / total || finished == total)) {
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
#pragma omp critical(gc_swe_progress)
          std::fprintf(stderr, "swe: %d/%d trajectories (T%d, %d frames each), %.1f s\n", finished, total,
                       config.truncation, frames, seconds);
        }
      }
    } catch (...) {
#pragma omp critical(gc_swe_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return d;
}

uint64_t swe_config_hash(const SweDatasetConfig& config) {
  ByteWriter w;
  w.bytes.append(kMagic, sizeof(kMagic));
  w.put(kFormatVersion);
  put_settings(w, config);
  Hasher h;
  h.update(w.bytes.data(), w.bytes.size());
  return h.digest();
}

std::string swe_cache_file_name(const SweDatasetConfig& config) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(swe_config_hash(config)));
  return "swe_T" + std::to_string(config.truncation) + "_" + hex + ".bin";
}

void save_swe_dataset(const SweDataset& d, const std::string& path) {
  if (d.values.size() != static_cast<size_t>(d.trajectories()) * d.frames() * d.frame_elements())
    throw std::invalid_argument("save_swe_dataset: values hold " + std::to_string(d.values.size()) +
                                " floats, the config and grid call for " +
                                std::to_string(static_cast<size_t>(d.trajectories()) * d.frames() * d.frame_elements()));
  const std::string header = header_bytes(d);
  Hasher h;
  h.update(header.data(), header.size());
  h.update(d.values.data(), d.values.size() * sizeof(float));
  const uint64_t checksum = h.digest();

  try {
    write_file_atomic(path, [&](std::FILE* file) {
      write_all(file, header.data(), header.size(), path);
      write_all(file, d.values.data(), d.values.size() * sizeof(float), path);
      write_all(file, &checksum, sizeof(checksum), path);
    });
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.rfind("swe cache ", 0) == 0) throw;
    fail(path, what);
  }
}

SweDataset load_swe_dataset(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    std::FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{file};
  if (std::fseek(file, 0, SEEK_END) != 0) fail(path, "cannot seek");
  const long end = std::ftell(file);
  if (end < 0) fail(path, "cannot tell its size");
  const size_t file_bytes = static_cast<size_t>(end);
  std::rewind(file);

  unsigned char header[kHeaderBytes];
  if (file_bytes < kHeaderBytes || std::fread(header, 1, kHeaderBytes, file) != kHeaderBytes)
    fail(path, "truncated: " + std::to_string(file_bytes) + " bytes, shorter than the " +
                   std::to_string(kHeaderBytes) + "-byte header");
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) fail(path, "not a gc SWE data set (bad magic)");
  ByteReader r{header, kHeaderBytes, sizeof(kMagic)};
  const uint32_t version = r.get<uint32_t>();
  if (version != kFormatVersion)
    fail(path, "format version " + std::to_string(version) + ", this build reads " + std::to_string(kFormatVersion));
  if (r.get<uint32_t>() != kByteOrderMark) fail(path, "written with another byte order");
  const uint32_t nlat = r.get<uint32_t>(), nlon = r.get<uint32_t>(), channels = r.get<uint32_t>();
  r.get<uint32_t>();
  SweDatasetConfig config;
  config.truncation = static_cast<int>(r.get<uint32_t>());
  config.train_trajectories = static_cast<int>(r.get<uint32_t>());
  config.validation_trajectories = static_cast<int>(r.get<uint32_t>());
  config.test_trajectories = static_cast<int>(r.get<uint32_t>());
  config.frames_per_trajectory = static_cast<int>(r.get<uint32_t>());
  config.hyperdiffusion = r.get<uint32_t>() != 0;
  config.seed = r.get<uint64_t>();
  config.spinup_days = r.get<double>();
  config.frame_interval_hours = r.get<double>();
  config.mean_depth_m = r.get<double>();
  config.rms_vorticity_per_s = r.get<double>();
  const double time_step_s = r.get<double>();
  const uint64_t value_count = r.get<uint64_t>();

  // Everything is checked against the file size before anything is built
  // from the header, so a corrupted count cannot trigger a huge allocation.
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    fail(path, std::string("corrupted header: ") + e.what());
  }
  int grid_lat = 0, grid_lon = 0;
  SphericalTransform::default_grid(config.truncation, grid_lat, grid_lon);
  if (nlat != static_cast<uint32_t>(grid_lat) || nlon != static_cast<uint32_t>(grid_lon) || channels != kSweChannels)
    fail(path, "corrupted header: grid " + std::to_string(nlat) + " x " + std::to_string(nlon) + " x " +
                   std::to_string(channels) + " does not match T" + std::to_string(config.truncation));
  uint64_t expected_count = static_cast<uint64_t>(config.total_trajectories());
  bool overflow = __builtin_mul_overflow(expected_count, static_cast<uint64_t>(config.frames_per_trajectory),
                                         &expected_count);
  overflow |= __builtin_mul_overflow(expected_count, static_cast<uint64_t>(nlat) * nlon * kSweChannels,
                                     &expected_count);
  if (overflow || value_count != expected_count)
    fail(path, "corrupted header: " + std::to_string(value_count) + " values do not match the settings");
  if (value_count > file_bytes / sizeof(float))
    fail(path, "truncated: " + std::to_string(file_bytes) + " bytes cannot hold " + std::to_string(value_count) +
                   " values");
  const uint64_t expected_bytes = kHeaderBytes + value_count * sizeof(float) + sizeof(uint64_t);
  if (file_bytes < expected_bytes)
    fail(path, "truncated: " + std::to_string(file_bytes) + " of " + std::to_string(expected_bytes) + " bytes");
  if (file_bytes > expected_bytes)
    fail(path, "has " + std::to_string(file_bytes - expected_bytes) + " unexpected trailing bytes");
  SweDataset d = empty_dataset(config);
  if (time_step_s != d.time_step_s) fail(path, "corrupted header: time step does not match the settings");

  d.values.resize(static_cast<size_t>(value_count));
  uint64_t stored_checksum = 0;
  if (std::fread(d.values.data(), sizeof(float), d.values.size(), file) != d.values.size() ||
      std::fread(&stored_checksum, sizeof(stored_checksum), 1, file) != 1)
    fail(path, "read failed (file changed while reading?)");
  Hasher h;
  h.update(header, kHeaderBytes);
  h.update(d.values.data(), d.values.size() * sizeof(float));
  if (h.digest() != stored_checksum) fail(path, "checksum mismatch: the file is corrupted");
  return d;
}

SweDataset load_or_generate_swe_dataset(const SweDatasetConfig& config, const std::string& cache_dir, int threads,
                                        bool verbose, bool* loaded_from_cache) {
  config.validate();
  if (loaded_from_cache) *loaded_from_cache = false;
  const std::string folder = cache_dir.empty() ? std::string(".") : cache_dir;
  const std::string path = (std::filesystem::path(folder) / swe_cache_file_name(config)).string();
  // A generation killed while saving left its temporary (hundreds of MB at T42).
  remove_stale_temporaries(folder);
  std::error_code exists_error;
  if (std::filesystem::exists(path, exists_error)) {
    try {
      SweDataset d = load_swe_dataset(path);
      if (swe_config_hash(d.config) != swe_config_hash(config)) fail(path, "holds a data set of other settings");
      if (loaded_from_cache) *loaded_from_cache = true;
      if (verbose) std::fprintf(stderr, "swe: loaded %s (%zu bytes of values)\n", path.c_str(), d.values.size() * 4);
      return d;
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "warning: %s; regenerating it\n", e.what());
    }
  }
  if (verbose)
    std::fprintf(stderr, "swe: generating %d trajectories x %d frames at T%d into %s\n", config.total_trajectories(),
                 config.frames_per_trajectory, config.truncation, path.c_str());
  SweDataset d = generate_swe_dataset(config, threads, verbose);
  try {
    make_directories(folder);
    save_swe_dataset(d, path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: could not cache the SWE data set: %s\n", e.what());
  }
  return d;
}

}  // namespace gc::data
