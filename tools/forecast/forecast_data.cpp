// forecast_data.cpp: the loaders of forecast_data.h.
#include "tools/forecast/forecast_data.h"

#include <cmath>
#include <cstring>
#include <set>

#include "tools/data/solar.h"
#include "tools/io/npz.h"
#include "tools/usage_error.h"

namespace gc::forecast {

namespace {

NpzFile open(const std::string& path) {
  try {
    return load_npz(path);
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
}

const NpyArray& need(const NpzFile& file, const std::string& name) {
  const NpyArray* a = file.find(name);
  if (a == nullptr) throw UsageError(file.path + ": no array '" + name + "'");
  return *a;
}

std::vector<float> floats(const NpzFile& file, const std::string& name, const std::vector<int64_t>& shape) {
  const NpyArray& a = need(file, name);
  if (a.kind != NpyKind::f32 || a.shape != shape) {
    std::string expected = "[";
    for (size_t i = 0; i < shape.size(); ++i) expected += (i ? ", " : "") + std::to_string(shape[i]);
    throw UsageError(file.path + ": '" + name + "' is " + a.describe() + ", expected '<f4' " + expected + "]");
  }
  std::vector<float> out(static_cast<size_t>(a.numel()));
  if (!out.empty()) std::memcpy(out.data(), a.data.data(), out.size() * sizeof(float));
  return out;
}

std::vector<int64_t> datetimes(const NpzFile& file) {
  std::vector<int64_t> out;
  for (double v : need(file, "datetime").to_doubles()) out.push_back(static_cast<int64_t>(v));
  return out;
}

}  // namespace

Statistics load_statistics(const std::string& path, const DeepMindTaskConfig& task) {
  const NpzFile file = open(path);
  Statistics s;
  std::set<std::string> variables(task.input_variables.begin(), task.input_variables.end());
  variables.insert(task.forcing_variables.begin(), task.forcing_variables.end());
  variables.insert(task.target_variables.begin(), task.target_variables.end());
  const int64_t levels = static_cast<int64_t>(task.pressure_levels.size());
  for (const std::string& v : variables) {
    const std::vector<int64_t> shape = is_atmospheric_variable(v) ? std::vector<int64_t>{levels} : std::vector<int64_t>{};
    s.mean[v] = floats(file, "mean/" + v, shape);
    s.stddev[v] = floats(file, "stddev/" + v, shape);
    s.diffs_stddev[v] = floats(file, "diffs_stddev/" + v, shape);
  }
  return s;
}

ForecastInputs load_inputs(const std::string& path, const DeepMindTaskConfig& task) {
  const NpzFile file = open(path);
  ForecastInputs in;
  in.lat = need(file, "lat").to_doubles();
  in.lon = need(file, "lon").to_doubles();
  in.datetime = datetimes(file);
  const int64_t frames = task.input_frames(), levels = static_cast<int64_t>(task.pressure_levels.size());
  if (static_cast<int64_t>(in.datetime.size()) != frames)
    throw UsageError(path + ": " + std::to_string(in.datetime.size()) + " input times, the model takes " +
                     std::to_string(frames) + " (input_duration " + task.input_duration + ")");
  const int64_t n_lat = static_cast<int64_t>(in.lat.size()), n_lon = static_cast<int64_t>(in.lon.size());
  for (const ChannelGroup& g : input_channel_groups(task)) {
    if (g.role == ChannelGroup::target_forcing) continue;
    std::vector<int64_t> shape = {n_lat, n_lon};
    if (g.role != ChannelGroup::static_field) {
      if (g.levels > 1 || is_atmospheric_variable(g.variable)) shape.insert(shape.begin(), levels);
      shape.insert(shape.begin(), frames);
    }
    in.fields[g.variable] = floats(file, g.variable, shape);
  }
  return in;
}

ForecastForcings load_forcings(const std::string& path, const DeepMindTaskConfig& task, const ForecastInputs& inputs) {
  const NpzFile file = open(path);
  ForecastForcings f;
  f.datetime = datetimes(file);
  const int64_t steps = static_cast<int64_t>(f.datetime.size());
  for (const std::string& v : task.forcing_variables)
    f.fields[v] = floats(file, v, {steps, static_cast<int64_t>(inputs.lat.size()), static_cast<int64_t>(inputs.lon.size())});
  return f;
}

ForecastForcings compute_forcings(const DeepMindTaskConfig& task, const ForecastInputs& inputs, int steps) {
  ForecastForcings f;
  if (inputs.datetime.empty()) throw UsageError("the inputs have no datetime");
  for (int k = 1; k <= steps; ++k) f.datetime.push_back(inputs.datetime.back() + 6 * 3600 * static_cast<int64_t>(k));
  const size_t n_lat = inputs.lat.size(), n_lon = inputs.lon.size(), nodes = n_lat * n_lon;
  for (const std::string& v : task.forcing_variables) {
    std::vector<float>& out = f.fields[v];
    out.resize(static_cast<size_t>(steps) * nodes);
    if (v == "toa_incident_solar_radiation") {
      const std::vector<double> toa = data::toa_incident_solar_radiation(f.datetime, inputs.lat, inputs.lon);
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(toa[i]);
      continue;
    }
    const bool year = v == "year_progress_sin" || v == "year_progress_cos";
    const bool day = v == "day_progress_sin" || v == "day_progress_cos";
    if (!year && !day) throw UsageError("forcing '" + v + "' cannot be computed here: give --forcings FILE");
    const bool sine = v.compare(v.size() - 3, 3, "sin") == 0;
    for (int s = 0; s < steps; ++s)
      for (size_t j = 0; j < n_lon; ++j) {
        const float progress = year ? data::year_progress(f.datetime[static_cast<size_t>(s)])
                                    : data::day_progress(f.datetime[static_cast<size_t>(s)], inputs.lon[j]);
        const data::ProgressFeatures p = data::progress_features(progress);
        for (size_t i = 0; i < n_lat; ++i) out[static_cast<size_t>(s) * nodes + i * n_lon + j] = sine ? p.sin : p.cos;
      }
  }
  return f;
}

model::Grid grid_of(const ForecastInputs& inputs) {
  const int64_t n_lon = static_cast<int64_t>(inputs.lon.size());
  if (inputs.lat.empty() || n_lon == 0) throw UsageError("the inputs have an empty grid");
  for (int64_t j = 0; j < n_lon; ++j)
    if (std::fabs(inputs.lon[static_cast<size_t>(j)] - 360.0 * static_cast<double>(j) / static_cast<double>(n_lon)) > 1e-6)
      throw UsageError("the inputs' longitude " + std::to_string(j) + " is " + std::to_string(inputs.lon[static_cast<size_t>(j)]) +
                       "; gc's grids run 0, 360/n, ... (n = " + std::to_string(n_lon) + ")");
  for (double lat : inputs.lat)
    if (!(lat >= -90.0 && lat <= 90.0)) throw UsageError("the inputs hold a latitude outside -90..90");
  // Forecasts need no area weights; equal ones keep the grid well defined.
  return model::make_grid_from_latitudes(inputs.lat, n_lon, std::vector<double>(inputs.lat.size(), 1.0));
}

}  // namespace gc::forecast
