// options.h: gc_train's command line (DESIGN.md "Programs and their contracts").
// A preset fills every field; flags given on the command line override it
// whatever their order. Bad input throws UsageError with a message that names
// the flag; the program prints it and exits 2.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/optim.h"
#include "model/graphcast.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "tools/usage_error.h"

namespace gc {

struct TrainOptions {
  std::string preset = "demo";
  // model
  double grid_deg = 0;        // 0: the data set's grid (demo: Gaussian T21)
  int mesh_level = 3;
  int64_t latent = 64;
  int layers = 4;
  int64_t in_channels = 0;    // grid node input width incl. 3 structural; 0: from the data
  int64_t out_channels = 0;   // 0: from the data
  bool concat_trick = true;
  std::string processor = "interaction";  // interaction | gated | attention (model/graphcast.h)
  // training
  int steps = 0;              // 0: the preset's
  int batch = 1;
  int accum = 1;
  double lr = 1e-3;
  int warmup_steps = -1;      // -1: the preset's
  int rollout = 1;
  uint64_t seed = 0;
  double clip_norm = 32.0;
  double weight_decay = 0.1;  // AdamW: decoupled weight decay, moment decays, epsilon
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.95;
  double adam_eps = 1e-8;
  // memory
  std::string precision = "fp32";
  std::string remat = "none";  // none | every:K | all | auto
  int64_t mem_budget = 0;
  int64_t mem_limit = 0;
  int edge_chunks = 1;
  // ranks (data parallel): under mpirun every rank takes its share of the
  // --batch samples (ranks_batch_share); --ranks P on meta predicts each rank.
  int ranks = 1;              // 1: a single process
  // --model-parallel Q: each sample's graphs sharded over Q ranks (model/partition.h);
  // rank r is shard r % Q of replica r / Q, and the replicas share --batch.
  int model_parallel = 1;
  int rank = 0;
  int global_batch = 0;       // --batch as given; `batch` is this rank's share (set by prepare_run)
  int batch_offset = 0;       // this rank's first sample of the step's --batch samples
  int64_t bucket_bytes = 25ll << 20;  // gradient all-reduce buckets (--bucket-mb)
  // device and output
  Device device = Device::cpu;
  Device meta_target = Device::cuda;  // which device a --device meta run predicts
  bool tf32 = false;          // f32 GEMMs on cuda may use TF32 tensor cores
  bool profile = false;       // time every op: the end-of-run time table and the report's "time"
  std::string card;           // --card NAME (tools/memory/cards.h): the roofline of the modelled cost
  std::string out_dir;        // "" : runs/<preset>
  std::string trace_path, trace_png, report_path, resume_path;
  std::string grow_from;      // a gc checkpoint of a smaller model of the same kind: grown into this one (tools/train/grow.h)
  std::string init_from;      // DeepMind checkpoint (.npz): the model configuration and the weights come from it
  std::string graphs_path;    // the three edge lists (.npz) instead of gc's construction
  bool no_eval = false;
  bool quiet = false;
  bool overwrite = false;
  bool resume_with_changes = false;  // --resume may change precision, seed, data or batch            // a new run may replace another run's checkpoint in out_dir
  int checkpoint_every = 0;          // steps; 0: max(100, steps / 4)
  double checkpoint_every_minutes = 15;  // 0: never by time
  int data_truncation = 21;   // demo data: spectral truncation (21 or 42)
  std::string data_cache;     // "" : runs/data-cache
  int data_trajectories = 0;  // training trajectories of the demo data (0: the data set's default)
  int data_frames = 0;        // frames per trajectory (0: default)
  std::string data_dir;       // --data: a gc weather data set (docs/DATA.md), GraphCast's task on it
  std::string train_years, valid_years;  // --train-years / --valid-years ("" : 3/4 and the rest)
  int prefetch_slots = 3;     // --prefetch: host buffers of the weather data's reader

  DType compute_dtype() const;
  int replicas() const { return ranks / model_parallel; }
  int replica() const { return rank / model_parallel; }
  int shard() const { return rank % model_parallel; }
  // The built-in demo data (SWE), unless --data names weather data.
  bool has_data() const { return preset == "demo" && data_dir.empty(); }
  bool has_weather_data() const { return !data_dir.empty(); }
};

// The network these options describe, its encoder/decoder edges grouped into
// `edge_chunks` checkpointed segments (the trainer's own run, or a candidate of
// --remat auto).
model::GraphCastConfig graphcast_config(const TrainOptions& options, int edge_chunks);

// AdamW's settings of these options (the learning rate is the peak; each step
// passes its own).
kernels::AdamWSettings adamw_settings(const TrainOptions& options);

// Parses argv (without argv[0]). Returns false when --help was asked (text in *help).
bool parse_train_options(const std::vector<std::string>& args, TrainOptions* options, std::string* help);
std::string train_usage();

}  // namespace gc
