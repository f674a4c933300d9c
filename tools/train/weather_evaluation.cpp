// weather_evaluation.cpp: scores on weather data (--data) as WeatherBench2 reports
// them: latitude-weighted RMSE of the model, of persistence (the last input frame)
// and of climatology (the mean of the training times per grid point), and the
// model's ACC (anomalies from that climatology, per case, then averaged), by lead
// time from 6 h, for the headline variables the data holds (z500, t850, t2m,
// u10, v10, q700, named so; the first channels when it holds none of them). Cases start
// in the validation times, spread evenly over them.
#include <cmath>

#include "autograd/ops.h"
#include "tools/train/rollout.h"
#include "tools/train/trainer.h"

namespace gc {

namespace {

// The headline variables and WeatherBench2's short names for them.
const std::pair<const char*, const char*> kHeadline[] = {
    {"geopotential@500", "z500"}, {"temperature@850", "t850"}, {"2m_temperature", "t2m"},
    {"10m_u_component_of_wind", "u10"}, {"10m_v_component_of_wind", "v10"}, {"specific_humidity@700", "q700"}};

// The channels scored: the headline variables present, in WeatherBench2's order.
std::vector<int64_t> scored_channels(const data::WeatherTask& w) {
  std::vector<int64_t> out;
  for (const auto& h : kHeadline)
    for (int64_t c = 0; c < w.channels(); ++c)
      if (w.state_names[static_cast<size_t>(c)] == h.first) out.push_back(c);
  for (int64_t c = 0; out.empty() && c < std::min<int64_t>(6, w.channels()); ++c) out.push_back(c);
  return out;
}

std::string short_name(const std::string& name) {
  for (const auto& h : kHeadline)
    if (name == h.first) return h.second;
  return name;
}

}  // namespace

EvalResult Trainer::evaluate_weather() {
  EvalResult result;
  const data::WeatherTask& w = *weather();
  const data::WeatherDataset& d = *w.data;
  const int leads = static_cast<int>(std::min<int64_t>(8, w.valid.count() - 2));
  if (leads < 1) return result;
  std::vector<int64_t> starts = w.sample_starts(w.valid, leads);
  const int B = options_.batch;
  const size_t max_cases = 16;
  if (starts.size() > max_cases) {
    std::vector<int64_t> spread;
    for (size_t i = 0; i < max_cases; ++i) spread.push_back(starts[i * starts.size() / max_cases]);
    starts = spread;
  }
  starts.resize(starts.size() / static_cast<size_t>(B) * static_cast<size_t>(B));
  if (starts.empty()) return result;
  NoGradGuard no_grad;
  const std::vector<int64_t> channels = scored_channels(w);
  const size_t V = channels.size();
  for (int k = 1; k <= leads; ++k) result.lead_hours.push_back(6 * k);
  for (int64_t c : channels) {
    const std::string& name = w.state_names[static_cast<size_t>(c)];
    result.variables.push_back(short_name(name));
    result.units.push_back(d.find(name.substr(0, name.find('@')))->units);
  }

  const int64_t nodes = d.nodes(), F = d.frame_values();
  std::vector<float> frame(static_cast<size_t>(F));
  // Climatology of the training times per node and scored channel: at most ~200
  // times, a stride that is not a multiple of 4 so that every hour of day is in it.
  std::vector<double> clim(static_cast<size_t>(nodes) * V, 0.0);
  int64_t stride = std::max<int64_t>(1, w.train.count() / 200);
  if (stride % 4 == 0) ++stride;
  int64_t clim_frames = 0;
  for (int64_t t = w.train.first; t <= w.train.last; t += stride, ++clim_frames) {
    d.read_frame(t, frame.data());
    for (int64_t i = 0; i < nodes; ++i)
      for (size_t v = 0; v < V; ++v)
        clim[static_cast<size_t>(i) * V + v] += frame[static_cast<size_t>(i * d.channels + w.state_channels[static_cast<size_t>(channels[v])])];
  }
  for (double& x : clim) x /= static_cast<double>(clim_frames);

  const model::Grid& g = geometry().grid;
  std::vector<double> weight(static_cast<size_t>(nodes));
  double wsum = 0;
  for (int64_t i = 0; i < nodes; ++i) wsum += weight[static_cast<size_t>(i)] = g.row_weight[static_cast<size_t>(i / g.num_lon())];
  auto zeros = [&]() { return std::vector<std::vector<double>>(V, std::vector<double>(static_cast<size_t>(leads), 0.0)); };
  auto mse_model = zeros(), mse_persist = zeros(), mse_clim = zeros(), acc = zeros();
  auto predict_step = [this](int, const Var& input) { return predict(input); };
  const int64_t per_sample = leads + 2;
  std::vector<float> frames(static_cast<size_t>(B * per_sample * F)), toa(static_cast<size_t>(B * per_sample * nodes));
  for (size_t first = 0; first < starts.size(); first += static_cast<size_t>(B)) {
    const std::vector<int64_t> cases(starts.begin() + static_cast<long>(first), starts.begin() + static_cast<long>(first) + B);
    const std::vector<int64_t> times = data::WeatherTask::frames_of(cases, leads);
    for (size_t f = 0; f < times.size(); ++f) d.read_frame(times[f], frames.data() + f * static_cast<size_t>(F));
    w.toa_radiation(times, toa.data());
    const data::Batch batch =
        data::assemble_weather_batch(w, cases, leads, frames.data(), toa.data(), config_.compute_dtype, options_.device);
    roll_out(batch, leads, state_to_input_, config_.compute_dtype, predict_step, [&](int k, const Var& state) {
      const std::vector<double> s = state.value().to_doubles();
      for (int b = 0; b < B; ++b) {
        const float* last_input = frames.data() + (static_cast<int64_t>(b) * per_sample + 1) * F;
        const float* truth = frames.data() + (static_cast<int64_t>(b) * per_sample + k + 2) * F;
        for (size_t v = 0; v < V; ++v) {
          const int64_t c = channels[v], ch = w.state_channels[static_cast<size_t>(c)];
          double se_m = 0, se_p = 0, se_c = 0, fc = 0, ff = 0, oo = 0;
          for (int64_t i = 0; i < nodes; ++i) {
            const double wi = weight[static_cast<size_t>(i)];
            const double pred = w.mean[static_cast<size_t>(c)] +
                                s[static_cast<size_t>((b * nodes + i) * w.channels() + c)] * w.state_scale[static_cast<size_t>(c)];
            const double obs = truth[i * d.channels + ch], last = last_input[i * d.channels + ch];
            const double cl = clim[static_cast<size_t>(i) * V + v];
            se_m += wi * (pred - obs) * (pred - obs);
            se_p += wi * (last - obs) * (last - obs);
            se_c += wi * (cl - obs) * (cl - obs);
            fc += wi * (pred - cl) * (obs - cl);
            ff += wi * (pred - cl) * (pred - cl);
            oo += wi * (obs - cl) * (obs - cl);
          }
          mse_model[v][static_cast<size_t>(k)] += se_m / wsum;
          mse_persist[v][static_cast<size_t>(k)] += se_p / wsum;
          mse_clim[v][static_cast<size_t>(k)] += se_c / wsum;
          acc[v][static_cast<size_t>(k)] += (ff > 0 && oo > 0) ? fc / std::sqrt(ff * oo) : 0.0;
        }
      }
    }, keep_state_.defined() ? &keep_state_ : nullptr, w.fed_back);
  }
  const double used = static_cast<double>(starts.size());
  result.cases = static_cast<int>(starts.size());
  auto finish = [&](std::vector<std::vector<double>>& m, bool root) {
    for (auto& row : m)
      for (double& v : row) v = root ? std::sqrt(v / used) : v / used;
    return m;
  };
  result.rmse_model = finish(mse_model, true);
  result.rmse_persistence = finish(mse_persist, true);
  result.rmse_climatology = finish(mse_clim, true);
  result.acc_model = finish(acc, false);
  return result;
}

}  // namespace gc
