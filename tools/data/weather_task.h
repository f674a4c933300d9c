// weather_task.h: GraphCast's task on a gc weather data set (weather_dataset.h),
// as DeepMind's graphcast.py / normalization.py / losses.py define it, in gc's
// residual convention (normalization.h).
//
// A sample starts at time t: the inputs are frames t-1 and t of every variable
// that is both input and target ("state"), the forcings at t-1, t and t+1
// (toa_incident_solar_radiation computed by tools/data/solar.h, never read from
// the data; year and day progress sin/cos), and the static fields; the targets
// are frames t+1 .. t+K. Input columns per grid node, in this order:
//   [state at t-1 (P)] [state at t (P)] [forcings at t-1, t, t+1 (3 x 5)] [static (S)]
// each normalized (x - mean) / stddev; the model state is (x - mean) / diffs_stddev
// (DeepMind's InputsAndResiduals: the network predicts the normalized 6-hour
// residual). Target-only variables (total_precipitation_6hr) come after the P
// state channels among the C outputs and are predicted directly, as DeepMind
// does: their state is (x - mean) / stddev, the step does not add the previous
// state to them (keep_state 0) and they are not fed back. The column order
// differs from DeepMind's stacking (variables sorted by name): a gc-trained model
// is not laid out as a DeepMind checkpoint.
//
// The loss is DeepMind's losses.weighted_mse_per_level: per target, the mean over
// latitude, longitude and level of the squared error times the normalized
// latitude weight and the level weight (pressure / mean pressure), summed over
// variables with DeepMind's per-variable weights (2m_temperature 1, 10 m winds,
// mean_sea_level_pressure and total_precipitation_6hr 0.1, others 1). In gc's
// weighted_mse that is the row weight = latitude weight and the column weight =
// variable weight x level weight / levels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tools/data/batch.h"
#include "tools/data/weather_dataset.h"

namespace gc::data {

struct TimeRange {
  int64_t first = 0, last = -1;  // time indices, inclusive
  int64_t count() const { return last >= first ? last - first + 1 : 0; }
};

// "2015", "1979-2015", or "2016-01-01..2016-03-31T18" (dates inclusive) -> the data's
// time indices inside it. Throws UsageError naming `flag` for bad text or an empty range.
TimeRange parse_time_range(const WeatherDataset& data, const std::string& text, const std::string& flag);

// The five forcings, in the input's order.
const std::vector<std::string>& weather_forcings();

// DeepMind's per-variable loss weight (losses.py as graphcast's demo sets it).
double deepmind_variable_weight(const std::string& name);
// DeepMind's normalized_latitude_weights: cos(lat) without pole rows; with them,
// cos(lat) sin(d/2) and sin(d/4)^2 at the poles; divided by their mean. Throws
// UsageError for latitudes that are not evenly spaced or do not reach the poles'
// neighbourhood (DeepMind's own checks).
std::vector<double> deepmind_latitude_weights(const std::vector<double>& latitudes_deg);

struct WeatherTask {
  std::shared_ptr<const WeatherDataset> data;
  // [C] the data channels of the outputs: first the `fed_back` ones that are inputs and
  // targets (residuals), then the target-only ones (predicted directly, never inputs).
  std::vector<int64_t> state_channels;
  int64_t fed_back = 0;
  std::vector<std::string> state_names; // [C] "geopotential@500", "2m_temperature", ...
  std::vector<std::string> notes;       // what of the data the task leaves out, and why
  std::vector<std::string> statics;     // [S]
  std::vector<double> mean, stddev, diffs_stddev;  // [C]
  std::vector<double> state_scale;  // [C] the state's unit: diffs_stddev (fed back) or stddev (target-only)
  std::vector<double> forcing_mean, forcing_stddev;  // [5]
  std::vector<float> static_inputs;     // [nodes, S] normalized
  std::vector<double> column_weight;    // [C] variable weight x level weight / levels
  std::vector<double> latitude_weight;  // [n_lat] mean 1
  TimeRange train, valid;

  int64_t channels() const { return static_cast<int64_t>(state_channels.size()); }
  int64_t forcings() const { return static_cast<int64_t>(weather_forcings().size()); }
  int64_t extra_channels() const { return 3 * forcings() + static_cast<int64_t>(statics.size()); }
  int64_t input_channels() const { return 2 * fed_back + extra_channels(); }  // without the 3 structural
  double state_to_input(int64_t c) const { return diffs_stddev[static_cast<size_t>(c)] / stddev[static_cast<size_t>(c)]; }

  // Start times t whose inputs t-1, t and targets t+1 .. t+steps all lie in `range`.
  std::vector<int64_t> sample_starts(const TimeRange& range, int steps) const;
  // The `batch` training samples of a micro step: they depend only on (seed, micro step).
  std::vector<int64_t> draw_training_samples(uint64_t seed, int64_t micro_step, int batch, int steps) const;
  // Per sample, the frames t-1 .. t+steps.
  static std::vector<int64_t> frames_of(const std::vector<int64_t>& starts, int steps);
  // TOA incident solar radiation (J/m^2) at these time indices: [times][nodes].
  void toa_radiation(const std::vector<int64_t>& times, float* out) const;
  // The normalized forcings of one time [nodes][5], TOA given [nodes].
  void forcing_inputs(int64_t time, const float* toa, float* out) const;
};

// Builds the task on `data`: the state variables, their statistics (stats.npz;
// the forcings' from it when present, else computed over the training times),
// the static inputs, the loss weights and the time splits (train_spec and
// valid_spec as parse_time_range; defaults: the first three quarters of the times
// and the rest). Throws UsageError for data the task cannot use.
WeatherTask make_weather_task(std::shared_ptr<const WeatherDataset> data, const std::string& train_spec,
                              const std::string& valid_spec);

// The batch of these samples with `steps` targets each, from their frames
// [B][steps + 2][frame_values] and TOA [B][steps + 2][nodes] (both null on meta:
// shapes only, no values written). Inputs as the header says; extra_inputs per
// step k >= 1; state and targets [B * grid, C] in state units.
Batch assemble_weather_batch(const WeatherTask& task, const std::vector<int64_t>& starts, int steps,
                             const float* frames, const float* toa, DType compute_dtype, Device device);

}  // namespace gc::data
