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
#include "kernels/elementwise.h"
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

Trainer::Trainer(RunSetup setup) : setup_(std::move(setup)) {
  const auto start = std::chrono::steady_clock::now();
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
  device_geometry_ = model::upload_geometry(geometry(), config_, options_.device);
  optimizer_ = std::make_unique<AdamW>(net_->parameters(), adamw_settings(options_));
}

void Trainer::upload_loss_weights() {
  MemoryScope scope(Category::input, "loss_weights");
  const model::Grid& g = geometry().grid;
  const int64_t grid_nodes = geometry().num_grid_nodes();
  const int64_t rows = grid_nodes * options_.batch;
  row_weight_ = data::host_filled({rows}, DType::f32, options_.device, [&](data::HostValues& v) {
    for (int64_t r = 0; r < rows; ++r) v[static_cast<size_t>(r)] = g.row_weight[static_cast<size_t>((r % grid_nodes) / g.num_lon())];
  });
  col_weight_ = data::host_filled({options_.out_channels}, DType::f32, options_.device, [](data::HostValues& v) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0;
  });
}

void Trainer::upload_inputs() {
  const int64_t rows = geometry().num_grid_nodes() * options_.batch;
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
  uint64_t state = options_.seed * 7919 + 17;
  random_input_ = data::host_filled({rows, options_.in_channels - 3}, config_.compute_dtype, options_.device,
                                    [&](data::HostValues& v) { for (size_t i = 0; i < v.size(); ++i) v[i] = next_normal(state); });
  random_target_ = data::host_filled({rows, options_.out_channels}, DType::f32, options_.device,
                                     [&](data::HostValues& v) { for (size_t i = 0; i < v.size(); ++i) v[i] = next_normal(state); });
}

// ---- the step ---------------------------------------------------------------------

data::Batch Trainer::batch_of(const std::vector<data::Sample>& samples) const {
  return data::assemble_batch(*data(), norm_, samples, options_.rollout, config_.compute_dtype, options_.device);
}

data::Batch Trainer::next_batch(int micro_step) {
  if (!data()) {
    data::Batch batch;
    batch.input = random_input_;
    batch.targets = {random_target_};
    return batch;
  }
  return batch_of(data::draw_training_samples(*data(), options_.seed, micro_step, options_.batch, options_.rollout));
}

Var Trainer::predict(const Var& input) const { return net_->forward(input, device_geometry_, plan().stages); }

Var Trainer::loss_of(const data::Batch& batch) {
  if (!data()) {
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
           });
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
  double loss_sum = 0;
  for (int micro = 0; micro < options_.accum; ++micro) {
    data::Batch batch;
    {
      TraceSpan span("input", "make_batch");
      batch = next_batch(step * options_.accum + micro);
    }
    Var loss;
    {
      TraceSpan span("forward", "forward");
      loss = loss_of(batch);
    }
    loss_sum += scalar_value(loss.value());
    const double factor = loss_scaler_.scale / options_.accum;
    TraceSpan span("backward", "backward");
    backward(factor == 1.0 ? loss : scale(loss, factor));
  }
  TraceSpan optimizer_span("optimizer", "optimizer");
  rec.loss = loss_sum / options_.accum;
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
  rec.ms = seconds_since(start) * 1e3;
  rec.flops = linear_flops() - flops_before;
  return rec;
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
    const bool saving = !checkpoint_dir_.empty() && options_.device != Device::meta;
    const bool due = (checkpoint_every_ > 0 && completed_steps_ % checkpoint_every_ == 0) ||
                     (checkpoint_every_minutes_ > 0 && seconds_since(last_save) >= 60 * checkpoint_every_minutes_);
    if (saving && (interrupt_requested() || (due && completed_steps_ < options_.steps))) {
      save_checkpoint(checkpoint_dir_);
      last_checkpoint_step_ = completed_steps_;
      last_save = std::chrono::steady_clock::now();
    }
    if (interrupt_requested()) {
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
  int64_t in_use = 0, total = 0;
  if (options_.device == Device::cuda && cuda_memory_in_use(&in_use, &total)) {
    memory_.device_in_use = in_use;
    memory_.outside_allocator = in_use - alloc.stats().reserved;
  }
  alloc.set_peak_snapshot(false);
}

}  // namespace gc
