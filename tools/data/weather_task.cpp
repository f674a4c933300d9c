// weather_task.cpp: GraphCast's task on weather data (see weather_task.h).
#include "tools/data/weather_task.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "runtime/memory_scope.h"
#include "tools/data/host_tensor.h"
#include "tools/data/solar.h"
#include "tools/usage_error.h"

namespace gc::data {

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "YYYY-MM-DD" or "YYYY-MM-DDTHH" -> seconds since 1970; false when malformed.
bool parse_date(const std::string& text, int64_t* seconds) {
  int y = 0, m = 0, d = 0, h = 0;
  char tail = 0;
  const int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d%c", &y, &m, &d, &h, &tail);
  const bool date_only = n == 3 && text.size() == 10;
  const bool with_hour = n == 4 && text.size() == 13;
  if (!(date_only || with_hour) || m < 1 || m > 12 || d < 1 || d > 31 || h < 0 || h > 23) return false;
  *seconds = days_from_civil(y, m, d) * 86400 + h * 3600;
  return true;
}

bool parse_year(const std::string& text, int64_t* year) {
  if (text.size() != 4 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  *year = std::stoll(text);
  return true;
}

}  // namespace

TimeRange parse_time_range(const WeatherDataset& data, const std::string& text, const std::string& flag) {
  int64_t begin = 0, end = 0;  // seconds, inclusive
  const size_t dots = text.find("..");
  int64_t y1 = 0, y2 = 0;
  if (dots != std::string::npos) {
    if (!parse_date(text.substr(0, dots), &begin) || !parse_date(text.substr(dots + 2), &end))
      throw UsageError(flag + " '" + text + "': dates are YYYY-MM-DD or YYYY-MM-DDTHH, e.g. 2016-01-01..2016-03-31T18");
    if (text.size() - dots - 2 == 10) end += 18 * 3600;  // a whole last day
  } else if (parse_year(text, &y1)) {
    begin = days_from_civil(y1, 1, 1) * 86400;
    end = days_from_civil(y1 + 1, 1, 1) * 86400 - 1;
  } else if (text.size() == 9 && text[4] == '-' && parse_year(text.substr(0, 4), &y1) && parse_year(text.substr(5), &y2)) {
    if (y2 < y1) throw UsageError(flag + " '" + text + "': the last year comes before the first");
    begin = days_from_civil(y1, 1, 1) * 86400;
    end = days_from_civil(y2 + 1, 1, 1) * 86400 - 1;
  } else {
    throw UsageError(flag + " '" + text + "': give a year (2016), years (1979-2015) or dates (2016-01-01..2016-03-31T18)");
  }
  TimeRange r;
  const int64_t step = kWeatherStepSeconds;
  r.first = std::max<int64_t>(0, (begin - data.start_seconds + step - 1) / step);
  if (begin < data.start_seconds) r.first = 0;
  r.last = end < data.start_seconds ? -1 : std::min(data.times - 1, (end - data.start_seconds) / step);
  if (r.count() == 0)
    throw UsageError(flag + " '" + text + "' holds none of the data's times (" + std::to_string(data.times) +
                     " six-hourly times from " + std::to_string(data.start_seconds) + " s since 1970)");
  return r;
}

const std::vector<std::string>& weather_forcings() {
  static const std::vector<std::string> names = {"toa_incident_solar_radiation", "year_progress_sin", "year_progress_cos",
                                                 "day_progress_sin", "day_progress_cos"};
  return names;
}

double deepmind_variable_weight(const std::string& name) {
  if (name == "10m_u_component_of_wind" || name == "10m_v_component_of_wind" || name == "mean_sea_level_pressure" ||
      name == "total_precipitation_6hr")
    return 0.1;
  return 1.0;
}

std::vector<double> deepmind_latitude_weights(const std::vector<double>& lat) {
  const size_t n = lat.size();
  if (n < 2) throw UsageError("the grid needs at least 2 latitudes");
  const double delta = std::fabs(lat[0] - lat[1]);
  for (size_t i = 1; i < n; ++i)
    if (std::fabs(std::fabs(lat[i - 1] - lat[i]) - delta) > 1e-6)
      throw UsageError("the latitudes are not evenly spaced (DeepMind's latitude weights need a regular grid)");
  const double top = std::max(lat.front(), lat.back()), bottom = std::min(lat.front(), lat.back());
  const bool poles = std::fabs(top - 90.0) < 1e-6 && std::fabs(bottom + 90.0) < 1e-6;
  if (!poles && (std::fabs(top - (90.0 - delta / 2)) > 1e-6 || std::fabs(bottom + 90.0 - delta / 2) > 1e-6))
    throw UsageError("the latitudes neither include the poles nor lie half a spacing from them (a global grid)");
  const double rad = M_PI / 180.0;
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = std::cos(lat[i] * rad) * (poles ? std::sin(delta / 2 * rad) : 1.0);
  if (poles) w.front() = w.back() = std::pow(std::sin(delta / 4 * rad), 2);
  double mean = 0;
  for (double x : w) mean += x / static_cast<double>(n);
  for (double& x : w) x /= mean;
  return w;
}

std::vector<int64_t> WeatherTask::sample_starts(const TimeRange& range, int steps) const {
  std::vector<int64_t> starts;
  for (int64_t t = range.first + 1; t + steps <= range.last; ++t) starts.push_back(t);
  return starts;
}

std::vector<int64_t> WeatherTask::draw_training_samples(uint64_t seed, int64_t micro_step, int batch, int steps) const {
  const std::vector<int64_t> starts = sample_starts(train, steps);
  std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(micro_step) * 7919ull + 1);
  std::vector<int64_t> samples;
  for (int b = 0; b < batch; ++b) samples.push_back(starts[static_cast<size_t>(rng() % starts.size())]);
  return samples;
}

std::vector<int64_t> WeatherTask::frames_of(const std::vector<int64_t>& starts, int steps) {
  std::vector<int64_t> frames;
  for (int64_t t : starts)
    for (int64_t k = -1; k <= steps; ++k) frames.push_back(t + k);
  return frames;
}

void WeatherTask::toa_radiation(const std::vector<int64_t>& times, float* out) const {
  std::vector<int64_t> seconds;
  for (int64_t t : times) seconds.push_back(data->time_seconds(t));
  const std::vector<double> toa = toa_incident_solar_radiation(seconds, data->latitudes_deg, data->longitudes_deg);
  for (size_t i = 0; i < toa.size(); ++i) out[i] = static_cast<float>(toa[i]);
}

void WeatherTask::forcing_inputs(int64_t time, const float* toa, float* out) const {
  const int64_t seconds = data->time_seconds(time), n_lon = data->n_lon(), nodes = data->nodes();
  const ProgressFeatures year = progress_features(year_progress(seconds));
  std::vector<ProgressFeatures> day(static_cast<size_t>(n_lon));
  for (int64_t j = 0; j < n_lon; ++j) day[static_cast<size_t>(j)] = progress_features(day_progress(seconds, data->longitudes_deg[static_cast<size_t>(j)]));
  for (int64_t i = 0; i < nodes; ++i) {
    const ProgressFeatures& d = day[static_cast<size_t>(i % n_lon)];
    const float raw[5] = {toa[i], year.sin, year.cos, d.sin, d.cos};
    for (int f = 0; f < 5; ++f)
      out[i * 5 + f] = static_cast<float>((raw[f] - forcing_mean[static_cast<size_t>(f)]) / forcing_stddev[static_cast<size_t>(f)]);
  }
}

WeatherTask make_weather_task(std::shared_ptr<const WeatherDataset> data_ptr, const std::string& train_spec,
                              const std::string& valid_spec) {
  const WeatherDataset& d = *data_ptr;
  WeatherTask task;
  task.data = data_ptr;
  // The outputs: the state variables (fed back), then the target-only ones.
  std::vector<const WeatherVariable*> outputs;
  for (const WeatherVariable& v : d.variables) {
    if (v.role == "forcing") task.notes.push_back(v.name + " is not read: gc computes the TOA radiation itself");
    if (v.role == "state") outputs.push_back(&v);
  }
  for (const WeatherVariable& v : d.variables)
    if (v.role == "target") outputs.push_back(&v);
  for (const WeatherVariable* v : outputs) {
    for (int64_t c = 0; c < v->channels; ++c) {
      task.state_channels.push_back(v->first_channel + c);
      task.state_names.push_back(v->has_levels ? v->name + "@" + std::to_string(d.levels_hpa[static_cast<size_t>(c)]) : v->name);
    }
    if (v->role == "state") task.fed_back = static_cast<int64_t>(task.state_channels.size());
  }
  if (task.fed_back == 0) throw UsageError("weather data " + d.dir + ": no variable to train on (role state)");
  for (const WeatherStatic& s : d.statics) task.statics.push_back(s.name);

  // Splits.
  if (!train_spec.empty()) task.train = parse_time_range(d, train_spec, "--train-years");
  else task.train = {0, std::max<int64_t>(0, d.times * 3 / 4 - 1)};
  if (!valid_spec.empty()) task.valid = parse_time_range(d, valid_spec, "--valid-years");
  else task.valid = {task.train.last + 1, d.times - 1};
  if (task.train.last >= task.valid.first && task.valid.last >= task.train.first)
    throw UsageError("--train-years and --valid-years overlap: a model must be scored on times it did not train on");
  if (task.sample_starts(task.train, 1).empty())
    throw UsageError("the training times (" + std::to_string(task.train.count()) +
                     ") hold no sample: one needs 3 consecutive times (two inputs, one target)");

  // Statistics: the state variables', the static fields', the forcings' (when there).
  std::vector<std::string> names;
  for (const WeatherVariable* v : outputs) names.push_back(v->name);
  for (const std::string& s : task.statics) names.push_back(s);
  WeatherStatistics stats;
  try {
    stats = load_weather_statistics(d, names);
  } catch (const WeatherDataError& e) {
    throw UsageError(e.what());
  }
  for (const WeatherVariable* vp : outputs) {
    const WeatherVariable& v = *vp;
    for (int64_t c = 0; c < v.channels; ++c) {
      const size_t l = static_cast<size_t>(c);
      task.mean.push_back(stats.mean.at(v.name)[l]);
      task.stddev.push_back(stats.stddev.at(v.name)[l]);
      task.diffs_stddev.push_back(stats.diffs_stddev.at(v.name)[l]);
      if (v.role == "state" && !(task.diffs_stddev.back() > 0))
        throw UsageError(d.statistics_path + ": diffs_stddev/" + v.name + " is 0: a target needs 6-hour changes");
      task.state_scale.push_back(v.role == "state" ? task.diffs_stddev.back() : task.stddev.back());
      // weighted_mse_per_level: mean over levels of (pressure / mean pressure) weights.
      double level_weight = 1.0;
      if (v.has_levels) {
        double mean_pressure = 0;
        for (int p : d.levels_hpa) mean_pressure += p / static_cast<double>(d.levels_hpa.size());
        level_weight = d.levels_hpa[l] / mean_pressure / static_cast<double>(v.channels);
      }
      task.column_weight.push_back(deepmind_variable_weight(v.name) * level_weight);
    }
  }

  // The forcings' statistics: from the file where it has them, else computed over
  // training times (TOA at 24 of them spread over the range and the hours of day).
  std::vector<std::string> missing;
  WeatherStatistics forcing_stats;
  for (const std::string& f : weather_forcings()) {
    try {
      const WeatherStatistics one = load_weather_statistics(d, {f});
      task.forcing_mean.push_back(one.mean.at(f)[0]);
      task.forcing_stddev.push_back(one.stddev.at(f)[0]);
    } catch (const WeatherDataError&) {
      task.forcing_mean.push_back(NAN);
      task.forcing_stddev.push_back(NAN);
      missing.push_back(f);
    }
  }
  if (!missing.empty()) {
    std::vector<int64_t> times;
    const int64_t n = std::min<int64_t>(24, task.train.count());
    for (int64_t i = 0; i < n; ++i)
      times.push_back(std::min(task.train.last, task.train.first + i * task.train.count() / n + i % 4));
    std::vector<float> toa(static_cast<size_t>(times.size() * d.nodes()));
    task.toa_radiation(times, toa.data());
    std::vector<double> sum(5, 0.0), sum2(5, 0.0);
    double count = 0;
    std::vector<float> f(static_cast<size_t>(d.nodes() * 5));
    WeatherTask raw = task;  // forcing_inputs with mean 0, stddev 1
    raw.forcing_mean.assign(5, 0.0);
    raw.forcing_stddev.assign(5, 1.0);
    for (size_t k = 0; k < times.size(); ++k) {
      raw.forcing_inputs(times[k], toa.data() + k * static_cast<size_t>(d.nodes()), f.data());
      for (int64_t i = 0; i < d.nodes(); ++i)
        for (int c = 0; c < 5; ++c) {
          const double x = f[static_cast<size_t>(i * 5 + c)];
          sum[static_cast<size_t>(c)] += x;
          sum2[static_cast<size_t>(c)] += x * x;
        }
      count += static_cast<double>(d.nodes());
    }
    for (size_t c = 0; c < 5; ++c) {
      if (!std::isnan(task.forcing_mean[c])) continue;
      const double m = sum[c] / count;
      task.forcing_mean[c] = m;
      task.forcing_stddev[c] = std::sqrt(std::max(1e-12, sum2[c] / count - m * m));
    }
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    task.notes.push_back("statistics of " + list + " computed over " + std::to_string(times.size()) +
                         " training times (not in " + d.statistics_path + ")");
  }

  // Static inputs, normalized.
  if (!task.statics.empty()) {
    std::map<std::string, std::vector<float>> fields;
    try {
      fields = load_weather_static(d);
    } catch (const WeatherDataError& e) {
      throw UsageError(e.what());
    }
    const size_t S = task.statics.size();
    task.static_inputs.resize(static_cast<size_t>(d.nodes()) * S);
    for (size_t s = 0; s < S; ++s) {
      const std::vector<float>& x = fields.at(task.statics[s]);
      const double m = stats.mean.at(task.statics[s])[0], sd = stats.stddev.at(task.statics[s])[0];
      for (size_t i = 0; i < x.size(); ++i) task.static_inputs[i * S + s] = static_cast<float>((x[i] - m) / sd);
    }
  }
  task.latitude_weight = deepmind_latitude_weights(d.latitudes_deg);
  return task;
}

Batch assemble_weather_batch(const WeatherTask& task, const std::vector<int64_t>& starts, int steps, const float* frames,
                             const float* toa, DType compute_dtype, Device device) {
  const WeatherDataset& d = *task.data;
  const int64_t C = task.channels(), P = task.fed_back, nodes = d.nodes(), B = static_cast<int64_t>(starts.size());
  const int64_t rows = B * nodes, per_sample = steps + 2, X = task.extra_channels();
  const size_t S = task.statics.size();
  MemoryScope scope(Category::input, "batch");
  // Frame f (0 = t-1) of sample b at node i, data channel ch.
  auto value = [&](int64_t b, int64_t f, int64_t i, int64_t c) {
    return static_cast<double>(
        frames[((b * per_sample + f) * nodes + i) * d.channels + task.state_channels[static_cast<size_t>(c)]]);
  };
  // The forcings and static columns of step k (forcings at t+k-1, t+k, t+k+1).
  std::vector<float> forcing(static_cast<size_t>(nodes * 5));
  auto fill_extra = [&](HostValues& v, int64_t k, int64_t column0, int64_t width) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t f = k + j;  // frame index within the sample
        task.forcing_inputs(starts[static_cast<size_t>(b)] - 1 + f, toa + (b * per_sample + f) * nodes, forcing.data());
        for (int64_t i = 0; i < nodes; ++i)
          for (int64_t q = 0; q < 5; ++q)
            v[static_cast<size_t>((b * nodes + i) * width + column0 + j * 5 + q)] = forcing[static_cast<size_t>(i * 5 + q)];
      }
      for (int64_t i = 0; i < nodes; ++i)
        for (size_t s = 0; s < S; ++s)
          v[static_cast<size_t>((b * nodes + i) * width + column0 + 15 + static_cast<int64_t>(s))] =
              task.static_inputs[static_cast<size_t>(i) * S + s];
    }
  };
  Batch batch;
  const int64_t width = 2 * P + X;
  batch.input = host_filled({rows, width}, compute_dtype, device, [&](HostValues& v) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < nodes; ++i)
        for (int64_t f = 0; f < 2; ++f)
          for (int64_t c = 0; c < P; ++c)
            v[static_cast<size_t>((b * nodes + i) * width + f * P + c)] =
                (value(b, f, i, c) - task.mean[static_cast<size_t>(c)]) / task.stddev[static_cast<size_t>(c)];
    fill_extra(v, 0, 2 * P, width);
  });
  // Frame f of every sample: as the state ([rows, C], state units) or as an input ([rows, P]).
  auto frame_tensor = [&](int64_t f, DType dtype, bool as_input) {
    const int64_t n = as_input ? P : C;
    return host_filled({rows, n}, dtype, device, [&](HostValues& v) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < nodes; ++i)
          for (int64_t c = 0; c < n; ++c) {
            const double x = value(b, f, i, c) - task.mean[static_cast<size_t>(c)];
            v[static_cast<size_t>((b * nodes + i) * n + c)] =
                x / (as_input ? task.stddev[static_cast<size_t>(c)] : task.state_scale[static_cast<size_t>(c)]);
          }
    });
  };
  batch.state = frame_tensor(1, DType::f32, false);
  batch.previous_input = frame_tensor(1, compute_dtype, true);
  for (int k = 0; k < steps; ++k) batch.targets.push_back(frame_tensor(k + 2, DType::f32, false));
  for (int k = 1; k < steps; ++k)
    batch.extra_inputs.push_back(host_filled({rows, X}, compute_dtype, device, [&](HostValues& v) { fill_extra(v, k, 0, X); }));
  return batch;
}

}  // namespace gc::data
