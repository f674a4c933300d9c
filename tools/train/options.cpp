// options.cpp: presets, flag parsing and --help for gc_train.
#include "tools/train/options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>

#include "runtime/allocator.h"
#include "tools/memory/cards.h"

namespace gc {

DType TrainOptions::compute_dtype() const {
  if (precision == "fp32") return DType::f32;
  if (precision == "bf16") return DType::bf16;
  if (precision == "fp16") return DType::f16;
  throw UsageError("--precision must be fp32, bf16 or fp16, got '" + precision + "'");
}

std::string train_usage() {
  return R"(usage: gc_train [flags]

Trains GraphCast. With no flags: the demo configuration on the built-in
shallow-water data (generated on first use, then cached), evaluation against
persistence and climatology, pictures, checkpoints and a report in runs/demo/.

preset
  --preset NAME         demo (default) | era5-demo (needs --data DIR) | graphcast (0.25 deg, 37 levels, 474 in / 227 out,
                        mesh 6, latent 512, 16 layers) | graphcast-small (1 deg, 13 levels,
                        186/83, mesh 5) | graphcast-operational (0.25 deg, 13 levels, 184/83,
                        mesh 6); the flags below override a preset's fields
model
  --grid DEG            equiangular grid spacing with poles (presets without data)
  --mesh R              finest icosahedral mesh level
  --latent N            latent width
  --layers N            processor layers (1..1024)
  --in-channels N       grid input width including the 3 structural features
  --out-channels N      predicted channels
  --concat-trick on|off split the first edge-MLP weight instead of concatenating (default on)
  --processor BLOCK     the processor's message-passing block: interaction (default, the
                        published one) | gated (sigmoid-gated messages, GRU-style node update)
                        | attention (softmax over each receiver's incoming edges, 4 heads;
                        latent a multiple of 4); see docs/BLOCKS.md
training
  --steps N             optimizer steps
  --batch N             samples per step
  --accum N             micro-batches accumulated per step
  --lr F                peak learning rate (warm-up then cosine decay)
  --warmup N            warm-up steps
  --weight-decay F      AdamW's decoupled weight decay (default 0.1)
  --adam-beta1 F        AdamW's first-moment decay (default 0.9)
  --adam-beta2 F        AdamW's second-moment decay (default 0.95)
  --adam-eps F          AdamW's epsilon (default 1e-8)
  --clip-norm F         clip the global gradient norm to F (default 32)
  --rollout K           autoregressive steps per sample (gradients through the feedback)
  --seed N              seed of parameters, data order and random inputs
memory
  --precision P         fp32 | bf16 | fp16
  --remat POLICY        none | every:K | all | auto
  --mem-budget SIZE     budget for --remat auto (512MiB, 24GB, 1.5GiB; GB = 1e9)
  --mem-limit SIZE      cap on reserved bytes; exceeding it is an out-of-memory error
  --edge-chunks N       process encoder/decoder edges in N checkpointed chunks (1..32, at most
                        one per 4096 edges; edges are always computed in the same fixed blocks,
                        so results do not change)
ranks (data parallel: mpirun -np P ./gc_train ...; each rank takes its share of --batch)
  --ranks P             with --device meta: predict each of P ranks' memory
  --model-parallel Q    shard each sample's graphs over Q ranks (latitude bands; halo exchange);
                        P ranks = P/Q replicas of Q shards. --device meta alone: --ranks Q.
                        Training only: evaluation needs the whole grid in one process
  --bucket-mb N         gradient all-reduce bucket size in MiB (default 25)
device
  --device D            cpu | cuda | meta (meta: dry run, no data, exact memory figures)
  --meta-target D       the device a meta dry run predicts: cuda (default) or cpu; they differ
                        only in library workspaces (cuBLAS's 32 MiB vs the cpu GEMM's buffers)
  --tf32                f32 GEMMs on cuda may use TF32 tensor cores (inputs rounded to 10
                        mantissa bits, f32 accumulation); off by default
time
  --profile             time every op: a table of a step's time by op family and module at
                        the end, and "time" in the report (cuda: events, no extra host syncs)
  --card NAME           the GPU whose peak rates give the modelled step's roofline time
                        (report "traffic"): A100-40GB, A100-80GB, H100-80GB, H200-141GB, L40S,
                        RTX4090
output
  --out DIR             checkpoints, metrics.jsonl, pictures (default runs/<preset>)
  --trace FILE.json     Chrome trace (ui.perfetto.dev, chrome://tracing)
  --trace-png FILE.png  memory timeline picture
  --report FILE.json    machine-readable report
  --resume CKPT         continue from a checkpoint directory written by --out
  --grow-from CKPT      start from a trained smaller gc model (a checkpoint directory written by
                        --out): new layers start as the identity, new width by a function-
                        preserving widening (latent a multiple of the old), so the first
                        forecast equals the smaller model's within rounding
  --init-from FILE.npz  start from DeepMind's checkpoint (np.savez of its CheckPoint): mesh,
                        latent, layers, radius, channels come from the file, not from flags
  --graphs FILE.npz     the three edge lists (grid2mesh, mesh, mesh2grid) instead of gc's own
  --overwrite           let a new run replace the checkpoint another run left in --out
  --resume-with-changes let --resume continue with another precision, seed, data set or batch
  --checkpoint-every N  save a checkpoint every N steps (default max(100, steps / 4))
  --checkpoint-every-minutes M
                        also save one when M minutes have passed since the last (default 15;
                        0: never). Ctrl-C or SIGTERM finishes the step, saves and exits 130
  --no-eval             skip the evaluation
  --data-truncation T   demo data resolution: 21 (32 x 64 grid) or 42 (64 x 128)
  --data-trajectories N training trajectories of the demo data (validation and test: N/8, at least 2)
  --data-frames N       6-hourly frames per trajectory
  --data-cache DIR      where the generated data set is cached (default runs/data-cache)
weather data (docs/DATA.md)
  --data DIR            train GraphCast's task on a data set converted by tools/era5/convert.py
  --train-years SPEC    training times: 2015, 1979-2015 or 2016-01-01..2016-03-31T18
                        (default: the first three quarters of the data's times)
  --valid-years SPEC    times the evaluation scores (default: the times after the training's)
  --prefetch N          host buffers the background reader fills ahead (default 3, at least 2)
  --quiet               no progress line
  --help                this text
)";
}

namespace {

void apply_preset(const std::string& name, TrainOptions* o) {
  o->preset = name;
  if (name == "demo") {
    o->grid_deg = 0;
    o->mesh_level = 3;
    o->latent = 64;
    o->layers = 4;
    o->in_channels = 0;
    o->out_channels = 0;
    o->steps = 3000;
    o->rollout = 2;  // two autoregressive steps per sample: long leads stay skilful
    o->lr = 1e-3;  // 2e-3 trained as well for one seed and poorly for another
    o->warmup_steps = 100;
    o->weight_decay = 0.0;
    return;
  }
  if (name == "era5-demo") {
    // GraphCast's task on a converted ERA5 / WeatherBench2 data set (--data DIR,
    // docs/DATA.md), sized for two CPU cores: the demo's network on the data's grid.
    apply_preset("demo", o);
    o->preset = name;
    o->steps = 3000;
    o->rollout = 1;
    return;
  }
  o->latent = 512;
  o->layers = 16;
  o->rollout = 1;
  o->steps = 1;
  o->lr = 1e-3;
  o->warmup_steps = 0;
  o->weight_decay = 0.1;
  if (name == "graphcast") {
    o->grid_deg = 0.25;
    o->mesh_level = 6;
    o->in_channels = 474;
    o->out_channels = 227;
  } else if (name == "graphcast-small") {
    o->grid_deg = 1.0;
    o->mesh_level = 5;
    o->in_channels = 186;
    o->out_channels = 83;
  } else if (name == "graphcast-operational") {
    o->grid_deg = 0.25;
    o->mesh_level = 6;
    o->in_channels = 184;
    o->out_channels = 83;
  } else {
    throw UsageError("unknown preset '" + name + "' (demo, era5-demo, graphcast, graphcast-small, graphcast-operational)");
  }
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t min_value,
                  int64_t max_value = std::numeric_limits<int>::max()) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0)
    throw UsageError(flag + " expects an integer, got '" + text + "'");
  if (v < min_value) throw UsageError(flag + " must be >= " + std::to_string(min_value) + ", got " + text);
  if (v > max_value) throw UsageError(flag + " must be <= " + std::to_string(max_value) + ", got " + text);
  return v;
}

std::string format_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

double parse_double(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) throw UsageError(flag + " expects a number, got '" + text + "'");
  return v;
}

// A number in [lo, hi) (hi itself is refused: a beta of 1 never forgets).
double parse_fraction(const std::string& flag, const std::string& text, double lo, double hi) {
  const double v = parse_double(flag, text);
  if (v < lo || v >= hi)
    throw UsageError(flag + " must be >= " + format_number(lo) + " and < " + format_number(hi) + ", got " + text);
  return v;
}

// A switch: on when given alone; --flag=VALUE takes true/false, on/off, yes/no or 1/0.
bool switch_value(const std::string& flag, bool inline_value, const std::string& value) {
  if (!inline_value) return true;
  if (value == "true" || value == "on" || value == "yes" || value == "1") return true;
  if (value == "false" || value == "off" || value == "no" || value == "0") return false;
  throw UsageError(flag + " is a switch: give it alone, or " + flag + "=true|false, got '" + value + "'");
}

int64_t parse_size(const std::string& flag, const std::string& text) {
  try {
    return parse_bytes(text);
  } catch (const std::invalid_argument& e) {
    throw UsageError(flag + ": " + e.what());
  }
}

}  // namespace

bool parse_train_options(const std::vector<std::string>& args, TrainOptions* o, std::string* help) {
  // The preset first, so that every other flag overrides it.
  std::string preset = "demo";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      if (help) *help = train_usage();
      return false;
    }
    if (args[i] == "--preset") {
      if (i + 1 >= args.size()) throw UsageError("--preset needs a value");
      preset = args[i + 1];
    } else if (args[i].rfind("--preset=", 0) == 0) {
      preset = args[i].substr(9);
    }
  }
  apply_preset(preset, o);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    const size_t eq = flag.find('=');
    bool inline_value = false;
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    auto next = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= args.size()) throw UsageError(flag + " needs a value (see --help)");
      return args[++i];
    };
    if (flag == "--preset") next();
    else if (flag == "--grid") {
      o->grid_deg = parse_double(flag, next());
      // At least 0.01 degrees: finer spacings would make grids of billions of points,
      // and 180 / spacing would always look whole in double precision.
      if (!(o->grid_deg >= 0.01) || o->grid_deg > 30 ||
          std::fabs(180.0 / o->grid_deg - std::round(180.0 / o->grid_deg)) > 1e-9)
        throw UsageError("--grid must divide 180 degrees and be 0.01..30 (e.g. 0.25, 1, 2.5), got " +
                         std::to_string(o->grid_deg));
    } else if (flag == "--mesh") o->mesh_level = static_cast<int>(parse_int(flag, next(), 0));
    else if (flag == "--latent") o->latent = parse_int(flag, next(), 1, 1 << 20);
    else if (flag == "--layers") o->layers = static_cast<int>(parse_int(flag, next(), 1, 1024));
    else if (flag == "--in-channels") o->in_channels = parse_int(flag, next(), 4, 1 << 20);
    else if (flag == "--out-channels") o->out_channels = parse_int(flag, next(), 1, 1 << 20);
    else if (flag == "--concat-trick") {
      std::string v = next();
      if (v != "on" && v != "off") throw UsageError("--concat-trick takes on or off, got '" + v + "'");
      o->concat_trick = v == "on";
    } else if (flag == "--processor") {
      o->processor = next();
      try {
        model::processor_from_name(o->processor);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--processor: ") + e.what());
      }
    } else if (flag == "--steps") o->steps = static_cast<int>(parse_int(flag, next(), 1));
    else if (flag == "--batch") o->batch = static_cast<int>(parse_int(flag, next(), 1));
    else if (flag == "--accum") o->accum = static_cast<int>(parse_int(flag, next(), 1));
    else if (flag == "--ranks") o->ranks = static_cast<int>(parse_int(flag, next(), 1, 4096));
    else if (flag == "--model-parallel") o->model_parallel = static_cast<int>(parse_int(flag, next(), 1, 4096));
    else if (flag == "--bucket-mb") o->bucket_bytes = parse_int(flag, next(), 1, 1 << 20) << 20;
    else if (flag == "--lr") o->lr = parse_double(flag, next());
    else if (flag == "--weight-decay") o->weight_decay = parse_fraction(flag, next(), 0.0, 1e9);
    else if (flag == "--adam-beta1") o->adam_beta1 = parse_fraction(flag, next(), 0.0, 1.0);
    else if (flag == "--adam-beta2") o->adam_beta2 = parse_fraction(flag, next(), 0.0, 1.0);
    else if (flag == "--adam-eps") o->adam_eps = parse_fraction(flag, next(), 0.0, 1.0);
    else if (flag == "--clip-norm") o->clip_norm = parse_fraction(flag, next(), 0.0, 1e30);
    else if (flag == "--warmup") o->warmup_steps = static_cast<int>(parse_int(flag, next(), 0));
    else if (flag == "--rollout") o->rollout = static_cast<int>(parse_int(flag, next(), 1));
    else if (flag == "--seed") o->seed = static_cast<uint64_t>(parse_int(flag, next(), 0, std::numeric_limits<int64_t>::max()));
    else if (flag == "--precision") {
      o->precision = next();
      o->compute_dtype();
    } else if (flag == "--remat") {
      o->remat = next();
      const std::string& r = o->remat;
      bool ok = r == "none" || r == "all" || r == "auto";
      if (r.rfind("every:", 0) == 0) {
        parse_int("--remat every:K", r.substr(6), 1);
        ok = true;
      }
      if (!ok) throw UsageError("--remat must be none, every:K, all or auto, got '" + r + "'");
    } else if (flag == "--mem-budget") o->mem_budget = parse_size(flag, next());
    else if (flag == "--mem-limit") o->mem_limit = parse_size(flag, next());
    else if (flag == "--edge-chunks") {
      o->edge_chunks = static_cast<int>(parse_int(flag, next(), 1));
      if (o->edge_chunks > 32)
        throw UsageError("--edge-chunks must be 1..32: the encoder and decoder edges are computed in at most 32 "
                         "fixed blocks (about one per 4096 edges), which chunks group");
    }
    else if (flag == "--device") {
      try {
        o->device = device_from_name(next());
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--device: ") + e.what());
      }
    } else if (flag == "--meta-target") {
      const std::string v = next();
      if (v != "cpu" && v != "cuda") throw UsageError("--meta-target must be cpu or cuda, got '" + v + "'");
      o->meta_target = device_from_name(v);
    } else if (flag == "--tf32") o->tf32 = switch_value(flag, inline_value, value);
    else if (flag == "--profile") o->profile = switch_value(flag, inline_value, value);
    else if (flag == "--card") {
      o->card = next();
      if (!find_card(o->card)) throw UsageError("--card: unknown card '" + o->card + "' (" + card_names() + ")");
    } else if (flag == "--out") o->out_dir = next();
    else if (flag == "--trace") o->trace_path = next();
    else if (flag == "--trace-png") o->trace_png = next();
    else if (flag == "--report") o->report_path = next();
    else if (flag == "--resume") o->resume_path = next();
    else if (flag == "--init-from") o->init_from = next();
    else if (flag == "--grow-from") o->grow_from = next();
    else if (flag == "--graphs") o->graphs_path = next();
    else if (flag == "--no-eval") o->no_eval = switch_value(flag, inline_value, value);
    else if (flag == "--quiet") o->quiet = switch_value(flag, inline_value, value);
    else if (flag == "--overwrite") o->overwrite = switch_value(flag, inline_value, value);
    else if (flag == "--resume-with-changes") o->resume_with_changes = switch_value(flag, inline_value, value);
    else if (flag == "--checkpoint-every") o->checkpoint_every = static_cast<int>(parse_int(flag, next(), 1));
    else if (flag == "--checkpoint-every-minutes")
      o->checkpoint_every_minutes = parse_fraction(flag, next(), 0.0, 1e9);
    else if (flag == "--data-truncation") {
      o->data_truncation = static_cast<int>(parse_int(flag, next(), 1));
      if (o->data_truncation != 21 && o->data_truncation != 42) throw UsageError("--data-truncation must be 21 or 42");
    } else if (flag == "--data-cache") o->data_cache = next();
    else if (flag == "--data-trajectories") o->data_trajectories = static_cast<int>(parse_int(flag, next(), 1));
    else if (flag == "--data-frames") o->data_frames = static_cast<int>(parse_int(flag, next(), 4));
    else if (flag == "--data") {
      o->data_dir = next();
      if (o->data_dir.empty()) throw UsageError("--data needs a folder");
    } else if (flag == "--train-years") o->train_years = next();
    else if (flag == "--valid-years") o->valid_years = next();
    else if (flag == "--prefetch") o->prefetch_slots = static_cast<int>(parse_int(flag, next(), 2, 64));
    else throw UsageError("unknown flag '" + args[i] + "' (see --help)");
  }
  if (o->remat == "auto" && o->mem_budget == 0)
    throw UsageError("--remat auto needs --mem-budget SIZE (the memory the step must fit in)");
  if (o->mesh_level > 7) throw UsageError("--mesh must be 0..7");
  if (!o->init_from.empty() && o->has_weather_data())
    throw UsageError("--init-from with --data: gc's weather inputs are not stacked in DeepMind's channel order, so "
                     "DeepMind's weights cannot start such a run yet");
  if (o->preset == "era5-demo" && !o->has_weather_data())
    throw UsageError("--preset era5-demo trains on weather data: give --data DIR (docs/DATA.md says how to make one)");
  if ((!o->train_years.empty() || !o->valid_years.empty()) && !o->has_weather_data())
    throw UsageError("--train-years and --valid-years split weather data: give --data DIR");
  if (o->has_weather_data() && o->preset != "demo" && o->preset != "era5-demo")
    throw UsageError("--data trains on weather data with the demo or era5-demo preset (the " + o->preset +
                     " preset measures memory on random inputs of its own shape)");
  if (!o->has_data() && !o->has_weather_data() && o->rollout > 1)
    throw UsageError("--rollout > 1 needs data whose predictions can be fed back: use the demo preset");
  if (!o->init_from.empty() && !o->resume_path.empty())
    throw UsageError("--init-from starts a new run from DeepMind's weights; --resume continues a gc run: give one");
  if (o->processor == "attention" && o->latent % model::kAttentionHeads != 0 && o->init_from.empty())
    throw UsageError("--processor attention splits the latent into " + std::to_string(model::kAttentionHeads) +
                     " heads: --latent must be a multiple of " + std::to_string(model::kAttentionHeads) + ", got " +
                     std::to_string(o->latent));
  if (!o->init_from.empty() && o->processor != "interaction")
    throw UsageError("--init-from loads DeepMind's interaction-network weights: it cannot start a --processor " +
                     o->processor + " model");
  if (!o->grow_from.empty() && (!o->resume_path.empty() || !o->init_from.empty()))
    throw UsageError("--grow-from starts a new run from a smaller gc model: give it without --resume or --init-from");
  if (!o->resume_path.empty() && o->device == Device::meta)
    throw UsageError("--resume needs a device with values (cpu or cuda): a dry run on meta has no weights to load");
  if (o->ranks > 1 && o->device != Device::meta)
    throw UsageError("--ranks " + std::to_string(o->ranks) +
                     " predicts P ranks on --device meta; to run on P ranks, launch with mpirun -np P");
  if (o->model_parallel > 1 && o->device == Device::meta && o->ranks == 1) o->ranks = o->model_parallel;
  if (o->model_parallel > 1 && o->ranks > 1 && o->ranks % o->model_parallel != 0)
    throw UsageError("--ranks " + std::to_string(o->ranks) + " is not a multiple of --model-parallel " +
                     std::to_string(o->model_parallel) + ": the ranks are replicas of " +
                     std::to_string(o->model_parallel) + " shards each");
  if (o->model_parallel > 1) o->no_eval = true;  // evaluation needs the whole grid in one process
  if (o->ranks / o->model_parallel > o->batch)
    throw UsageError("--batch " + std::to_string(o->batch) + " over " + std::to_string(o->ranks / o->model_parallel) +
                     " data-parallel replicas: every replica needs at least one sample; use --batch " +
                     std::to_string(o->ranks / o->model_parallel) +
                     " or more (with --accum to keep the memory of a smaller batch)");
  if (o->out_dir.empty()) o->out_dir = "runs/" + o->preset;
  if (o->checkpoint_every == 0) o->checkpoint_every = std::max(100, o->steps / 4);
  return true;
}

model::GraphCastConfig graphcast_config(const TrainOptions& o, int edge_chunks) {
  model::GraphCastConfig c;
  c.latent = o.latent;
  c.layers = o.layers;
  c.mesh_level = o.mesh_level;
  c.in_channels = o.in_channels;
  c.out_channels = o.out_channels;
  c.compute_dtype = o.compute_dtype();
  c.concat_trick = o.concat_trick;
  c.processor = model::processor_from_name(o.processor);
  c.edge_chunks = edge_chunks;
  c.batch = o.batch;
  return c;
}

}  // namespace gc

namespace gc {

kernels::AdamWSettings adamw_settings(const TrainOptions& o) {
  kernels::AdamWSettings adam;
  adam.lr = o.lr;
  adam.beta1 = o.adam_beta1;
  adam.beta2 = o.adam_beta2;
  adam.eps = o.adam_eps;
  adam.weight_decay = o.weight_decay;
  return adam;
}

}  // namespace gc
