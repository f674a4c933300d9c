// trainer.cpp: set-up, the training step, evaluation and checkpoints.
//
// Demo data convention (GRAPHCAST.md section 5): inputs are two frames
// normalized per channel by mean/std; the network predicts the 6-hour change
// divided by the std of 6-hour changes. The model state is carried as
// S = (X - mean) / diff_std in f32, so a rollout step is S += y and the next
// input is S * diff_std / std; the loss at each rollout step compares S with
// the truth in the same units, and gradients flow through the fed-back S.
#include "tools/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/precision.h"
#include "kernels/elementwise.h"
#include "tools/io/safetensors.h"
#include "tools/memory/remat_auto.h"
#include "tools/memory/trace.h"

namespace gc {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void make_dirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i < path.size(); ++i) {
    partial += path[i];
    if ((path[i] == '/' || i + 1 == path.size()) && !partial.empty()) mkdir(partial.c_str(), 0755);
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::runtime_error("cannot create directory '" + path + "'");
}

// Element writes into a host tensor, converting doubles to its dtype.
class HostValues {
 public:
  explicit HostValues(Tensor& t) : data_(static_cast<unsigned char*>(t.data())), dtype_(t.dtype()), size_(t.numel()) {}
  class Ref {
   public:
    Ref(unsigned char* p, DType d) : p_(p), d_(d) {}
    Ref& operator=(double v) {
      switch (d_) {
        case DType::f32: { float x = static_cast<float>(v); std::memcpy(p_, &x, 4); break; }
        case DType::f64: std::memcpy(p_, &v, 8); break;
        case DType::bf16: { uint16_t x = f32_to_bf16(static_cast<float>(v)); std::memcpy(p_, &x, 2); break; }
        case DType::f16: { uint16_t x = f32_to_f16(static_cast<float>(v)); std::memcpy(p_, &x, 2); break; }
        default: throw std::logic_error("host_filled: float dtypes only");
      }
      return *this;
    }
   private:
    unsigned char* p_;
    DType d_;
  };
  Ref operator[](size_t i) { return Ref(data_ + i * dtype_size(dtype_), dtype_); }
  size_t size() const { return static_cast<size_t>(size_); }

 private:
  unsigned char* data_;
  DType dtype_;
  int64_t size_;
};

// A tensor filled on the host: on the cpu written in place, on other devices
// staged through a cpu tensor, so every byte (staging included) goes through an
// allocator and the device's allocator sees exactly one request, as on meta.
template <class Fill>
Tensor host_filled(const Shape& shape, DType dtype, Device device, Fill fill) {
  Tensor t = Tensor::empty(shape, dtype, device);
  if (device == Device::meta) return t;
  Tensor staging = device == Device::cpu ? t : Tensor::empty(shape, dtype, Device::cpu);
  HostValues values(staging);
  fill(values);
  if (device != Device::cpu) t.copy_from(staging);
  return t;
}

}  // namespace

Trainer::Trainer(const TrainOptions& options) : options_(options) {}
Trainer::~Trainer() {
  release_compute_copies();
  if (limit_set_) allocator_for(options_.device).set_limit(previous_limit_);
}

double Trainer::learning_rate(int step) const {
  const int warmup = std::max(0, options_.warmup_steps);
  const int total = std::max(1, options_.steps);
  if (step < warmup) return options_.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (total <= warmup) return options_.lr;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
  return options_.lr * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

void Trainer::setup() {
  const auto start = std::chrono::steady_clock::now();
  const Device device = options_.device;
  if (device == Device::meta) set_meta_target(options_.meta_target);
  if (options_.mem_limit > 0) {
    // The limit covers everything the run allocates: parameters, graphs and data included.
    CachingAllocator& alloc = allocator_for(device);
    previous_limit_ = alloc.limit();
    limit_set_ = true;
    alloc.set_limit(options_.mem_limit);
  }
  if (device == Device::cuda) {
    std::string why;
    if (!cuda_available(&why)) throw std::runtime_error("--device cuda: " + why);
  }
  model::Grid grid;
  if (options_.has_data()) {
    data::SweDatasetConfig dc;
    dc.truncation = options_.data_truncation;
    if (options_.data_trajectories > 0) {
      dc.train_trajectories = options_.data_trajectories;
      dc.validation_trajectories = std::max(2, options_.data_trajectories / 8);
      dc.test_trajectories = std::max(2, options_.data_trajectories / 8);
    }
    if (options_.data_frames > 0) dc.frames_per_trajectory = options_.data_frames;
    const std::string cache = options_.data_cache.empty() ? std::string("runs/data-cache") : options_.data_cache;
    make_dirs(cache);
    data_ = std::make_unique<data::SweDataset>(
        data::load_or_generate_swe_dataset(dc, cache, 0, !options_.quiet));
    grid = model::make_grid_from_latitudes(data_->latitudes_deg, data_->nlon, data_->gauss_weights);
    const int64_t data_channels = 2 * data::kSweChannels;
    if (options_.in_channels == 0) options_.in_channels = data_channels + 3;
    if (options_.out_channels == 0) options_.out_channels = data::kSweChannels;
    if (options_.in_channels != data_channels + 3 || options_.out_channels != data::kSweChannels)
      throw UsageError("the demo data has " + std::to_string(data_channels) + " input channels (+3 structural = " +
                       std::to_string(data_channels + 3) + ") and " + std::to_string(data::kSweChannels) +
                       " outputs; --in-channels/--out-channels cannot change that");
    if (data_->frames() < options_.rollout + 3)
      throw UsageError("--rollout " + std::to_string(options_.rollout) + " is longer than the trajectories allow");
  } else {
    if (options_.grid_deg <= 0) throw UsageError("preset " + options_.preset + " needs --grid DEG");
    grid = model::make_equiangular_grid(options_.grid_deg);
  }
  const auto graph_start = std::chrono::steady_clock::now();
  geometry_ = prebuilt_geometry_ ? *prebuilt_geometry_ : model::build_geometry(grid, options_.mesh_level);
  graph_seconds_ = seconds_since(graph_start);
  if (options_.remat == "auto" && !has_explicit_plan_) {
    // The planner's dry runs happen before anything of this run is allocated.
    AutoPlan chosen = plan_auto(options_, geometry_, !options_.quiet);
    use_plan(chosen.plan, chosen.edge_chunks);
    auto_plan_ = {chosen.description, chosen.edge_chunks, chosen.budget, chosen.predicted_peak_allocated,
                  chosen.predicted_peak_reserved, chosen.predicted_overhead};
  }

  config_ = graphcast_config(options_, options_.edge_chunks);

  net_ = std::make_unique<model::GraphCastNet>(config_, device, options_.seed);
  device_geometry_ = model::upload_geometry(geometry_, config_, device);
  kernels::AdamWSettings adam;
  adam.lr = options_.lr;
  adam.beta1 = 0.9;
  adam.beta2 = 0.95;
  adam.eps = 1e-8;
  adam.weight_decay = options_.weight_decay;
  optimizer_ = std::make_unique<AdamW>(net_->parameters(), adam);

  const int64_t grid_nodes = geometry_.num_grid_nodes();
  const int64_t rows = grid_nodes * options_.batch;
  {
    MemoryScope scope(Category::input, "loss_weights");
    const model::Grid& g = geometry_.grid;
    row_weight_ = host_filled({rows}, DType::f32, device, [&](HostValues& v) {
      for (int64_t r = 0; r < rows; ++r) v[static_cast<size_t>(r)] = g.row_weight[static_cast<size_t>((r % grid_nodes) / g.num_lon())];
    });
    col_weight_ = host_filled({options_.out_channels}, DType::f32, device, [](HostValues& v) {
      for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0;
    });
  }
  if (options_.has_data()) {
    build_normalization();
  } else {
    MemoryScope scope(Category::input, "batch");
    std::mt19937_64 rng(options_.seed * 7919 + 17);
    std::normal_distribution<double> normal(0.0, 1.0);
    random_input_ = host_filled({rows, options_.in_channels - 3}, config_.compute_dtype, device,
                                [&](HostValues& v) { for (size_t i = 0; i < v.size(); ++i) v[i] = normal(rng); });
    random_target_ = host_filled({rows, options_.out_channels}, DType::f32, device,
                                 [&](HostValues& v) { for (size_t i = 0; i < v.size(); ++i) v[i] = normal(rng); });
  }
  // Rematerialization plan of the fixed policies (auto: see the planner).
  const std::string& r = options_.remat;
  if (has_explicit_plan_) plan_ = explicit_plan_;
  else if (r == "none") plan_ = model::plan_none(options_.layers);
  else if (r == "all") plan_ = model::plan_all(options_.layers);
  else if (r.rfind("every:", 0) == 0) plan_ = model::plan_every(options_.layers, std::stoi(r.substr(6)));
  else throw UsageError("--remat " + r + " is not available yet");
  if (config_.compute_dtype == DType::f16) loss_scale_ = 65536.0;  // dynamic loss scaling starts at 2^16
  setup_seconds_ = seconds_since(start);
}

void Trainer::build_normalization() {
  const data::SweDataset& d = *data_;
  const int C = data::kSweChannels;
  const int first = d.first_trajectory(data::SweSplit::train);
  const int count = d.split_trajectories(data::SweSplit::train);
  const size_t nodes = static_cast<size_t>(d.nlat) * static_cast<size_t>(d.nlon);
  std::vector<double> sum(C, 0), sum2(C, 0), dsum(C, 0), dsum2(C, 0);
  climatology_.assign(nodes * C, 0.0f);
  std::vector<double> clim(nodes * C, 0.0);
  double n = 0, nd = 0;
  for (int t = first; t < first + count; ++t) {
    for (int f = 0; f < d.frames(); ++f) {
      const float* x = d.frame(t, f);
      const float* prev = f > 0 ? d.frame(t, f - 1) : nullptr;
      for (size_t i = 0; i < nodes; ++i)
        for (int c = 0; c < C; ++c) {
          const double v = x[i * C + static_cast<size_t>(c)];
          sum[static_cast<size_t>(c)] += v;
          sum2[static_cast<size_t>(c)] += v * v;
          clim[i * C + static_cast<size_t>(c)] += v;
          if (prev) {
            const double dv = v - prev[i * C + static_cast<size_t>(c)];
            dsum[static_cast<size_t>(c)] += dv;
            dsum2[static_cast<size_t>(c)] += dv * dv;
          }
        }
      n += static_cast<double>(nodes);
      if (prev) nd += static_cast<double>(nodes);
    }
  }
  mean_.resize(C);
  std_.resize(C);
  diff_std_.resize(C);
  for (int c = 0; c < C; ++c) {
    const size_t k = static_cast<size_t>(c);
    mean_[k] = sum[k] / n;
    std_[k] = std::sqrt(std::max(1e-30, sum2[k] / n - mean_[k] * mean_[k]));
    const double dm = dsum[k] / nd;
    diff_std_[k] = std::sqrt(std::max(1e-30, dsum2[k] / nd - dm * dm));
  }
  const double frames = static_cast<double>(count) * d.frames();
  for (size_t i = 0; i < clim.size(); ++i) climatology_[i] = static_cast<float>(clim[i] / frames);
  MemoryScope scope(Category::input, "normalization");
  const int64_t rows = geometry_.num_grid_nodes() * options_.batch;
  ratio_ = host_filled({rows, C}, DType::f32, options_.device, [&](HostValues& v) {
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < C; ++c) v[static_cast<size_t>(r * C + c)] = diff_std_[static_cast<size_t>(c)] / std_[static_cast<size_t>(c)];
  });
}

void Trainer::fill_demo_batch(Batch* batch, const std::vector<std::pair<int, int>>& samples) {
  const data::SweDataset& d = *data_;
  const int C = data::kSweChannels;
  const int64_t nodes = geometry_.num_grid_nodes();
  const int64_t rows = nodes * static_cast<int64_t>(samples.size());
  const Device device = options_.device;
  const DType cd = config_.compute_dtype;
  MemoryScope scope(Category::input, "batch");
  auto frame_value = [&](int traj, int frame, int64_t node, int c) {
    return static_cast<double>(d.frame(traj, frame)[node * C + c]);
  };
  batch->input = host_filled({rows, 2 * C}, cd, device, [&](HostValues& v) {
    for (size_t s = 0; s < samples.size(); ++s)
      for (int64_t i = 0; i < nodes; ++i)
        for (int k = 0; k < 2; ++k)
          for (int c = 0; c < C; ++c) {
            const double x = frame_value(samples[s].first, samples[s].second - 1 + k, i, c);
            v[static_cast<size_t>(((static_cast<int64_t>(s) * nodes + i) * 2 + k) * C + c)] =
                (x - mean_[static_cast<size_t>(c)]) / std_[static_cast<size_t>(c)];
          }
  });
  auto anomaly_over_diff = [&](int frame_offset, DType dtype, bool normalize_by_std) {
    return host_filled({rows, C}, dtype, device, [&](HostValues& v) {
      for (size_t s = 0; s < samples.size(); ++s)
        for (int64_t i = 0; i < nodes; ++i)
          for (int c = 0; c < C; ++c) {
            const double x = frame_value(samples[s].first, samples[s].second + frame_offset, i, c);
            const double scale = normalize_by_std ? std_[static_cast<size_t>(c)] : diff_std_[static_cast<size_t>(c)];
            v[static_cast<size_t>((static_cast<int64_t>(s) * nodes + i) * C + c)] = (x - mean_[static_cast<size_t>(c)]) / scale;
          }
    });
  };
  batch->state = anomaly_over_diff(0, DType::f32, false);
  batch->previous_normalized = anomaly_over_diff(0, cd, true);
  batch->targets.clear();
  for (int k = 0; k < options_.rollout; ++k) batch->targets.push_back(anomaly_over_diff(k + 1, DType::f32, false));
}

Trainer::Batch Trainer::make_batch(int micro_step) {
  Batch batch;
  if (!options_.has_data()) {
    batch.input = random_input_;
    batch.targets = {random_target_};
    return batch;
  }
  // Samples depend only on (seed, micro step): a resumed run draws the same ones.
  std::mt19937_64 rng(options_.seed * 1000003ull + static_cast<uint64_t>(micro_step) * 7919ull + 1);
  const int first = data_->first_trajectory(data::SweSplit::train);
  const int count = data_->split_trajectories(data::SweSplit::train);
  const int last_start = data_->frames() - 1 - options_.rollout;
  std::vector<std::pair<int, int>> samples;
  for (int b = 0; b < options_.batch; ++b) {
    const int traj = first + static_cast<int>(rng() % static_cast<uint64_t>(count));
    const int t = 1 + static_cast<int>(rng() % static_cast<uint64_t>(last_start));
    samples.push_back({traj, t});
  }
  fill_demo_batch(&batch, samples);
  return batch;
}

void Trainer::feed_back(const Var& state, Var* previous, Var* input) const {
  // The predicted frame, normalized like an input: (X - mean) / std = state * diff_std / std.
  Var next = mul(state, Var(ratio_));
  if (next.dtype() != config_.compute_dtype) next = cast(next, config_.compute_dtype);
  *input = concat_cols({*previous, next});
  *previous = next;
}

Var Trainer::loss_of(const Batch& batch) {
  if (!options_.has_data()) {
    Var y = net_->forward(Var(batch.input), device_geometry_, plan_);
    MemoryScope scope("loss");
    return weighted_mse(y, batch.targets[0], row_weight_, col_weight_);
  }
  Var state(batch.state);
  Var previous(batch.previous_normalized);
  Var input(batch.input);
  Var total;
  // With remat on, each autoregressive step is a checkpoint of its own too:
  // only its input survives the forward; the step is recomputed in backward.
  const bool checkpoint_steps = options_.rollout > 1 && options_.remat != "none";
  auto step_fn = [this](const std::vector<Var>& in) {
    return std::vector<Var>{net_->forward(in[0], device_geometry_, plan_)};
  };
  for (int k = 0; k < options_.rollout; ++k) {
    Var y;
    {
      MemoryScope step_scope(options_.rollout > 1 ? "rollout." + std::to_string(k) : std::string());
      y = checkpoint_steps ? checkpoint("", step_fn, {input})[0] : net_->forward(input, device_geometry_, plan_);
    }
    MemoryScope scope("loss");
    state = add(state, y);
    Var l = weighted_mse(state, batch.targets[static_cast<size_t>(k)], row_weight_, col_weight_);
    total = total.defined() ? add(total, l) : l;
    if (k + 1 < options_.rollout) {
      feed_back(state, &previous, &input);
    }
  }
  return options_.rollout > 1 ? scale(total, 1.0 / options_.rollout) : total;
}

StepRecord Trainer::train_step(int step) {
  try {
    return train_step_unguarded(step);
  } catch (...) {
    // A step interrupted in forward or backward (out of memory) must not leave
    // its recorded nodes, gradients or weight copies for whatever runs next.
    current_tape().clear();
    optimizer_->zero_grad();
    release_compute_copies();
    throw;
  }
}

StepRecord Trainer::train_step_unguarded(int step) {
  const auto start = std::chrono::steady_clock::now();
  StepRecord rec;
  const double flops_before = linear_flops();
  rec.step = step;
  rec.lr = learning_rate(step);
  const bool fp16 = config_.compute_dtype == DType::f16;
  double loss_sum = 0;
  TraceSpan step_span("step", "step " + std::to_string(step + 1));
  for (int micro = 0; micro < options_.accum; ++micro) {
    Batch batch;
    {
      TraceSpan span("input", "make_batch");
      batch = make_batch(step * options_.accum + micro);
    }
    Var loss;
    {
      TraceSpan span("forward", "forward");
      loss = loss_of(batch);
    }
    loss_sum += scalar_value(loss.value());
    const double factor = (fp16 ? loss_scale_ : 1.0) / options_.accum;
    TraceSpan span("backward", "backward");
    backward(factor == 1.0 ? loss : scale(loss, factor));
  }
  TraceSpan optimizer_span("optimizer", "optimizer");
  rec.loss = loss_sum / options_.accum;
  const double unscale = fp16 ? 1.0 / loss_scale_ : 1.0;
  rec.grad_norm = optimizer_->grad_norm() * unscale;
  if (fp16 && !std::isfinite(rec.grad_norm)) {
    // Overflow: skip the update, halve the scale (dynamic loss scaling).
    rec.skipped = true;
    loss_scale_ = std::max(1.0, loss_scale_ / 2);
    clean_steps_ = 0;
    ++skipped_steps_;
  } else {
    optimizer_->step(rec.lr, unscale * clip_factor(rec.grad_norm, options_.clip_norm));
    if (fp16 && ++clean_steps_ >= 2000) {
      loss_scale_ *= 2;
      clean_steps_ = 0;
    }
  }
  optimizer_->zero_grad();
  release_compute_copies();
  rec.ms = seconds_since(start) * 1e3;
  rec.flops = linear_flops() - flops_before;
  return rec;
}

void Trainer::train(int stop_after_step) {
  CachingAllocator& alloc = allocator_for(options_.device);
  alloc.set_peak_snapshot(true, 10);
  alloc.reset_peak();
  const bool tty = !options_.quiet && isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  int last_printed_percent = -1;
  const int end_step = stop_after_step > 0 ? std::min(stop_after_step, options_.steps) : options_.steps;
  for (int step = start_step_; step < end_step; ++step) {
    StepRecord rec = train_step(step);
    history_.push_back(rec);
    completed_steps_ = step + 1;
    if (checkpoint_every_ > 0 && completed_steps_ % checkpoint_every_ == 0 && completed_steps_ < options_.steps)
      save_checkpoint(checkpoint_dir_);
    if (!options_.quiet) {
      const double elapsed = seconds_since(start);
      const int done = step + 1 - start_step_;
      const double eta = elapsed / done * (options_.steps - step - 1);
      const int percent = static_cast<int>(100.0 * (step + 1) / options_.steps);
      char line[256];
      std::snprintf(line, sizeof line, "step %d/%d  loss %.5f  lr %.2e  %.0f ms/step  ETA %.0f s  peak %s",
                    step + 1, options_.steps, rec.loss, rec.lr, rec.ms, eta,
                    format_bytes(alloc.stats().peak_allocated).c_str());
      if (tty) {
        std::fprintf(stderr, "\r%s\033[K", line);
        if (step + 1 == options_.steps) std::fprintf(stderr, "\n");
      } else if (percent / 10 != last_printed_percent / 10 || step == start_step_) {
        std::fprintf(stderr, "%s\n", line);
        last_printed_percent = percent;
      }
    }
  }
  memory_.stats = alloc.stats();
  memory_.top_live = alloc.peak_snapshot();
  memory_.by_label = alloc.peak_bytes_by_label();
  int64_t in_use = 0, total = 0;
  if (options_.device == Device::cuda && cuda_memory_in_use(&in_use, &total)) {
    memory_.device_in_use = in_use;
    memory_.outside_allocator = in_use - alloc.stats().reserved;
  }
  alloc.set_peak_snapshot(false);
}

}  // namespace gc
