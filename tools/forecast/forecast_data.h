// forecast_data.h: what DeepMind's predictor is given, read from .npz files in
// the layout of DeepMind's example data (tests/data/deepmind/README.md):
//
//   statistics  mean/<var>, stddev/<var>, diffs_stddev/<var>: f32 [levels] or [];
//   inputs      <var> f32 [frames, levels, lat, lon] (atmospheric),
//               [frames, lat, lon] (surface, forcings), [lat, lon] (static);
//               lat, lon (degrees), datetime (int64 s since 1970);
//   forcings    <var> f32 [steps, lat, lon] at the target times; datetime.
//
// Fields stay in the data's own grid order (DeepMind's: rows from -90 to +90);
// the grid built from the data's latitudes has that order, so gc's node index
// i_lat * n_lon + i_lon is DeepMind's, with no reordering.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/grid.h"
#include "tools/io/deepmind_checkpoint.h"

namespace gc::forecast {

struct Statistics {
  // Per variable, one value per level (one for surface fields), f32 as DeepMind keeps them.
  std::map<std::string, std::vector<float>> mean, stddev, diffs_stddev;
};

struct ForecastInputs {
  std::vector<double> lat, lon;    // [n_lat], [n_lon] degrees, the data's order
  std::vector<int64_t> datetime;   // [frames] of the input frames
  // Per input variable: [frames * levels * grid nodes] (time-dependent) or [grid nodes] (static).
  std::map<std::string, std::vector<float>> fields;
  int64_t grid_nodes() const { return static_cast<int64_t>(lat.size() * lon.size()); }
};

struct ForecastForcings {
  std::vector<int64_t> datetime;                     // [steps]
  std::map<std::string, std::vector<float>> fields;  // per forcing: [steps * grid nodes]
  int steps() const { return static_cast<int>(datetime.size()); }
};

// Every loader checks each variable of the task is there with the expected shape
// and throws UsageError naming the file and the variable otherwise.
Statistics load_statistics(const std::string& path, const DeepMindTaskConfig& task);
ForecastInputs load_inputs(const std::string& path, const DeepMindTaskConfig& task);
ForecastForcings load_forcings(const std::string& path, const DeepMindTaskConfig& task, const ForecastInputs& inputs);

// The forcings of `steps` target times, 6 h apart after the last input frame,
// computed as DeepMind's data_utils does (tools/data/solar.h): TOA incident
// solar radiation, year_progress_sin/cos, day_progress_sin/cos. UsageError for
// a forcing it cannot compute (give --forcings then).
ForecastForcings compute_forcings(const DeepMindTaskConfig& task, const ForecastInputs& inputs, int steps);

// gc's grid of the data: its rows and columns in the data's order. Throws
// UsageError unless the longitudes are 0, 360/n, ... (what gc's grids hold).
model::Grid grid_of(const ForecastInputs& inputs);

}  // namespace gc::forecast
