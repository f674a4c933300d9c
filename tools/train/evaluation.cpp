// evaluation.cpp: evaluation on the held-out (test) trajectories: the model
// rolled out autoregressively from 6 h to 48 h, against persistence (the last
// input frame) and climatology (the mean of the training frames per grid point),
// with latitude-weighted RMSE (sqrt of the case-mean weighted MSE) and ACC
// (per case, then averaged), the WeatherBench 2 / GraphCast conventions.
#include <cmath>

#include "autograd/ops.h"
#include "tools/train/rollout.h"
#include "tools/train/trainer.h"

namespace gc {

EvalResult Trainer::evaluate() {
  EvalResult result;
  if (weather() && options_.device != Device::meta) return evaluate_weather();
  if (!data() || options_.device == Device::meta) return result;
  NoGradGuard no_grad;
  const data::SweDataset& d = *data();
  const int C = data::kSweChannels;
  const int leads = std::min(8, d.frames() - 2);
  for (int k = 1; k <= leads; ++k) result.lead_hours.push_back(6 * k);
  for (int c = 0; c < C; ++c) result.variables.push_back(data::swe_channel_name(c));
  std::vector<std::pair<int, int>> cases;
  const int first = d.first_trajectory(data::SweSplit::test);
  const int count = d.split_trajectories(data::SweSplit::test);
  for (int traj = first; traj < first + count; ++traj)
    for (int t = 1; t + leads <= d.frames() - 1; t += 4) cases.push_back({traj, t});
  const int64_t nodes = geometry().num_grid_nodes();
  const model::Grid& g = geometry().grid;
  std::vector<double> w(static_cast<size_t>(nodes));
  double wsum = 0;
  for (int64_t i = 0; i < nodes; ++i) {
    w[static_cast<size_t>(i)] = g.row_weight[static_cast<size_t>(i / g.num_lon())];
    wsum += w[static_cast<size_t>(i)];
  }
  auto zeros = [&]() { return std::vector<std::vector<double>>(C, std::vector<double>(static_cast<size_t>(leads), 0.0)); };
  auto mse_model = zeros(), mse_persist = zeros(), mse_clim = zeros(), acc = zeros();
  auto predict_step = [this](int, const Var& input) { return predict(input); };
  const int B = options_.batch;
  int used = 0;
  for (size_t start = 0; start + static_cast<size_t>(B) <= cases.size(); start += static_cast<size_t>(B)) {
    std::vector<data::Sample> batch_cases(cases.begin() + static_cast<long>(start),
                                          cases.begin() + static_cast<long>(start) + B);
    const data::Batch batch = batch_of(batch_cases);
    roll_out(batch, leads, state_to_input_, config_.compute_dtype, predict_step, [&](int k, const Var& state) {
      const std::vector<double> s = state.value().to_doubles();
      for (int b = 0; b < B; ++b) {
        const auto [traj, t] = batch_cases[static_cast<size_t>(b)];
        const float* truth = d.frame(traj, t + k + 1);
        const float* last_input = d.frame(traj, t);
        for (int c = 0; c < C; ++c) {
          double se_m = 0, se_p = 0, se_c = 0, fc = 0, ff = 0, oo = 0;
          for (int64_t i = 0; i < nodes; ++i) {
            const size_t idx = static_cast<size_t>(i * C + c);
            const double wi = w[static_cast<size_t>(i)];
            const double pred = norm_.physical(s[static_cast<size_t>((b * nodes + i) * C + c)], c);
            const double obs = truth[idx];
            const double clim = norm_.climatology[idx];
            se_m += wi * (pred - obs) * (pred - obs);
            se_p += wi * (last_input[idx] - obs) * (last_input[idx] - obs);
            se_c += wi * (clim - obs) * (clim - obs);
            fc += wi * (pred - clim) * (obs - clim);
            ff += wi * (pred - clim) * (pred - clim);
            oo += wi * (obs - clim) * (obs - clim);
          }
          mse_model[static_cast<size_t>(c)][static_cast<size_t>(k)] += se_m / wsum;
          mse_persist[static_cast<size_t>(c)][static_cast<size_t>(k)] += se_p / wsum;
          mse_clim[static_cast<size_t>(c)][static_cast<size_t>(k)] += se_c / wsum;
          acc[static_cast<size_t>(c)][static_cast<size_t>(k)] += (ff > 0 && oo > 0) ? fc / std::sqrt(ff * oo) : 0.0;
        }
      }
    });
    used += B;
  }
  result.cases = used;
  auto finish = [&](std::vector<std::vector<double>>& m, bool root) {
    for (auto& row : m)
      for (double& v : row) v = used > 0 ? (root ? std::sqrt(v / used) : v / used) : 0.0;
    return m;
  };
  result.rmse_model = finish(mse_model, true);
  result.rmse_persistence = finish(mse_persist, true);
  result.rmse_climatology = finish(mse_clim, true);
  result.acc_model = finish(acc, false);
  return result;
}

std::vector<std::vector<float>> Trainer::forecast(int trajectory, int start_frame, int leads) {
  std::vector<std::vector<float>> out;
  if (!data() || options_.device == Device::meta) return out;
  NoGradGuard no_grad;
  const int C = data::kSweChannels;
  const int64_t nodes = geometry().num_grid_nodes();
  const std::vector<data::Sample> cases(static_cast<size_t>(options_.batch), {trajectory, start_frame});
  const data::Batch batch = batch_of(cases);
  auto predict_step = [this](int, const Var& input) { return predict(input); };
  roll_out(batch, leads, state_to_input_, config_.compute_dtype, predict_step, [&](int, const Var& state) {
    const std::vector<double> s = state.value().to_doubles();
    std::vector<float> field(static_cast<size_t>(nodes * C));
    for (int64_t i = 0; i < nodes * C; ++i)
      field[static_cast<size_t>(i)] = static_cast<float>(norm_.physical(s[static_cast<size_t>(i)], static_cast<int>(i % C)));
    out.push_back(std::move(field));
  });
  return out;
}

}  // namespace gc
