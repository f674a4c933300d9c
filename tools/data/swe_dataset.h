// swe_dataset.h: the built-in physical data set: trajectories of the spectral
// shallow-water model (swe_solver.h) sampled every 6 hours after a spin-up, as
// float32 grids, with an on-disk cache.
//
// Layout of SweDataset::values: [trajectory][frame][lat][lon][channel], float32,
// channels h (geopotential height Phi / g, m), u (eastward wind, m/s),
// v (northward wind, m/s); latitudes north to south on the Gaussian grid of the
// truncation (T21: 32 x 64). Trajectories are ordered train, validation, test.
//
// Determinism: trajectory t starts from the seed swe_mix_seed(seed, t) and is
// integrated sequentially by one thread, so the bytes do not depend on the
// thread count (or on the split sizes of the other trajectories).
//
// Cache policy: load_swe_dataset throws std::runtime_error naming the file for
// anything wrong with it (missing, truncated, corrupted, other settings);
// load_or_generate_swe_dataset turns that into a warning on stderr and
// regenerates, since a cache file is always safe to rebuild.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gc::data {

// Defaults: a small demo, 120 + 16 + 16 trajectories of 32 frames (8 days at
// 6 h) after 2 days of spin-up, T21 on 32 x 64: 119,537,664 bytes of float32
// values, generated in 18.6 s wall / 22.9 s CPU on the shared 2-core machine
// (so ~12 s on two idle cores). 32 frames give 30 (two inputs, one target)
// samples per trajectory and room for multi-step rollouts; 2 days of spin-up
// let the balanced initial state develop its own dynamics.
struct SweDatasetConfig {
  int truncation = 21;
  int train_trajectories = 120;
  int validation_trajectories = 16;
  int test_trajectories = 16;
  int frames_per_trajectory = 32;
  double spinup_days = 2.0;
  double frame_interval_hours = 6.0;
  uint64_t seed = 2024;
  double mean_depth_m = 1e4;
  double rms_vorticity_per_s = 3e-5;
  bool hyperdiffusion = true;

  int total_trajectories() const { return train_trajectories + validation_trajectories + test_trajectories; }
  // Throws std::invalid_argument for settings that cannot make a data set.
  void validate() const;
};

enum class SweSplit { train, validation, test };

inline constexpr int kSweChannels = 3;
const char* swe_channel_name(int channel);  // "h", "u", "v"
const char* swe_channel_unit(int channel);  // "m", "m/s", "m/s"

struct SweDataset {
  SweDatasetConfig config;
  int nlat = 0, nlon = 0;
  double time_step_s = 0.0;            // solver step (divides the frame interval)
  std::vector<double> latitudes_deg;   // [nlat] north to south
  std::vector<double> longitudes_deg;  // [nlon] from 0 eastward
  std::vector<double> gauss_weights;   // [nlat] sum 2; latitude weights are w nlat / 2
  std::vector<float> values;           // [trajectory][frame][lat][lon][channel]

  int trajectories() const { return config.total_trajectories(); }
  int frames() const { return config.frames_per_trajectory; }
  size_t frame_elements() const { return static_cast<size_t>(nlat) * nlon * kSweChannels; }
  const float* frame(int trajectory, int frame) const;  // [nlat][nlon][channel]
  int first_trajectory(SweSplit split) const;
  int split_trajectories(SweSplit split) const;
};

// Runs the model. threads <= 0 uses OpenMP's default. With print_progress, one
// line to stderr per ~10% of trajectories.
SweDataset generate_swe_dataset(const SweDatasetConfig& config, int threads = 0, bool print_progress = true);

// Hash of every setting that shapes the data (and of the format version).
uint64_t swe_config_hash(const SweDatasetConfig& config);
// "swe_T21_<16 hex digits of swe_config_hash>.bin"
std::string swe_cache_file_name(const SweDatasetConfig& config);

// File: header (magic "GCSWEDS", version, byte-order mark, every setting, grid
// and element counts), float32 values, then a 64-bit checksum of all preceding
// bytes. Written atomically: temporary file in the same folder, fsync, rename,
// fsync of the folder. Throws std::runtime_error naming the file on failure.
void save_swe_dataset(const SweDataset& dataset, const std::string& path);
SweDataset load_swe_dataset(const std::string& path);

// Loads cache_dir/swe_cache_file_name(config) when present and valid; otherwise
// generates, saves (creating cache_dir) and returns the data. An unusable cache
// file is reported on stderr and replaced; a failed save is reported and the
// generated data still returned. *loaded_from_cache says which happened.
SweDataset load_or_generate_swe_dataset(const SweDatasetConfig& config, const std::string& cache_dir,
                                        int threads = 0, bool verbose = true, bool* loaded_from_cache = nullptr);

}  // namespace gc::data
