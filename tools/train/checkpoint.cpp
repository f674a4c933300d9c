// checkpoint.cpp: saving and resuming a run.
//
// A checkpoint is a directory <out>/checkpoint-<step>/ holding
// weights.safetensors (the f32 master weights under their module paths, loadable
// by Python's safetensors) and train_state.safetensors (AdamW moments, with the
// step and the settings that must match in its metadata). <out>/latest names
// the newest complete one and is replaced atomically after both files are on
// disk, so a run killed while saving leaves the previous checkpoint usable.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/io/atomic_file.h"
#include "tools/io/safetensors.h"
#include "tools/train/trainer.h"

namespace gc {

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
