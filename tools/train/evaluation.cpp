// evaluation.cpp: evaluation on the held-out (test) trajectories: the model
// rolled out autoregressively from 6 h to 48 h, against persistence (the last
// input frame) and climatology (the mean of the training frames per grid point),
// with latitude-weighted RMSE (sqrt of the case-mean weighted MSE) and ACC
// (per case, then averaged), the WeatherBench 2 / GraphCast conventions.
#include <cmath>

#include "autograd/ops.h"
#include "tools/train/trainer.h"

namespace gc {

namespace {

// An autoregressive rollout of `leads` steps from (state, previous, input): each
// step adds predict(input) to the state and hands the state's values to
// visit(k, values); every step but the last feeds the state back as the next
// input (feed_back(state, &previous, &input)).
template <class Predict, class FeedBack, class Visit>
void roll_out(Var state, Var previous, Var input, int leads, const Predict& predict, const FeedBack& feed_back,
              const Visit& visit) {
  for (int k = 0; k < leads; ++k) {
    state = add(state, predict(input));
    visit(k, state.value().to_doubles());
    if (k + 1 < leads) feed_back(state, &previous, &input);
  }
}

}  // namespace

EvalResult Trainer::evaluate() {
  EvalResult result;
  if (!data_ || options_.device == Device::meta) return result;
  NoGradGuard no_grad;
  const data::SweDataset& d = *data_;
  const int C = data::kSweChannels;
  const int leads = std::min(8, d.frames() - 2);
  for (int k = 1; k <= leads; ++k) result.lead_hours.push_back(6 * k);
  for (int c = 0; c < C; ++c) result.variables.push_back(data::swe_channel_name(c));
  std::vector<std::pair<int, int>> cases;
  const int first = d.first_trajectory(data::SweSplit::test);
  const int count = d.split_trajectories(data::SweSplit::test);
  for (int traj = first; traj < first + count; ++traj)
    for (int t = 1; t + leads <= d.frames() - 1; t += 4) cases.push_back({traj, t});
  const int64_t nodes = geometry_.num_grid_nodes();
  const model::Grid& g = geometry_.grid;
  std::vector<double> w(static_cast<size_t>(nodes));
  double wsum = 0;
  for (int64_t i = 0; i < nodes; ++i) {
    w[static_cast<size_t>(i)] = g.row_weight[static_cast<size_t>(i / g.num_lon())];
    wsum += w[static_cast<size_t>(i)];
  }
  auto zeros = [&]() { return std::vector<std::vector<double>>(C, std::vector<double>(static_cast<size_t>(leads), 0.0)); };
  auto mse_model = zeros(), mse_persist = zeros(), mse_clim = zeros(), acc = zeros();
  auto predict = [this](const Var& x) { return net_->forward(x, device_geometry_, plan_); };
  auto feed = [this](const Var& state, Var* previous, Var* input) { feed_back(state, previous, input); };
  const int B = options_.batch;
  int used = 0;
  for (size_t start = 0; start + static_cast<size_t>(B) <= cases.size(); start += static_cast<size_t>(B)) {
    std::vector<std::pair<int, int>> batch_cases(cases.begin() + static_cast<long>(start),
                                                 cases.begin() + static_cast<long>(start) + B);
    Batch batch;
    fill_demo_batch(&batch, batch_cases);
    roll_out(Var(batch.state), Var(batch.previous_normalized), Var(batch.input), leads, predict, feed,
             [&](int k, const std::vector<double>& s) {
      for (int b = 0; b < B; ++b) {
        const auto [traj, t] = batch_cases[static_cast<size_t>(b)];
        const float* truth = d.frame(traj, t + k + 1);
        const float* last_input = d.frame(traj, t);
        for (int c = 0; c < C; ++c) {
          double se_m = 0, se_p = 0, se_c = 0, fc = 0, ff = 0, oo = 0;
          for (int64_t i = 0; i < nodes; ++i) {
            const size_t idx = static_cast<size_t>(i * C + c);
            const double wi = w[static_cast<size_t>(i)];
            const double pred = mean_[static_cast<size_t>(c)] +
                                s[static_cast<size_t>((b * nodes + i) * C + c)] * diff_std_[static_cast<size_t>(c)];
            const double obs = truth[idx];
            const double clim = climatology_[idx];
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

}  // namespace gc

namespace gc {

std::vector<std::vector<float>> Trainer::forecast(int trajectory, int start_frame, int leads) {
  std::vector<std::vector<float>> out;
  if (!data_ || options_.device == Device::meta) return out;
  NoGradGuard no_grad;
  const int C = data::kSweChannels;
  const int64_t nodes = geometry_.num_grid_nodes();
  std::vector<std::pair<int, int>> cases(static_cast<size_t>(options_.batch), {trajectory, start_frame});
  Batch batch;
  fill_demo_batch(&batch, cases);
  auto predict = [this](const Var& x) { return net_->forward(x, device_geometry_, plan_); };
  auto feed = [this](const Var& state, Var* previous, Var* input) { feed_back(state, previous, input); };
  roll_out(Var(batch.state), Var(batch.previous_normalized), Var(batch.input), leads, predict, feed,
           [&](int, const std::vector<double>& s) {
    std::vector<float> field(static_cast<size_t>(nodes * C));
    for (int64_t i = 0; i < nodes * C; ++i)
      field[static_cast<size_t>(i)] = static_cast<float>(mean_[static_cast<size_t>(i % C)] +
                                                         s[static_cast<size_t>(i)] * diff_std_[static_cast<size_t>(i % C)]);
    out.push_back(std::move(field));
  });
  return out;
}

}  // namespace gc
