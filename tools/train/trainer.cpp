// trainer.cpp: the trainer's set-up and the training step.
//
// The step reads top to bottom: for each micro-batch, the batch, the loss (the
// roll-out of rollout.h), backward; then the gradient norm, the update (or
// fp16's skip), and the release of what the step held.
#include "tools/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <unistd.h>

#include "autograd/precision.h"
#include "kernels/collectives.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "tools/memory/cards.h"
#include "runtime/random.h"
#include "tools/data/host_tensor.h"
#include "tools/memory/trace.h"
#include "tools/train/interrupt.h"
#include "tools/train/rollout.h"

namespace gc {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double learning_rate(const TrainOptions& options, int step) {
  const int warmup = std::max(0, options.warmup_steps);
  const int total = std::max(1, options.steps);
  if (step < warmup) return options.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (total <= warmup) return options.lr;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
  return options.lr * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

bool LossScaler::update(double grad_norm) {
  if (!dynamic) return true;
  if (!std::isfinite(grad_norm)) {
    scale = std::max(1.0, scale / 2);
    clean_steps = 0;
    ++skipped_steps;
    ++skipped_in_a_row;
    return false;
  }
  skipped_in_a_row = 0;
  if (++clean_steps >= 2000) {
    scale *= 2;
    clean_steps = 0;
  }
  return true;
}

// ---- set-up ---------------------------------------------------------------------

// The process-wide switches a run sets: TF32, op timing, the roofline's card
// (tf32 chooses which f32 GEMM peak the roofline uses).
static void apply_time_options(const TrainOptions& options) {
  kernels::set_tf32(options.tf32);
  profile_enable(options.profile);
  RooflineRates rates;
  if (const Card* card = options.card.empty() ? nullptr : find_card(options.card)) {
    rates.vector_flops = card->fp32_flops;
    rates.gemm_f32_flops = options.tf32 ? card->tf32_flops : card->fp32_flops;
    rates.gemm_16bit_flops = card->bf16_flops;
    rates.gemm_f64_flops = card->fp32_flops / 2;  // none of these cards is built for f64; an upper bound
    rates.bandwidth = card->memory_bandwidth;
  }
  set_roofline_rates(rates);
}

Trainer::Trainer(RunSetup setup) : setup_(std::move(setup)) {
  const auto start = std::chrono::steady_clock::now();
  apply_time_options(options_);
  set_memory_limit();
  try {
    build_model();
    upload_loss_weights();
    upload_inputs();
  } catch (...) {
    // No destructor runs for a constructor that throws (out of memory under
    // --mem-limit): give the device its limit back here.
    release_compute_copies();
    if (limit_set_) allocator_for(options_.device).set_limit(previous_limit_);
    throw;
  }
  if (config_.compute_dtype == DType::f16) loss_scaler_ = {true, 65536.0, 0, 0};
  setup_.seconds += seconds_since(start);
}

Trainer::~Trainer() {
  apply_time_options(TrainOptions());
  release_compute_copies();
  if (limit_set_) allocator_for(options_.device).set_limit(previous_limit_);
}

void Trainer::set_memory_limit() {
  // The limit covers everything the run allocates: parameters, graphs and data included.
  if (options_.mem_limit <= 0) return;
  CachingAllocator& alloc = allocator_for(options_.device);
  previous_limit_ = alloc.limit();
  limit_set_ = true;
  alloc.set_limit(options_.mem_limit);
}

void Trainer::build_model() {
  config_ = graphcast_config(options_, options_.edge_chunks);
  net_ = std::make_unique<model::GraphCastNet>(config_, options_.device, options_.seed);
  if (setup_.init_from) load_deepmind_parameters(*setup_.init_from, *net_);  // --init-from
  grid_first_ = setup_.shard ? setup_.shard->grid_first : 0;
  grid_rows_ = setup_.shard ? setup_.shard->grid_nodes : geometry().num_grid_nodes();
  if (setup_.shard && comm().size() < options_.model_parallel)
    throw std::invalid_argument("--model-parallel " + std::to_string(options_.model_parallel) + " needs " +
                                std::to_string(options_.model_parallel) + " ranks; this run has " +
                                std::to_string(comm().size()));
  device_geometry_ = model::upload_geometry(geometry(), config_, options_.device, setup_.shard.get(),
                                            setup_.shard ? &comm() : nullptr);
  optimizer_ = std::make_unique<AdamW>(net_->parameters(), adamw_settings(options_));
}

void Trainer::upload_loss_weights() {
  MemoryScope scope(Category::input, "loss_weights");
  const model::Grid& g = geometry().grid;
  const int64_t rows = grid_rows_ * options_.batch;
  row_weight_ = data::host_filled({rows}, DType::f32, options_.device, [&](data::HostValues& v) {
    for (int64_t r = 0; r < rows; ++r)
      v[static_cast<size_t>(r)] = g.row_weight[static_cast<size_t>((grid_first_ + r % grid_rows_) / g.num_lon())];
  });
  // Weather data: DeepMind's per-variable and per-level weights (weather_task.h); else 1.
  const data::WeatherTask* w = weather();
  col_weight_ = data::host_filled({options_.out_channels}, DType::f32, options_.device, [w](data::HostValues& v) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = w ? w->column_weight[i] : 1.0;
  });
}

void Trainer::upload_inputs() {
  const int64_t rows = grid_rows_ * options_.batch;
  if (weather()) {
    const data::WeatherTask& w = *weather();
    const int64_t C = w.channels(), P = w.fed_back;
    {
      MemoryScope scope(Category::input, "normalization");
      state_to_input_ = data::host_filled({rows, P}, DType::f32, options_.device, [&](data::HostValues& v) {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < P; ++c) v[static_cast<size_t>(r * P + c)] = w.state_to_input(c);
      });
      if (P < C)  // target-only variables: predicted directly, not as residuals
        keep_state_ = data::host_filled({rows, C}, DType::f32, options_.device, [&](data::HostValues& v) {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < C; ++c) v[static_cast<size_t>(r * C + c)] = c < P ? 1.0 : 0.0;
        });
    }
    // The reader's ring: per slot, every frame of a micro-batch and its TOA radiation.
    // Host memory, through the cpu allocator; a dry run standing for a cpu run
    // makes the same request on meta (for a cuda run it is not device memory).
    const int64_t frames = static_cast<int64_t>(options_.batch) * (options_.rollout + 2);
    const int64_t floats =
        data::WeatherPrefetcher::pool_floats(*w.data, frames, options_.prefetch_slots, frames * w.data->nodes());
    host_data_bytes_ = floats * static_cast<int64_t>(sizeof(float));
    MemoryScope scope(Category::input, "data.prefetch");
    if (options_.device != Device::meta) prefetch_pool_ = Tensor::empty({floats}, DType::f32, Device::cpu);
    else if (meta_target() == Device::cpu) prefetch_pool_ = Tensor::empty({floats}, DType::f32, Device::meta);
    return;
  }
  if (data()) {
    norm_ = data::swe_normalization(*data());
    const int C = data::kSweChannels;
    MemoryScope scope(Category::input, "normalization");
    state_to_input_ = data::host_filled({rows, C}, DType::f32, options_.device, [&](data::HostValues& v) {
      for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < C; ++c) v[static_cast<size_t>(r * C + c)] = norm_.state_to_input(c);
    });
    return;
  }
  MemoryScope scope(Category::input, "batch");
  // The values of the whole --batch, of which this rank keeps its share's samples
  // (data parallel) and, of each, its grid rows (model parallel).
  const int64_t grid_nodes = geometry().num_grid_nodes();
  const int64_t before = grid_nodes * options_.batch_offset;
  const int64_t after = grid_nodes * (options_.global_batch - options_.batch_offset - options_.batch);
  auto skip = [](uint64_t& state, int64_t n) { for (int64_t i = 0; i < n; ++i) next_normal(state); };
  auto take = [&](uint64_t& state, int64_t columns, data::HostValues& v) {
    size_t i = 0;
    for (int b = 0; b < options_.batch; ++b) {
      skip(state, grid_first_ * columns);
      for (int64_t k = 0; k < grid_rows_ * columns; ++k) v[i++] = next_normal(state);
      skip(state, (grid_nodes - grid_first_ - grid_rows_) * columns);
    }
  };
  uint64_t state = options_.seed * 7919 + 17;
  if (options_.device != Device::meta) skip(state, before * (options_.in_channels - 3));
  random_input_ = data::host_filled({rows, options_.in_channels - 3}, config_.compute_dtype, options_.device,
                                    [&](data::HostValues& v) { take(state, options_.in_channels - 3, v); });
  if (options_.device != Device::meta) {
    skip(state, after * (options_.in_channels - 3));
    skip(state, before * options_.out_channels);
  }
  random_target_ = data::host_filled({rows, options_.out_channels}, DType::f32, options_.device,
                                     [&](data::HostValues& v) { take(state, options_.out_channels, v); });
}

// ---- the step ---------------------------------------------------------------------

data::Batch Trainer::batch_of(const std::vector<data::Sample>& samples) const {
  return data::assemble_batch(*data(), norm_, samples, options_.rollout, config_.compute_dtype, options_.device);
}

data::Batch Trainer::next_weather_batch(int micro_step) {
  const data::WeatherTask& w = *weather();
  const int steps = options_.rollout, batch = options_.batch;
  const std::vector<int64_t> samples = w.draw_training_samples(options_.seed, micro_step, batch, steps);
  if (options_.device == Device::meta)
    return data::assemble_weather_batch(w, samples, steps, nullptr, nullptr, config_.compute_dtype, options_.device);
  const int64_t frames = static_cast<int64_t>(batch) * (steps + 2);
  if (!prefetcher_) {
    // Requests are micro steps; a resumed run starts at its own.
    const uint64_t seed = options_.seed;
    auto frames_of = [&w, seed, batch, steps](int64_t request) {
      return data::WeatherTask::frames_of(w.draw_training_samples(seed, request, batch, steps), steps);
    };
    auto toa = [&w, frames_of](int64_t request, float* out) { w.toa_radiation(frames_of(request), out); };
    prefetcher_ = std::make_unique<data::WeatherPrefetcher>(*w.data, frames_of, frames, options_.prefetch_slots,
                                                             static_cast<float*>(prefetch_pool_.data()), micro_step,
                                                             toa, frames * w.data->nodes());
  }
  const float* slot = prefetcher_->acquire(micro_step);
  return data::assemble_weather_batch(w, samples, steps, slot, slot + frames * w.data->frame_values(),
                                      config_.compute_dtype, options_.device);
}

data::Batch Trainer::next_batch(int micro_step) {
  if (setup_.shard && (weather() || data())) {
    // Model parallel: the samples' grid rows of this rank (the batch is made whole, then cut).
    data::Batch whole = next_batch_whole(micro_step);
    data::Batch mine;
    mine.input = own_rows(whole.input);
    whole.input = Tensor();
    for (Tensor& t : whole.targets) {
      mine.targets.push_back(own_rows(t));
      t = Tensor();
    }
    mine.state = own_rows(whole.state);
    whole.state = Tensor();
    mine.previous_input = own_rows(whole.previous_input);
    whole.previous_input = Tensor();
    for (Tensor& t : whole.extra_inputs) {
      mine.extra_inputs.push_back(own_rows(t));
      t = Tensor();
    }
    return mine;
  }
  return next_batch_whole(micro_step);
}

data::Batch Trainer::next_batch_whole(int micro_step) {
  if (weather()) return next_weather_batch(micro_step);
  if (!data()) {
    data::Batch batch;
    batch.input = random_input_;
    batch.targets = {random_target_};
    return batch;
  }
  // The step's --batch samples; this rank (data parallel) takes its share.
  std::vector<data::Sample> samples =
      data::draw_training_samples(*data(), options_.seed, micro_step, options_.global_batch, options_.rollout);
  samples.erase(samples.begin(), samples.begin() + options_.batch_offset);
  samples.resize(static_cast<size_t>(options_.batch));
  return batch_of(samples);
}

Var Trainer::predict(const Var& input) const { return net_->forward(input, device_geometry_, plan().stages); }

Var Trainer::loss_of(const data::Batch& batch) {
  if (!data() && !weather()) {
    Var y = predict(Var(batch.input));
    MemoryScope scope("loss");
    return weighted_mse(y, batch.targets[0], row_weight_, col_weight_);
  }
  const int rollout = options_.rollout;
  // With remat on, each autoregressive step is a checkpoint of its own too:
  // only its input survives the forward; the step is recomputed in backward.
  const bool checkpoint_steps = rollout > 1 && options_.remat != "none";
  auto step_fn = [this](const std::vector<Var>& in) { return std::vector<Var>{predict(in[0])}; };
  Var total;
  roll_out(batch, rollout, state_to_input_, config_.compute_dtype,
           [&](int k, const Var& input) {
             MemoryScope step_scope(rollout > 1 ? "rollout." + std::to_string(k) : std::string());
             return checkpoint_steps ? checkpoint("", step_fn, {input})[0] : predict(input);
           },
           [&](int k, const Var& state) {
             Var l = weighted_mse(state, batch.targets[static_cast<size_t>(k)], row_weight_, col_weight_);
             total = total.defined() ? add(total, l) : l;
           },
           keep_state_.defined() ? &keep_state_ : nullptr, weather() ? weather()->fed_back : 0);
  return rollout > 1 ? scale(total, 1.0 / rollout) : total;
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
  const double flops_before = linear_flops();
  StepRecord rec;
  rec.step = step;
  rec.lr = learning_rate(options_, step);
  TraceSpan step_span("step", "step " + std::to_string(step + 1));
  profile_reset();  // what ran between steps (metrics, checkpoints) is no step's
  double loss_sum = 0;
  for (int micro = 0; micro < options_.accum; ++micro) {
    data::Batch batch;
    {
      TraceSpan span("input", "make_batch");
      batch = next_batch(step * options_.accum + micro);
    }
    ProfilePhase forward_phase(Phase::forward);  // the loss and its read; backward's phase nests inside
    Var loss;
    {
      TraceSpan span("forward", "forward");
      loss = loss_of(batch);
    }
    loss_sum += scalar_value(loss.value());
    // Data parallel: each rank's mean weighted by its share of the batch (model
    // parallel: and of the grid), so that the gradients summed over the ranks are
    // those of the whole batch's mean.
    const double share = comm().size() > 1 ? loss_share() : 1.0;
    const double factor = loss_scaler_.scale / options_.accum * share;
    TraceSpan span("backward", "backward");
    ProfilePhase phase(Phase::backward);
    backward(factor == 1.0 ? loss : scale(loss, factor));
  }
  {
    TraceSpan span("communication", "all_reduce_gradients");
    all_reduce_gradients();
  }
  TraceSpan optimizer_span("optimizer", "optimizer");
  rec.loss = global_loss(loss_sum / options_.accum);
  const double unscale = 1.0 / loss_scaler_.scale;
  rec.grad_norm = optimizer_->grad_norm() * unscale;
  check_finite(rec);
  rec.skipped = !loss_scaler_.update(rec.grad_norm);
  if (loss_scaler_.skipped_in_a_row >= kMaxSkippedStepsInARow)
    throw Diverged("step " + std::to_string(step + 1) + ": " + std::to_string(loss_scaler_.skipped_in_a_row) +
                   " fp16 steps in a row overflowed (loss scale now " + std::to_string(loss_scaler_.scale) +
                   "); the run does not recover. " + checkpoint_hint());
  if (!rec.skipped) optimizer_->step(rec.lr, unscale * clip_factor(rec.grad_norm, options_.clip_norm));
  optimizer_->zero_grad();
  release_compute_copies();
  // Data parallel: the ranks' parameters checked equal after the first step, every
  // 100th and the last (a hash of every byte, gathered).
  if (step == 0 || (step + 1) % 100 == 0 || step + 1 == options_.steps) check_ranks_agree(step);
  rec.ms = seconds_since(start) * 1e3;
  rec.flops = linear_flops() - flops_before;
  last_step_profile_ = profile_collect();
  profile_sum_ += last_step_profile_;
  ++profiled_steps_;
  profiled_wall_ms_ += rec.ms;
  return rec;
}

void Trainer::reset_profile() {
  profile_sum_ = Profile();
  last_step_profile_ = Profile();
  profiled_steps_ = 0;
  profiled_wall_ms_ = 0;
}

void Trainer::check_finite(const StepRecord& rec) {
  // fp16 overflows are the loss scaler's; meta has no values to check.
  if (loss_scaler_.dynamic || options_.device == Device::meta) return;
  if (std::isfinite(rec.loss) && std::isfinite(rec.grad_norm)) return;
  // The gradient nearest the loss in backward order (the last parameter made) first.
  const std::vector<Var>& params = optimizer_->params();
  std::string first;
  int bad = 0;
  for (size_t i = params.size(); i-- > 0;) {
    const Var& p = params[i];
    if (!p.grad().defined() || kernels::all_finite(p.grad())) continue;
    if (first.empty()) first = p.name();
    ++bad;
  }
  char figures[160];
  std::snprintf(figures, sizeof figures, "the loss is %g and the gradient norm %g", rec.loss, rec.grad_norm);
  std::string where = first.empty() ? std::string("every gradient is finite: the loss itself overflowed")
                                    : "the first non-finite gradient in backward order is " + first + "'s (" +
                                          std::to_string(bad) + " of " + std::to_string(params.size()) +
                                          " parameters' gradients are non-finite)";
  throw Diverged("step " + std::to_string(rec.step + 1) + " diverged: " + figures + "; " + where +
                 ". The update was not applied. " + checkpoint_hint());
}

std::string Trainer::checkpoint_hint() const {
  if (last_checkpoint_step_ >= 0)
    return "The last good checkpoint, " + checkpoint_dir_ + "/checkpoint-" + std::to_string(last_checkpoint_step_) +
           ", is kept: resume it with a lower --lr or a longer --warmup.";
  if (!options_.resume_path.empty())
    return "The checkpoint resumed, " + options_.resume_path + ", is kept: try a lower --lr or a longer --warmup.";
  return "No checkpoint was saved: try a lower --lr or a longer --warmup.";
}

void Trainer::train(int stop_after_step) {
  CachingAllocator& alloc = allocator_for(options_.device);
  alloc.set_peak_snapshot(true, 10);
  alloc.reset_peak();
  const bool tty = !options_.quiet && isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  int last_printed_percent = -1;
  const int end_step = stop_after_step > 0 ? std::min(stop_after_step, options_.steps) : options_.steps;
  auto last_save = std::chrono::steady_clock::now();
  for (int step = completed_steps_; step < end_step; ++step) {
    StepRecord rec = train_step(step);
    history_.push_back(rec);
    completed_steps_ = step + 1;
    if (on_step_) on_step_(rec);
    // Data parallel: a signal seen by any rank stops every rank after this step
    // (each rank's own flag could come a step apart and leave one waiting).
    const bool interrupted = any_rank(interrupt_requested());
    const bool saving = !checkpoint_dir_.empty() && options_.device != Device::meta;
    const bool due = (checkpoint_every_ > 0 && completed_steps_ % checkpoint_every_ == 0) ||
                     (checkpoint_every_minutes_ > 0 && seconds_since(last_save) >= 60 * checkpoint_every_minutes_);
    if (saving && (interrupted || (due && completed_steps_ < options_.steps))) {
      save_checkpoint(checkpoint_dir_);
      last_checkpoint_step_ = completed_steps_;
      last_save = std::chrono::steady_clock::now();
    }
    if (interrupted) {
      if (tty) std::fprintf(stderr, "\n");
      throw Interrupted("interrupted after step " + std::to_string(completed_steps_) + " of " +
                        std::to_string(options_.steps) +
                        (saving ? ": saved " + checkpoint_dir_ + "/checkpoint-" + std::to_string(completed_steps_) +
                                      "; continue with --resume " + checkpoint_dir_
                                : std::string(" (nothing saved)")));
    }
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
  double step_seconds = 0;
  for (const StepRecord& r : history_) step_seconds += r.ms / 1e3;
  gather_rank_summaries(step_seconds);
  int64_t in_use = 0, total = 0;
  if (options_.device == Device::cuda && cuda_memory_in_use(&in_use, &total)) {
    memory_.device_in_use = in_use;
    memory_.outside_allocator = in_use - alloc.stats().reserved;
  }
  alloc.set_peak_snapshot(false);
}

}  // namespace gc
