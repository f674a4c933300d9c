// trainer.h: the training job behind gc_train: set-up (grid, graphs, model,
// data), the training step, evaluation, and what it writes. The step is one
// code path for cpu, cuda and meta; on meta no value is read, so a dry run
// makes exactly the allocations of the real run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/optimizer.h"
#include "model/graphcast.h"
#include "tools/data/swe_dataset.h"
#include "tools/io/json.h"
#include "tools/train/options.h"

namespace gc {

struct StepRecord {
  int step = 0;
  double loss = 0, lr = 0, grad_norm = 0, ms = 0;
  bool skipped = false;  // fp16 overflow: update skipped
  double flops = 0;      // linear-layer FLOPs of the step, recomputation included
};

struct EvalResult {
  std::vector<int> lead_hours;
  std::vector<std::string> variables;
  // [variable][lead]
  std::vector<std::vector<double>> rmse_model, rmse_persistence, rmse_climatology, acc_model;
  int cases = 0;
};

struct MemorySummary {
  AllocatorStats stats;
  std::vector<LiveBlock> top_live;  // largest live tensors at the peak
  std::vector<LiveBlock> by_label;  // bytes per allocation label at the peak
  // cuda only (else -1): the driver's bytes in use on the GPU at the end of
  // training, and what of them gc's allocator had not reserved (the CUDA context,
  // cuBLAS's handle, other processes), the memory no dry run can see.
  int64_t device_in_use = -1;
  int64_t outside_allocator = -1;
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& options);
  ~Trainer();

  void setup();               // grid, graphs, model, optimizer, data
  // Reuses graphs built by another trainer of the same grid and mesh (dry runs).
  void use_geometry(const model::GraphCastGeometry& geometry) { prebuilt_geometry_ = &geometry; }
  // Uses this rematerialization plan (and edge chunk count) instead of the
  // one --remat names; set before setup(). Dry runs of --remat auto use it.
  void use_plan(const std::vector<model::StagePlan>& plan, int edge_chunks) {
    explicit_plan_ = plan;
    has_explicit_plan_ = true;
    options_.edge_chunks = edge_chunks;
  }
  // What --remat auto chose (empty description otherwise).
  struct AutoPlanInfo {
    std::string description;
    int edge_chunks = 1;
    int64_t budget = 0, predicted_peak_allocated = 0, predicted_peak_reserved = 0;
    double predicted_overhead = 0;
  };
  const AutoPlanInfo& auto_plan() const { return auto_plan_; }
  // Saves a checkpoint into this directory every `every` steps during train().
  void checkpoint_every(const std::string& out_dir, int every) { checkpoint_dir_ = out_dir; checkpoint_every_ = every; }
  // Runs the steps from the current one to --steps, or only up to step
  // `stop_after_step` (the schedule stays that of --steps). Throws OutOfMemory.
  void train(int stop_after_step = -1);
  EvalResult evaluate();      // demo data only
  // Forecast of one case (demo data): trajectory, start frame t (inputs t-1, t),
  // `leads` autoregressive steps; returns [lead][grid * channels] in physical units.
  std::vector<std::vector<float>> forecast(int trajectory, int start_frame, int leads);
  const data::SweDataset* data() const { return data_.get(); }
  json::Value report(const EvalResult* eval) const;

  const TrainOptions& options() const { return options_; }
  const std::vector<StepRecord>& history() const { return history_; }
  const MemorySummary& memory() const { return memory_; }
  model::GraphCastNet& net() { return *net_; }
  AdamW& optimizer() { return *optimizer_; }
  const model::GraphCastGeometry& geometry() const { return geometry_; }
  const std::vector<model::StagePlan>& plan() const { return plan_; }
  int completed_steps() const { return completed_steps_; }

  // Checkpoints: <dir>/weights.safetensors + <dir>/train_state.safetensors
  // (AdamW moments and the step, with the settings in its metadata).
  void save_checkpoint(const std::string& dir) const;
  void load_checkpoint(const std::string& dir);

  // One optimizer step (exposed for tests). Returns the mean loss.
  StepRecord train_step(int step);

  // Learning rate at a 0-based step: linear warm-up, then cosine decay to 0.
  double learning_rate(int step) const;

 private:
  struct Batch {
    Tensor input;                       // [B * grid, data channels] compute dtype
    std::vector<Tensor> targets;        // per rollout step [B * grid, out] f32
    Tensor state;                       // [B * grid, out] f32: (X(t) - mean) / diff_std (demo)
    Tensor previous_normalized;         // [B * grid, out] compute dtype: frame t normalized (demo)
  };
  StepRecord train_step_unguarded(int step);
  Batch make_batch(int step);
  void fill_demo_batch(Batch* batch, const std::vector<std::pair<int, int>>& samples);
  Var loss_of(const Batch& batch);
  // The next autoregressive input from the current state (demo data).
  void feed_back(const Var& state, Var* previous, Var* input) const;
  void build_normalization();

  TrainOptions options_;
  model::GraphCastConfig config_;
  model::GraphCastGeometry geometry_;
  std::unique_ptr<model::GraphCastNet> net_;
  model::DeviceGeometry device_geometry_;
  std::unique_ptr<AdamW> optimizer_;
  std::vector<model::StagePlan> plan_;
  std::unique_ptr<data::SweDataset> data_;
  // Normalization (demo): per channel
  std::vector<double> mean_, std_, diff_std_;
  std::vector<float> climatology_;  // [grid, channels]
  Tensor row_weight_;   // [B * grid] f32
  Tensor col_weight_;   // [out] f32
  Tensor ratio_;        // [B * grid, out] f32: diff_std / std per channel (feedback of predictions)
  Tensor random_input_, random_target_;
  std::vector<StepRecord> history_;
  MemorySummary memory_;
  int completed_steps_ = 0;
  int start_step_ = 0;
  double setup_seconds_ = 0, graph_seconds_ = 0;
  double loss_scale_ = 1.0;
  const model::GraphCastGeometry* prebuilt_geometry_ = nullptr;
  std::string checkpoint_dir_;
  int checkpoint_every_ = 0;
  std::vector<model::StagePlan> explicit_plan_;
  bool has_explicit_plan_ = false;
  AutoPlanInfo auto_plan_;
  int64_t previous_limit_ = 0;
  bool limit_set_ = false;
  int clean_steps_ = 0, skipped_steps_ = 0;
};

}  // namespace gc
