// trainer.h: the training job behind gc_train.
//
// A run is prepared before anything is allocated on the device (prepare_run:
// data, geometry and the resolved rematerialization plan, --remat auto's dry
// runs included), then a Trainer allocates the model, the optimizer and the
// fixed inputs in its constructor, in a fixed order, and runs the steps. The
// step is one code path for cpu, cuda and meta; on meta no value is read, so a
// dry run makes exactly the allocations of the real run.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/optimizer.h"
#include "runtime/profile.h"
#include "model/graphcast.h"
#include "tools/data/batch.h"
#include "tools/data/normalization.h"
#include "tools/data/weather_task.h"
#include "tools/io/json.h"
#include "tools/train/options.h"
#include "tools/train/setup.h"

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
  std::vector<std::string> units;  // per variable; empty: the demo data's (h, u, v)
  // [variable][lead]
  std::vector<std::vector<double>> rmse_model, rmse_persistence, rmse_climatology, acc_model;
  int cases = 0;
};

// One rank's figures of a data-parallel run (gathered to every rank after train()).
struct RankSummary {
  int rank = 0;
  int replica = 0, shard = 0;          // --model-parallel Q: rank = replica * Q + shard
  int batch = 0;                       // its share of --batch
  int64_t peak_allocated = 0, peak_reserved = 0;
  int64_t bytes_sent = 0;              // to the other ranks, over the run
  double communication_seconds = 0;    // inside the collectives (transfer and waiting)
  double step_seconds = 0;             // its steps' wall time
};

struct MemorySummary {
  AllocatorStats stats;
  std::vector<RankSummary> ranks;   // data parallel: every rank, in rank order (empty: one process)
  std::vector<LiveBlock> top_live;  // largest live tensors at the peak
  std::vector<LiveBlock> by_label;  // bytes per allocation label at the peak
  // cuda only (else -1): the driver's bytes in use on the GPU at the end of
  // training, and what of them gc's allocator had not reserved (the CUDA context,
  // cuBLAS's handle, other processes), the memory no dry run can see.
  int64_t device_in_use = -1;
  int64_t outside_allocator = -1;
};

// Learning rate at a 0-based step: linear warm-up, then cosine decay to 0.
double learning_rate(const TrainOptions& options, int step);

// fp16's dynamic loss scaling (DESIGN.md "Tensors and precision"): start at
// 2^16, halve and skip the update on a non-finite gradient norm, double after
// 2000 clean steps. Other precisions keep the scale 1.
struct LossScaler {
  bool dynamic = false;  // fp16
  double scale = 1.0;
  int clean_steps = 0, skipped_steps = 0;
  int skipped_in_a_row = 0;  // not saved: a resumed run starts counting again
  // Whether to apply this step's update, given its unscaled gradient norm.
  bool update(double grad_norm);
};

// A run whose loss or gradients stopped being finite (fp32/bf16), or whose fp16
// steps kept overflowing: it stops before the update, so no checkpoint holds
// the broken weights.
class Diverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// fp16 steps skipped in a row (each halving the loss scale) after which the run
// is taken as diverged: from 2^16 the scale reaches 1 after 16 halvings.
constexpr int kMaxSkippedStepsInARow = 24;

class Trainer {
 public:
  explicit Trainer(RunSetup setup);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Saves a checkpoint into this directory every `steps` steps and when
  // `minutes` (0: never) have passed since the last one, during train().
  void checkpoint_every(const std::string& out_dir, int steps, double minutes = 0) {
    checkpoint_dir_ = out_dir;
    checkpoint_every_ = steps;
    checkpoint_every_minutes_ = minutes;
  }
  // Called after every step (metrics.jsonl).
  void on_step(std::function<void(const StepRecord&)> callback) { on_step_ = std::move(callback); }
  // Runs the steps from the current one to --steps, or only up to step
  // `stop_after_step` (the schedule stays that of --steps). Throws OutOfMemory,
  // Diverged, and Interrupted after saving a checkpoint when a signal came.
  void train(int stop_after_step = -1);
  // One optimizer step (exposed for tests).
  StepRecord train_step(int step);

  EvalResult evaluate();  // demo data and weather data (--data)
  // Forecast of one case (demo data): trajectory, start frame t (inputs t-1, t),
  // `leads` autoregressive steps; returns [lead][grid * channels] in physical units.
  std::vector<std::vector<float>> forecast(int trajectory, int start_frame, int leads);

  // Checkpoints: <dir>/weights.safetensors + <dir>/train_state.safetensors
  // (AdamW moments and the step, with the settings in its metadata).
  void save_checkpoint(const std::string& dir) const;
  void load_checkpoint(const std::string& dir);
  json::Value report(const EvalResult* eval) const;

  const RunSetup& setup() const { return setup_; }
  const TrainOptions& options() const { return setup_.options; }
  const data::SweDataset* data() const { return setup_.data.get(); }
  const data::WeatherTask* weather() const { return setup_.weather.get(); }  // --data
  // Host bytes of the weather data's reader (its ring of buffers; 0 without --data).
  int64_t host_data_bytes() const { return host_data_bytes_; }
  // Time the steps spent waiting for the reader, and how many of them waited.
  double data_wait_seconds() const { return prefetcher_ ? prefetcher_->wait_seconds() : 0.0; }
  int64_t data_waits() const { return prefetcher_ ? prefetcher_->waits() : 0; }
  const model::GraphCastGeometry& geometry() const { return *setup_.geometry; }
  const RematPlan& plan() const { return setup_.plan; }
  const std::vector<StepRecord>& history() const { return history_; }
  const MemorySummary& memory() const { return memory_; }
  model::GraphCastNet& net() { return *net_; }
  AdamW& optimizer() { return *optimizer_; }
  int completed_steps() const { return completed_steps_; }
  // The steps' op times (with --profile) and modelled costs (runtime/profile.h):
  // summed over the steps since reset_profile(), with their count and wall
  // time, and the last step's alone.
  const Profile& profile_sum() const { return profile_sum_; }
  const Profile& last_step_profile() const { return last_step_profile_; }
  int profiled_steps() const { return profiled_steps_; }
  double profiled_wall_ms() const { return profiled_wall_ms_; }
  void reset_profile();
  int last_checkpoint_step() const { return last_checkpoint_step_; }  // -1: none saved by this trainer

 private:
  // set-up, in allocation order
  void set_memory_limit();
  void build_model();           // parameters, device graphs, optimizer state
  void upload_loss_weights();   // latitude weights per row, channel weights
  void upload_inputs();         // demo: normalization factors; else the random batch
  // the step
  StepRecord train_step_unguarded(int step);
  // Data parallel: the gradients summed over the ranks in buckets of
  // --bucket-mb (each a `communication` tensor), in a fixed order.
  void all_reduce_gradients();
  // The step's loss over every rank's samples (each rank's mean weighted by its share).
  double global_loss(double local_loss);
  // Whether `mine` holds on any rank (all of them call it together).
  bool any_rank(bool mine);
  // Throws std::runtime_error when a rank's parameters differ from rank 0's.
  void check_ranks_agree(int step);
  void gather_rank_summaries(double step_seconds);
  Communicator& comm() const;
  // Throws Diverged when this step's loss or gradients are not finite.
  void check_finite(const StepRecord& rec);
  std::string checkpoint_hint() const;
  data::Batch next_batch(int micro_step);
  data::Batch next_batch_whole(int micro_step);  // every grid row
  // Model parallel: this rank's rows ([batch * grid rows]) of a [batch * grid nodes] tensor.
  Tensor own_rows(const Tensor& t) const;
  // The step's share of the loss: this rank's samples of --batch and, model
  // parallel, its grid rows of the grid.
  double loss_share() const;
  Var loss_of(const data::Batch& batch);
  Var predict(const Var& input) const;
  data::Batch batch_of(const std::vector<data::Sample>& samples) const;
  data::Batch next_weather_batch(int micro_step);
  EvalResult evaluate_weather();

  RunSetup setup_;
  const TrainOptions& options_ = setup_.options;
  model::GraphCastConfig config_;
  std::unique_ptr<model::GraphCastNet> net_;
  model::DeviceGeometry device_geometry_;
  int64_t grid_first_ = 0, grid_rows_ = 0;  // the grid nodes this rank computes (all of them but model parallel)
  std::unique_ptr<AdamW> optimizer_;
  data::Normalization norm_;    // demo data
  Tensor row_weight_;           // [B * grid] f32
  Tensor col_weight_;           // [out] f32
  Tensor state_to_input_;       // [B * grid, out] f32: diff_std / std per channel (weather: the fed-back ones)
  Tensor keep_state_;           // [B * grid, out] f32: weather data with target-only variables (rollout.h)
  Tensor random_input_, random_target_;
  std::vector<StepRecord> history_;
  MemorySummary memory_;
  LossScaler loss_scaler_;
  int completed_steps_ = 0;
  int start_step_ = 0;
  std::string checkpoint_dir_;
  int checkpoint_every_ = 0;
  double checkpoint_every_minutes_ = 0;
  int last_checkpoint_step_ = -1;
  std::function<void(const StepRecord&)> on_step_;
  // --data: the reader's ring of host buffers (allocator bytes, `input` / data.prefetch)
  // and the thread that fills it (declared after the ring, so it stops first).
  Tensor prefetch_pool_;
  int64_t host_data_bytes_ = 0;
  std::unique_ptr<data::WeatherPrefetcher> prefetcher_;
  int64_t previous_limit_ = 0;
  bool limit_set_ = false;
  Profile profile_sum_, last_step_profile_;
  int profiled_steps_ = 0;
  double profiled_wall_ms_ = 0;
};

}  // namespace gc
