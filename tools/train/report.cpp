// report.cpp: the --report JSON (DESIGN.md contract) and checkpoints.
//
// A checkpoint is a directory <out>/checkpoint-<step>/ holding
// weights.safetensors (the f32 master weights under their module paths, loadable
// by Python's safetensors) and train_state.safetensors (AdamW moments, with the
// step and the settings that must match in its metadata). <out>/latest names
// the newest complete one and is replaced atomically after both files are on
// disk, so a run killed while saving leaves the previous checkpoint usable.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/io/atomic_file.h"
#include "tools/io/safetensors.h"
#include "tools/memory/memory_report.h"
#include "tools/train/trainer.h"

namespace gc {

namespace {

json::Value config_json(const TrainOptions& o) {
  json::Value c = json::Value::object();
  c["preset"] = o.preset;
  c["grid_deg"] = o.grid_deg;
  c["mesh_level"] = o.mesh_level;
  c["latent"] = o.latent;
  c["layers"] = o.layers;
  c["in_channels"] = o.in_channels;
  c["out_channels"] = o.out_channels;
  c["concat_trick"] = o.concat_trick;
  c["steps"] = o.steps;
  c["batch"] = o.batch;
  c["accum"] = o.accum;
  c["lr"] = o.lr;
  c["warmup_steps"] = o.warmup_steps;
  c["rollout"] = o.rollout;
  c["seed"] = static_cast<int64_t>(o.seed);
  c["clip_norm"] = o.clip_norm;
  c["weight_decay"] = o.weight_decay;
  c["adam_beta1"] = o.adam_beta1;
  c["adam_beta2"] = o.adam_beta2;
  c["adam_eps"] = o.adam_eps;
  c["precision"] = o.precision;
  c["remat"] = o.remat;
  c["mem_budget"] = o.mem_budget;
  c["mem_limit"] = o.mem_limit;
  c["edge_chunks"] = o.edge_chunks;
  c["device"] = device_name(o.device);
  c["out"] = o.out_dir;
  c["data_truncation"] = o.data_truncation;
  return c;
}

json::Value categories_json(const std::array<int64_t, kNumCategories>& bytes) {
  json::Value v = json::Value::object();
  for (int c = 0; c < kNumCategories; ++c) v[category_name(static_cast<Category>(c))] = bytes[static_cast<size_t>(c)];
  return v;
}

json::Value matrix_json(const std::vector<std::vector<double>>& m) {
  json::Value a = json::Value::array();
  for (const auto& row : m) {
    json::Value r = json::Value::array();
    for (double v : row) r.push_back(v);
    a.push_back(r);
  }
  return a;
}

}  // namespace

json::Value Trainer::report(const EvalResult* eval) const {
  json::Value r = json::Value::object();
  r["config"] = config_json(options_);
  json::Value graph = json::Value::object();
  const model::GraphCastGeometry& geometry_ = geometry();
  graph["grid_nodes"] = geometry_.num_grid_nodes();
  graph["mesh_nodes"] = geometry_.num_mesh_nodes();
  graph["mesh_edges"] = geometry_.mesh.num_edges();
  graph["g2m_edges"] = geometry_.g2m.num_edges();
  graph["m2g_edges"] = geometry_.m2g.num_edges();
  r["graph"] = graph;
  const model::ParameterCounts pc = net_->parameter_counts();
  json::Value params = json::Value::object();
  params["total"] = pc.total();
  params["encoder"] = pc.encoder;
  params["processor"] = pc.processor;
  params["decoder"] = pc.decoder;
  r["params"] = params;

  json::Value mem = json::Value::object();
  const AllocatorStats& s = memory_.stats;
  mem["device"] = device_name(options_.device);
  mem["peak_allocated"] = s.peak_allocated;
  mem["peak_reserved"] = s.peak_reserved;
  mem["at_peak"] = categories_json(s.at_peak);
  mem["peak_label"] = s.peak_label;
  mem["category_peak"] = categories_json(s.category_peak);
  mem["segments_peak"] = s.peak_segments;
  mem["ooms"] = s.num_ooms;
  if (memory_.device_in_use >= 0) {
    mem["device_in_use"] = memory_.device_in_use;
    mem["outside_allocator"] = memory_.outside_allocator;
  }
  const RematPlan& chosen = plan();
  json::Value plan = json::Value::object();
  plan["policy"] = options_.remat;
  json::Value segments = json::Value::array();
  for (const model::StagePlan& p : chosen.stages) {
    json::Value seg = json::Value::object();
    seg["first_stage"] = p.first_stage;
    seg["last_stage"] = p.last_stage;
    seg["checkpoint"] = p.checkpoint;
    segments.push_back(seg);
  }
  plan["segments"] = segments;
  plan["edge_chunks"] = options_.edge_chunks;
  if (chosen.automatic()) {
    plan["budget"] = chosen.budget;
    plan["description"] = chosen.description;
    plan["predicted_peak_allocated"] = chosen.predicted_peak_allocated;
    plan["predicted_peak_reserved"] = chosen.predicted_peak_reserved;
    plan["predicted_recompute_overhead"] = chosen.predicted_overhead;
  }
  mem["plan"] = plan;
  json::Value top = json::Value::array();
  for (const LiveBlock& b : memory_.top_live) {
    json::Value t = json::Value::object();
    t["label"] = b.label;
    t["tensor"] = b.shape;
    t["category"] = category_name(b.category);
    t["bytes"] = b.bytes;
    top.push_back(t);
  }
  mem["largest_at_peak"] = top;
  json::Value modules = json::Value::array();
  for (const auto& [module, bytes] : bytes_by_module(memory_.by_label)) {
    json::Value m = json::Value::object();
    m["module"] = module;
    m["bytes"] = bytes;
    modules.push_back(m);
  }
  mem["by_module_at_peak"] = modules;
  r["memory"] = mem;

  json::Value timing = json::Value::object();
  std::vector<double> ms;
  for (const StepRecord& h : history_) ms.push_back(h.ms);
  std::sort(ms.begin(), ms.end());
  timing["steps"] = static_cast<int64_t>(history_.size());
  timing["step_ms_median"] = ms.empty() ? 0.0 : ms[ms.size() / 2];
  const double flops = history_.empty() ? 0.0 : history_.back().flops;
  timing["flops_per_step"] = flops;
  timing["achieved_tflops"] = ms.empty() || ms[ms.size() / 2] <= 0 ? 0.0 : flops / (ms[ms.size() / 2] * 1e-3) / 1e12;
  timing["setup_s"] = setup_.seconds;
  timing["graph_build_s"] = setup_.graph_seconds;
  r["timing"] = timing;

  json::Value train = json::Value::object();
  train["loss_first"] = history_.empty() ? 0.0 : history_.front().loss;
  train["loss_last"] = history_.empty() ? 0.0 : history_.back().loss;
  train["skipped_steps"] = loss_scaler_.skipped_steps;
  train["loss_scale"] = loss_scaler_.scale;
  r["train"] = train;

  if (eval && !eval->lead_hours.empty()) {
    json::Value e = json::Value::object();
    json::Value leads = json::Value::array();
    for (int h : eval->lead_hours) leads.push_back(h);
    e["lead_hours"] = leads;
    json::Value vars = json::Value::array();
    for (const std::string& v : eval->variables) vars.push_back(v);
    e["variables"] = vars;
    e["cases"] = eval->cases;
    json::Value rmse = json::Value::object();
    rmse["model"] = matrix_json(eval->rmse_model);
    rmse["persistence"] = matrix_json(eval->rmse_persistence);
    rmse["climatology"] = matrix_json(eval->rmse_climatology);
    e["rmse"] = rmse;
    json::Value acc = json::Value::object();
    acc["model"] = matrix_json(eval->acc_model);
    e["acc"] = acc;
    r["eval"] = e;
  }
  return r;
}

// ---- checkpoints -------------------------------------------------------------------------

namespace {
std::string read_small_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::string();
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && s.size() < 65536) s.append(buf, n);
  std::fclose(f);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool is_dir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string checkpoint_identity(const TrainOptions& o) {
  return "preset=" + o.preset + " latent=" + std::to_string(o.latent) + " layers=" + std::to_string(o.layers) +
         " mesh=" + std::to_string(o.mesh_level) + " in=" + std::to_string(o.in_channels) +
         " out=" + std::to_string(o.out_channels);
}
}  // namespace

namespace {
// The settings the learning-rate schedule depends on, as one readable string.
std::string schedule_identity(const TrainOptions& o) {
  char text[128];
  std::snprintf(text, sizeof text, "--steps %d --lr %.9g --warmup %d", o.steps, o.lr, std::max(0, o.warmup_steps));
  return text;
}
}  // namespace

void Trainer::save_checkpoint(const std::string& out_dir) const {
  if (options_.device == Device::meta) return;  // a dry run has no values to save
  const std::string name = "checkpoint-" + std::to_string(completed_steps_);
  const std::string dir = out_dir + "/" + name;
  make_directories(dir);
  std::vector<std::pair<std::string, Tensor>> weights, state;
  const std::vector<Var>& params = optimizer_->params();
  for (size_t i = 0; i < params.size(); ++i) {
    weights.push_back({params[i].name(), params[i].value()});
    state.push_back({params[i].name() + ".adam_m", optimizer_->first_moments()[i]});
    state.push_back({params[i].name() + ".adam_v", optimizer_->second_moments()[i]});
  }
  save_safetensors(dir + "/weights.safetensors", weights, {{"format", "gc-graphcast"}, {"config", checkpoint_identity(options_)}});
  char scale[64];
  std::snprintf(scale, sizeof scale, "%.17g", loss_scaler_.scale);
  save_safetensors(dir + "/train_state.safetensors", state,
                   {{"step", std::to_string(completed_steps_)},
                    {"optimizer_steps", std::to_string(optimizer_->steps())},
                    {"config", checkpoint_identity(options_)},
                    {"seed", std::to_string(options_.seed)},
                    {"loss_scale", scale},
                    {"clean_steps", std::to_string(loss_scaler_.clean_steps)},
                    {"skipped_steps", std::to_string(loss_scaler_.skipped_steps)},
                    {"schedule", schedule_identity(options_)}});
  const std::string previous = read_small_file(out_dir + "/latest");
  write_file_atomic(out_dir + "/latest", name + "\n");
  // The older checkpoint is removed only once the new one is complete and named.
  if (!previous.empty() && previous != name && previous.rfind("checkpoint-", 0) == 0) {
    std::remove((out_dir + "/" + previous + "/weights.safetensors").c_str());
    std::remove((out_dir + "/" + previous + "/train_state.safetensors").c_str());
    rmdir((out_dir + "/" + previous).c_str());
  }
}

void Trainer::load_checkpoint(const std::string& path) {
  std::string dir = path;
  const std::string latest = read_small_file(path + "/latest");
  if (!latest.empty()) dir = path + "/" + latest;
  if (!is_dir(dir)) throw std::runtime_error("--resume: '" + path + "' is not a checkpoint directory");
  SafetensorsFile weights = load_safetensors(dir + "/weights.safetensors", Device::cpu);
  SafetensorsFile state = load_safetensors(dir + "/train_state.safetensors", Device::cpu);
  auto meta = [&](const std::string& key) -> std::string {
    for (const auto& [k, v] : state.metadata)
      if (k == key) return v;
    throw std::runtime_error(dir + "/train_state.safetensors: metadata '" + key + "' missing");
  };
  if (meta("config") != checkpoint_identity(options_))
    throw std::runtime_error("--resume: " + dir + " was written for " + meta("config") + ", this run is " +
                             checkpoint_identity(options_));
  auto find = [](const SafetensorsFile& f, const std::string& name) -> const Tensor* {
    for (const auto& [n, t] : f.tensors)
      if (n == name) return &t;
    return nullptr;
  };
  std::vector<Var> params = optimizer_->params();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor* w = find(weights, params[i].name());
    const Tensor* m = find(state, params[i].name() + ".adam_m");
    const Tensor* v = find(state, params[i].name() + ".adam_v");
    if (!w || !m || !v) throw std::runtime_error(dir + ": tensor '" + params[i].name() + "' missing");
    if (w->shape() != params[i].shape() || w->dtype() != params[i].dtype())
      throw std::runtime_error(dir + ": tensor '" + params[i].name() + "' is " + w->describe() + ", expected " +
                               params[i].value().describe());
    params[i].mutable_value().copy_from(*w);
    optimizer_->first_moments()[i].copy_from(*m);
    optimizer_->second_moments()[i].copy_from(*v);
  }
  start_step_ = std::stoi(meta("step"));
  completed_steps_ = start_step_;
  optimizer_->set_steps(std::stoll(meta("optimizer_steps")));
  loss_scaler_.scale = std::stod(meta("loss_scale"));
  loss_scaler_.clean_steps = std::stoi(meta("clean_steps"));
  loss_scaler_.skipped_steps = std::stoi(meta("skipped_steps"));
  // The learning rate at a step depends on --steps, --lr and --warmup: a run
  // resumed with other values continues on another schedule (allowed: longer
  // training is a common reason to resume), so say so.
  const std::string schedule = schedule_identity(options_);
  for (const auto& [k, v] : state.metadata)
    if (k == "schedule" && v != schedule)
      std::fprintf(stderr,
                   "gc_train: note: the checkpoint was written by a run scheduled as %s; this run is %s: its "
                   "learning rates from step %d on follow this run's schedule\n",
                   v.c_str(), schedule.c_str(), start_step_ + 1);
  if (start_step_ >= options_.steps)
    throw std::runtime_error("--resume: the checkpoint is at step " + std::to_string(start_step_) +
                             ", nothing left to do for --steps " + std::to_string(options_.steps));
}

}  // namespace gc
