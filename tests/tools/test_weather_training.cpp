// test_weather_training.cpp: GraphCast's task on weather data (--data,
// tools/data/weather_task.h) on the committed fixture tests/data/weather/
// (8 six-hourly times from 2015-12-31T00, 10 x 18 with poles, levels 500/850/1000).
//
// The loss the trainer computes (weighted_mse with the grid's row weights and the
// task's column weights) must equal DeepMind's losses.weighted_mse_per_level
// written out directly in f64; the batch's columns must be the frames, forcings
// and static fields normalized by hand; the time splits must follow the dates;
// a training run must make the same allocator requests on meta as on the cpu,
// resume bit for bit, and have its data reader's host bytes accounted.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "model/grid.h"
#include "runtime/allocator.h"
#include "tests/test_util.h"
#include "tools/data/solar.h"
#include "tools/data/weather_task.h"
#include "tools/train/rollout.h"
#include "tools/train/setup.h"
#include "tools/train/trainer.h"
#include "tools/usage_error.h"

using namespace gc;

namespace {

const char* kFixture = "tests/data/weather";

TrainOptions weather_options(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--data", kFixture, "--mesh", "1", "--latent", "8", "--layers", "2",
                                   "--steps", "4", "--rollout", "1", "--quiet", "--no-eval", "--lr", "1e-3"};
  args.insert(args.end(), extra.begin(), extra.end());
  TrainOptions o;
  std::string help;
  EXPECT_TRUE(parse_train_options(args, &o, &help));
  return o;
}

std::shared_ptr<const data::WeatherDataset> fixture() {
  return std::make_shared<const data::WeatherDataset>(data::open_weather_dataset(kFixture));
}

}  // namespace

TEST(WeatherTask, TimeRangesFollowTheDates) {
  const auto d = fixture();  // 2015-12-31T00 .. 2016-01-01T18
  auto range = [&](const std::string& s) {
    const data::TimeRange r = data::parse_time_range(*d, s, "--x");
    return std::vector<int64_t>{r.first, r.last};
  };
  EXPECT_EQ(range("2015"), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(range("2016"), (std::vector<int64_t>{4, 7}));
  EXPECT_EQ(range("1979-2015"), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(range("2015-12-31..2016-01-01T06"), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(range("2015-12-31T06..2015-12-31"), (std::vector<int64_t>{1, 3}));  // a date alone ends at 18 UTC
  EXPECT_THROW(data::parse_time_range(*d, "2017", "--x"), UsageError);
  EXPECT_THROW(data::parse_time_range(*d, "20x6", "--x"), UsageError);
  EXPECT_THROW(data::parse_time_range(*d, "2016-2015", "--x"), UsageError);
  EXPECT_THROW(data::parse_time_range(*d, "2016-01-01..", "--x"), UsageError);
  const data::WeatherTask task = data::make_weather_task(d, "2015", "2016");
  EXPECT_EQ(task.sample_starts(task.train, 1), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(task.sample_starts(task.valid, 2), (std::vector<int64_t>{5}));
  EXPECT_THROW(data::make_weather_task(d, "2015-12-31..2016-01-01", "2016"), UsageError);  // overlap
}

TEST(WeatherTask, LatitudeWeightsAreDeepMinds) {
  // With poles: the equiangular grid's cell areas (model/grid.h computes them its own way).
  const model::Grid g = model::make_equiangular_grid(10.0);
  const std::vector<double> w = data::deepmind_latitude_weights(g.latitude_deg);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], g.row_weight[i], 1e-12) << i;
  // Without poles (WeatherBench2's 64 x 32): cos(lat) / its mean.
  std::vector<double> lat;
  for (int i = 0; i < 32; ++i) lat.push_back(87.1875 - 5.625 * i);
  const std::vector<double> v = data::deepmind_latitude_weights(lat);
  double mean = 0;
  for (double x : lat) mean += std::cos(x * M_PI / 180) / 32;
  for (size_t i = 0; i < lat.size(); ++i) EXPECT_NEAR(v[i], std::cos(lat[i] * M_PI / 180) / mean, 1e-12);
  EXPECT_THROW(data::deepmind_latitude_weights({80.0, 10.0, -60.0}), UsageError);
}

// losses.weighted_mse_per_level, written out: for each target variable, the mean over
// (lat, lon, level) of (prediction - target)^2 x latitude weight x level weight, then the
// sum over variables with DeepMind's per-variable weights.
TEST(WeatherTask, LossIsDeepMindsWeightedMsePerLevel) {
  const auto d = fixture();
  const data::WeatherTask task = data::make_weather_task(d, "", "");
  const int64_t nodes = d->nodes(), C = task.channels(), n_lon = d->n_lon();
  ASSERT_EQ(C, 9);  // 8 state channels, then total_precipitation_6hr (a target only)
  ASSERT_EQ(task.fed_back, 8);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  std::vector<double> pred(static_cast<size_t>(nodes * C)), target(pred.size());
  for (double& x : pred) x = normal(rng);
  for (double& x : target) x = normal(rng);

  // Direct: latitude weights from their definition, level weights pressure / mean pressure.
  const double delta = 20.0 * M_PI / 180;
  std::vector<double> lat_w(static_cast<size_t>(d->n_lat()));
  double lat_mean = 0;
  for (size_t i = 0; i < lat_w.size(); ++i) {
    const double lat = d->latitudes_deg[i];
    lat_w[i] = std::fabs(std::fabs(lat) - 90) < 1e-9 ? std::pow(std::sin(delta / 4), 2)
                                                     : std::cos(lat * M_PI / 180) * std::sin(delta / 2);
    lat_mean += lat_w[i] / static_cast<double>(lat_w.size());
  }
  const double levels[3] = {500, 850, 1000}, level_mean = (500 + 850 + 1000) / 3.0;
  struct Target { const char* name; int first, levels; double weight; };
  const Target vars[] = {{"geopotential", 0, 3, 1.0}, {"temperature", 3, 3, 1.0}, {"2m_temperature", 6, 1, 1.0},
                      {"10m_u_component_of_wind", 7, 1, 0.1}, {"total_precipitation_6hr", 8, 1, 0.1}};
  double direct = 0;
  for (const Target& v : vars) {
    double sum = 0;
    for (int64_t i = 0; i < nodes; ++i)
      for (int l = 0; l < v.levels; ++l) {
        const size_t k = static_cast<size_t>(i * C + v.first + l);
        const double level_w = v.levels > 1 ? levels[l] / level_mean : 1.0;
        sum += (pred[k] - target[k]) * (pred[k] - target[k]) * lat_w[static_cast<size_t>(i / n_lon)] / lat_mean * level_w;
      }
    direct += v.weight * sum / static_cast<double>(nodes * v.levels);
  }

  // The trainer's: weighted_mse with the grid's row weights and the task's column weights.
  TrainOptions o = weather_options();
  const RunSetup setup = prepare_run(o);
  const model::Grid& g = setup.geometry->grid;
  std::vector<double> rows(static_cast<size_t>(nodes));
  for (int64_t i = 0; i < nodes; ++i) rows[static_cast<size_t>(i)] = g.row_weight[static_cast<size_t>(i / n_lon)];
  for (DType dtype : {DType::f64, DType::f32}) {
    const DType wdtype = dtype == DType::f64 ? DType::f64 : DType::f32;
    Var p(Tensor::from_doubles(pred, {nodes, C}, dtype));
    const Tensor t = Tensor::from_doubles(target, {nodes, C}, DType::f32 == dtype ? DType::f32 : DType::f64);
    const Var loss = weighted_mse(p, t, Tensor::from_doubles(rows, {nodes}, wdtype),
                                  Tensor::from_doubles(setup.weather->column_weight, {C}, wdtype));
    const double got = loss.value().to_doubles()[0];
    EXPECT_NEAR(got, direct, (dtype == DType::f64 ? 1e-13 : 1e-5) * direct) << dtype_name(dtype);
  }
}

TEST(WeatherTask, BatchColumnsAreTheNormalizedFramesForcingsAndStatics) {
  const auto d = fixture();
  const data::WeatherTask task = data::make_weather_task(d, "2015", "2016");
  const int steps = 2;
  const std::vector<int64_t> starts = {1, 2};
  const std::vector<int64_t> times = data::WeatherTask::frames_of(starts, steps);
  ASSERT_EQ(times, (std::vector<int64_t>{0, 1, 2, 3, 1, 2, 3, 4}));
  const int64_t nodes = d->nodes(), F = d->frame_values(), C = task.channels(), P = task.fed_back,
                X = task.extra_channels();
  ASSERT_EQ(P, C - 1);  // precipitation: an output, not an input
  std::vector<float> frames(times.size() * static_cast<size_t>(F)), toa(times.size() * static_cast<size_t>(nodes));
  for (size_t f = 0; f < times.size(); ++f) d->read_frame(times[f], frames.data() + f * static_cast<size_t>(F));
  task.toa_radiation(times, toa.data());
  const data::Batch b = data::assemble_weather_batch(task, starts, steps, frames.data(), toa.data(), DType::f32, Device::cpu);
  ASSERT_EQ(b.input.shape(), (Shape{2 * nodes, 2 * P + X}));
  ASSERT_EQ(b.state.shape(), (Shape{2 * nodes, C}));
  ASSERT_EQ(b.targets.size(), 2u);
  ASSERT_EQ(b.extra_inputs.size(), 1u);
  const std::vector<double> in = b.input.to_doubles(), state = b.state.to_doubles(), target1 = b.targets[1].to_doubles(),
                            extra = b.extra_inputs[0].to_doubles();
  std::vector<float> frame(static_cast<size_t>(F));
  const int64_t sample = 1, node = 37, width = 2 * P + X;
  const int64_t row = sample * nodes + node;
  for (int64_t c = 0; c < C; ++c) {
    const size_t mc = static_cast<size_t>(c);
    d->read_frame(2, frame.data());  // sample 1 starts at t = 2: inputs 1, 2
    const double x_t = frame[static_cast<size_t>(node * d->channels + task.state_channels[mc])];
    d->read_frame(1, frame.data());
    const double x_prev = frame[static_cast<size_t>(node * d->channels + task.state_channels[mc])];
    d->read_frame(4, frame.data());
    const double x_target = frame[static_cast<size_t>(node * d->channels + task.state_channels[mc])];
    // State units: residual channels in diffs_stddev, precipitation (predicted directly) in stddev.
    const double unit = c < P ? task.diffs_stddev[mc] : task.stddev[mc];
    EXPECT_EQ(task.state_scale[mc], unit);
    if (c < P) {
      EXPECT_NEAR(in[static_cast<size_t>(row * width + c)], (x_prev - task.mean[mc]) / task.stddev[mc], 1e-6);
      EXPECT_NEAR(in[static_cast<size_t>(row * width + P + c)], (x_t - task.mean[mc]) / task.stddev[mc], 1e-6);
    }
    EXPECT_NEAR(state[static_cast<size_t>(row * C + c)], (x_t - task.mean[mc]) / unit, 1e-5);
    EXPECT_NEAR(target1[static_cast<size_t>(row * C + c)], (x_target - task.mean[mc]) / unit, 1e-5);
  }
  // Forcings at t-1, t, t+1 of step 0 (times 1, 2, 3) and of step 1 (2, 3, 4), and the statics.
  const double lat = d->latitudes_deg[static_cast<size_t>(node / d->n_lon())];
  const double lon = d->longitudes_deg[static_cast<size_t>(node % d->n_lon())];
  for (int j = 0; j < 3; ++j) {
    for (int step = 0; step < 2; ++step) {
      const int64_t t = 1 + step + j, s = d->time_seconds(t);
      const double radiation = data::toa_incident_solar_radiation({s}, {lat}, {lon})[0];
      const data::ProgressFeatures year = data::progress_features(data::year_progress(s));
      const data::ProgressFeatures day = data::progress_features(data::day_progress(s, lon));
      const double raw[5] = {radiation, year.sin, year.cos, day.sin, day.cos};
      for (int f = 0; f < 5; ++f) {
        const double want = (raw[f] - task.forcing_mean[static_cast<size_t>(f)]) / task.forcing_stddev[static_cast<size_t>(f)];
        const double got = step == 0 ? in[static_cast<size_t>(row * width + 2 * P + j * 5 + f)]
                                     : extra[static_cast<size_t>(row * X + j * 5 + f)];
        EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, std::fabs(want))) << "step " << step << " frame " << j << " forcing " << f;
      }
    }
  }
  for (size_t s = 0; s < task.statics.size(); ++s)
    EXPECT_EQ(in[static_cast<size_t>(row * width + 2 * P + 15) + s],
              static_cast<double>(task.static_inputs[static_cast<size_t>(node) * task.statics.size() + s]));
}

TEST(WeatherTraining, MetaEqualsCpuAndTheReaderIsAccounted) {
  TrainOptions o = weather_options({"--rollout", "2", "--batch", "2"});
  // Both allocators start empty, as a process does (earlier tests may leave cached segments).
  allocator_for(Device::cpu).empty_cache();
  allocator_for(Device::meta).empty_cache();
  Trainer cpu(prepare_run(o));
  cpu.train();
  for (const StepRecord& r : cpu.history()) EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_GT(cpu.host_data_bytes(), 0);
  // 3 buffers of 2 samples x 4 frames x (180 nodes x 9 channels + 180 TOA values), f32.
  EXPECT_EQ(cpu.host_data_bytes(), 3 * 2 * 4 * (180 * 9 + 180) * 4);
  o.device = Device::meta;
  o.meta_target = Device::cpu;
  Trainer meta(prepare_run(o));
  meta.train();
  EXPECT_EQ(meta.memory().stats.peak_allocated, cpu.memory().stats.peak_allocated);
  EXPECT_EQ(meta.memory().stats.peak_reserved, cpu.memory().stats.peak_reserved);
  set_meta_target(Device::cuda);
}

TEST(WeatherTraining, ResumeContinuesBitwise) {
  const std::string dir = test::scratch_folder("weather_resume");
  TrainOptions o = weather_options({"--steps", "6", "--lr", "3e-3", "--warmup", "1"});
  Trainer whole(prepare_run(o));
  whole.train();
  Trainer first(prepare_run(o));
  first.train(3);
  first.save_checkpoint(dir);
  Trainer second(prepare_run(o));
  second.load_checkpoint(dir);
  second.train();
  ASSERT_EQ(second.history().size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(second.history()[i].loss, whole.history()[i + 3].loss) << i;
  for (size_t i = 0; i < whole.optimizer().params().size(); ++i)
    ASSERT_EQ(whole.optimizer().params()[i].value().to_doubles(), second.optimizer().params()[i].value().to_doubles());
}

TEST(WeatherTraining, BadDataIsAUsageError) {
  auto refused = [](const std::vector<std::string>& args, const std::string& words) {
    try {
      TrainOptions o;
      std::string help;
      parse_train_options(args, &o, &help);
      prepare_run(o);
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
      return;
    }
    ADD_FAILURE() << "accepted: " << words;
  };
  refused({"--data", "/nonexistent/era5", "--quiet"}, "no such folder");
  refused({"--train-years", "2015"}, "give --data DIR");
  refused({"--preset", "era5-demo"}, "give --data DIR");
  refused({"--data", kFixture, "--train-years", "2019", "--quiet"}, "holds none of the data's times");
  refused({"--data", kFixture, "--train-years", "2015", "--rollout", "3", "--quiet"}, "consecutive training times");
  refused({"--data", kFixture, "--in-channels", "9", "--quiet"}, "inputs (with the 3 structural)");
  refused({"--data", kFixture, "--init-from", "tests/data/deepmind/checkpoint.npz"}, "DeepMind's channel order");
}

// The baselines' scores, written out: persistence (frame t) and climatology (the mean
// of the training times per point) against the truth at t + lead, latitude-weighted.
TEST(WeatherTraining, ScoresOfTheBaselinesAreTheDirectComputation) {
  TrainOptions o = weather_options({"--train-years", "2015", "--valid-years", "2016", "--steps", "1"});
  o.no_eval = false;
  Trainer t(prepare_run(o));
  t.train();
  const EvalResult e = t.evaluate();
  ASSERT_EQ(e.lead_hours, (std::vector<int>{6, 12}));  // 4 validation times: one case, t = 5
  ASSERT_EQ(e.cases, 1);
  ASSERT_EQ(e.variables, (std::vector<std::string>{"z500", "t850", "t2m", "u10"}));
  EXPECT_EQ(e.units[0], "m**2 s**-2");
  const data::WeatherDataset& d = *t.weather()->data;
  const int64_t nodes = d.nodes(), C = d.channels;
  std::vector<std::vector<float>> frames(8, std::vector<float>(static_cast<size_t>(d.frame_values())));
  for (int64_t k = 0; k < 8; ++k) d.read_frame(k, frames[static_cast<size_t>(k)].data());
  const std::vector<double> w = data::deepmind_latitude_weights(d.latitudes_deg);
  const int64_t channels[] = {d.channel_of("geopotential", 500), d.channel_of("temperature", 850),
                              d.channel_of("2m_temperature"), d.channel_of("10m_u_component_of_wind")};
  for (size_t v = 0; v < 4; ++v) {
    const int64_t c = channels[v];
    for (int lead = 1; lead <= 2; ++lead) {
      double persist = 0, clim = 0, wsum = 0;
      for (int64_t i = 0; i < nodes; ++i) {
        const double wi = w[static_cast<size_t>(i / d.n_lon())];
        const double truth = frames[static_cast<size_t>(5 + lead)][static_cast<size_t>(i * C + c)];
        double mean = 0;
        for (int k = 0; k < 4; ++k) mean += frames[static_cast<size_t>(k)][static_cast<size_t>(i * C + c)] / 4.0;
        persist += wi * std::pow(frames[5][static_cast<size_t>(i * C + c)] - truth, 2);
        clim += wi * std::pow(mean - truth, 2);
        wsum += wi;
      }
      EXPECT_NEAR(e.rmse_persistence[v][static_cast<size_t>(lead - 1)], std::sqrt(persist / wsum),
                  1e-9 * std::sqrt(persist / wsum)) << e.variables[v] << " lead " << lead;
      EXPECT_NEAR(e.rmse_climatology[v][static_cast<size_t>(lead - 1)], std::sqrt(clim / wsum),
                  1e-9 * std::sqrt(clim / wsum)) << e.variables[v] << " lead " << lead;
      EXPECT_TRUE(std::isfinite(e.rmse_model[v][static_cast<size_t>(lead - 1)]));
      EXPECT_LE(std::fabs(e.acc_model[v][static_cast<size_t>(lead - 1)]), 1.0);
    }
  }
}

// The roll-out with a target-only channel: residual channels accumulate (S += y), the
// target-only one is the prediction itself (S = y), and only the residual channels are fed
// back, followed by the step's forcings and statics.
TEST(WeatherTraining, RolloutPredictsTargetOnlyChannelsDirectly) {
  const int64_t R = 2, C = 3, P = 2;
  data::Batch b;
  b.state = Tensor::from_doubles({1, 2, 3, 4, 5, 6}, {R, C}, DType::f32);
  b.previous_input = Tensor::from_doubles({10, 20, 30, 40}, {R, P}, DType::f32);
  b.input = Tensor::from_doubles(std::vector<double>(static_cast<size_t>(R * (2 * P + 1)), 0.0), {R, 2 * P + 1}, DType::f32);
  b.extra_inputs.push_back(Tensor::from_doubles({7, 8}, {R, 1}, DType::f32));
  b.targets.resize(2);
  const Tensor state_to_input = Tensor::from_doubles({2, 3, 2, 3}, {R, P}, DType::f32);
  const Tensor keep = Tensor::from_doubles({1, 1, 0, 1, 1, 0}, {R, C}, DType::f32);
  const Var y(Tensor::from_doubles({0.5, 0.5, 0.25, 0.5, 0.5, 0.75}, {R, C}, DType::f32));
  std::vector<std::vector<double>> inputs, states;
  roll_out(b, 2, state_to_input, DType::f32,
           [&](int, const Var& input) {
             inputs.push_back(input.value().to_doubles());
             return y;
           },
           [&](int, const Var& state) { states.push_back(state.value().to_doubles()); }, &keep, P);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0], (std::vector<double>{1.5, 2.5, 0.25, 4.5, 5.5, 0.75}));
  EXPECT_EQ(states[1], (std::vector<double>{2.0, 3.0, 0.25, 5.0, 6.0, 0.75}));
  // Step 1's input: [previous input, S[:, :P] * state_to_input, extra].
  EXPECT_EQ(inputs[1], (std::vector<double>{10, 20, 1.5 * 2, 2.5 * 3, 7, 30, 40, 4.5 * 2, 5.5 * 3, 8}));
}
