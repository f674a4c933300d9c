// checkpoint.cpp: saving and resuming a run.
//
// A checkpoint is a directory <out>/checkpoint-<step>/ holding
// weights.safetensors (the f32 master weights under their module paths, loadable
// by Python's safetensors) and train_state.safetensors (AdamW moments, with the
// step and the settings that must match in its metadata). <out>/latest names
// the newest complete one and is replaced atomically after both files are on
// disk, so a run killed while saving leaves the previous checkpoint usable.
// Resuming checks everything (tensor names, shapes and dtypes, every metadata
// value parsed whole and range-checked) before it changes the trainer.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "tools/io/atomic_file.h"
#include "tools/io/safetensors.h"
#include "tools/train/trainer.h"

namespace gc {

namespace {
// The checkpoint name in <dir>/latest without the white space around it (an
// editor's CR LF, trailing blanks); empty when there is no such file. When
// `latest` is there but cannot be read, `problem` says why (a FIFO is detected
// before it could block the read).
std::string read_latest(const std::string& dir, std::string* problem) {
  const std::string path = dir + "/latest";
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) *problem = std::string("cannot be opened: ") + std::strerror(errno);
    return std::string();
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    *problem = "is not a regular file";
    ::close(fd);
    return std::string();
  }
  std::string text;
  char buffer[4096];
  ssize_t bytes;
  while ((bytes = ::read(fd, buffer, sizeof buffer)) > 0 && text.size() < 65536) text.append(buffer, bytes);
  if (bytes < 0) *problem = std::string("cannot be read: ") + std::strerror(errno);
  ::close(fd);
  const char* blank = " \t\r\n\v\f";
  const size_t first = text.find_first_not_of(blank);
  if (first == std::string::npos) return std::string();
  return text.substr(first, text.find_last_not_of(blank) + 1 - first);
}

// A name from a file, for a message: control bytes shown as '?'.
std::string printable(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

bool is_dir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string checkpoint_identity(const TrainOptions& o) {
  return "preset=" + o.preset + " latent=" + std::to_string(o.latent) + " layers=" + std::to_string(o.layers) +
         " mesh=" + std::to_string(o.mesh_level) + " in=" + std::to_string(o.in_channels) +
         " out=" + std::to_string(o.out_channels) +
         // The published block keeps the identity it always had, so older checkpoints resume.
         (o.processor == "interaction" ? std::string() : " processor=" + o.processor);
}
}  // namespace

namespace {
// What a resumed run must share with the run it continues, beyond the model's
// shape: the precision, the seed (parameters, data order, random inputs), the
// data set and the batch. Each as (key, value) in train_state's metadata.
std::vector<std::pair<std::string, std::string>> run_identity(const TrainOptions& o) {
  const std::string data = o.has_data() ? "swe T" + std::to_string(o.data_truncation) + " trajectories " +
                                              std::to_string(o.data_trajectories) + " frames " +
                                              std::to_string(o.data_frames)
                                        : o.has_weather_data() ? "weather " + o.data_dir + " train " + o.train_years +
                                                                       " valid " + o.valid_years
                                                               : std::string("random inputs");
  return {{"precision", o.precision},
          {"seed", std::to_string(o.seed)},
          {"data", data},
          {"batch", std::to_string(o.global_batch > 0 ? o.global_batch : o.batch) + " x " + std::to_string(o.accum) +
                        " (--batch x --accum)"}};
}

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
                    {"loss_scale", scale},
                    {"clean_steps", std::to_string(loss_scaler_.clean_steps)},
                    {"skipped_steps", std::to_string(loss_scaler_.skipped_steps)},
                    {"schedule", schedule_identity(options_)},
                    {"precision", run_identity(options_)[0].second},
                    {"seed", run_identity(options_)[1].second},
                    {"data", run_identity(options_)[2].second},
                    {"batch", run_identity(options_)[3].second}});
  std::string ignored;  // an unreadable `latest` is replaced below; only the older checkpoint stays
  const std::string previous = read_latest(out_dir, &ignored);
  write_file_atomic(out_dir + "/latest", name + "\n");
  // The older checkpoint is removed only once the new one is complete and named.
  if (!previous.empty() && previous != name && previous.rfind("checkpoint-", 0) == 0) {
    std::remove((out_dir + "/" + previous + "/weights.safetensors").c_str());
    std::remove((out_dir + "/" + previous + "/train_state.safetensors").c_str());
    rmdir((out_dir + "/" + previous).c_str());
  }
}

namespace {
// Reads a checkpoint's metadata values whole and in range, so that an edited
// or damaged value ("abc", "", "1:0", a number beyond the field) is an error
// naming the file, the key and the value instead of a wrong resume.
class CheckpointMetadata {
 public:
  CheckpointMetadata(std::string file, const std::vector<std::pair<std::string, std::string>>& metadata)
      : file_(std::move(file)), metadata_(metadata) {}

  const std::string& text(const std::string& key) const {
    for (const auto& [k, v] : metadata_)
      if (k == key) return v;
    throw std::runtime_error(file_ + ": metadata '" + key + "' missing");
  }

  // A decimal integer in [low, high], digits only; `high_name` explains the bound.
  int64_t integer(const std::string& key, int64_t low, int64_t high, const std::string& high_name = "") const {
    const std::string& value = text(key);
    int64_t parsed = 0;
    const char* end = value.data() + value.size();
    const bool digits_only = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
    const auto [stop, error] = std::from_chars(value.data(), end, parsed);
    if (!digits_only || error != std::errc() || stop != end || parsed < low || parsed > high)
      fail(key, value, "an integer from " + std::to_string(low) + " to " + std::to_string(high) + high_name);
    return parsed;
  }

  // A power of two of at least 1, written by %.17g (which reads back to the same
  // bits): the loss scale starts at 1 or 65536 and is only ever halved (not
  // below 1) or doubled.
  double power_of_two(const std::string& key) const {
    const std::string& value = text(key);
    // Decimal from its first digit: strtod alone would also take blanks, signs, hex, "inf" and "nan".
    const bool decimal = !value.empty() && value[0] >= '0' && value[0] <= '9' &&
                         value.find_first_not_of("0123456789.eE+-") == std::string::npos;
    char* stop = nullptr;
    errno = 0;
    const double parsed = decimal ? std::strtod(value.c_str(), &stop) : 0.0;
    int exponent = 0;
    if (!decimal || stop != value.c_str() + value.size() || errno == ERANGE || !std::isfinite(parsed) ||
        parsed < 1.0 || std::frexp(parsed, &exponent) != 0.5)
      fail(key, value, "a power of two of at least 1");
    return parsed;
  }

 private:
  [[noreturn]] void fail(const std::string& key, const std::string& value, const std::string& expected) const {
    throw std::runtime_error(file_ + ": metadata '" + key + "' is \"" + printable(value.substr(0, 40)) +
                             (value.size() > 40 ? "...\"" : "\"") + ", expected " + expected);
  }

  std::string file_;
  const std::vector<std::pair<std::string, std::string>>& metadata_;
};

const Tensor* find_tensor(const SafetensorsFile& file, const std::string& name) {
  for (const auto& [n, t] : file.tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string dtype_and_shape(const Tensor& tensor) { return dtype_name(tensor.dtype()) + shape_string(tensor.shape()); }

// The tensor `name` of `file` (read from `path`), with the dtype and shape of `like`.
const Tensor& matching_tensor(const SafetensorsFile& file, const std::string& path, const std::string& name,
                              const Tensor& like) {
  const Tensor* found = find_tensor(file, name);
  if (!found) throw std::runtime_error(path + ": tensor '" + name + "' missing");
  if (found->shape() != like.shape() || found->dtype() != like.dtype())
    throw std::runtime_error(path + ": tensor '" + name + "' is " + dtype_and_shape(*found) + ", expected " +
                             dtype_and_shape(like));
  return *found;
}
}  // namespace

void Trainer::load_checkpoint(const std::string& path) {
  std::string dir = path;
  std::string latest_problem;
  const std::string latest = read_latest(path, &latest_problem);
  if (!latest_problem.empty()) throw std::runtime_error("--resume: " + path + "/latest " + latest_problem);
  if (!latest.empty()) {
    dir = path + "/" + latest;
    struct stat info;
    if (::stat(dir.c_str(), &info) != 0)
      throw std::runtime_error("--resume: " + path + "/latest names " + printable(latest) + ", which is missing");
    if (!S_ISDIR(info.st_mode))
      throw std::runtime_error("--resume: " + path + "/latest names " + printable(latest) + ", which is not a directory");
  }
  if (!is_dir(dir)) throw std::runtime_error("--resume: '" + path + "' is not a checkpoint directory");
  const std::string weights_path = dir + "/weights.safetensors", state_path = dir + "/train_state.safetensors";
  const SafetensorsFile weights = load_safetensors(weights_path, Device::cpu);
  const SafetensorsFile state = load_safetensors(state_path, Device::cpu);
  const CheckpointMetadata meta(state_path, state.metadata);
  if (meta.text("config") != checkpoint_identity(options_))
    throw std::runtime_error("--resume: " + dir + " was written for " + meta.text("config") + ", this run is " +
                             checkpoint_identity(options_));

  // The precision, seed, data and batch of the run continued: a change is refused
  // unless --resume-with-changes says it is meant (checkpoints that predate a key pass).
  std::string changes;
  for (const auto& [key, value] : run_identity(options_))
    for (const auto& [k, saved] : state.metadata)
      if (k == key && saved != value) changes += "\n  " + key + ": " + saved + " then, " + value + " now";
  if (!changes.empty() && !options_.resume_with_changes)
    throw UsageError("--resume: " + dir + " was written by a run with other settings:" + changes +
                     "\n(add --resume-with-changes if the change is meant)");
  bool precision_changed = false;
  for (const auto& [k, saved] : state.metadata)
    if (k == "precision" && saved != options_.precision) precision_changed = true;

  // Everything is checked before the trainer changes.
  std::vector<Var> params = optimizer_->params();
  std::vector<const Tensor*> w(params.size()), m(params.size()), v(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].name();
    w[i] = &matching_tensor(weights, weights_path, name, params[i].value());
    m[i] = &matching_tensor(state, state_path, name + ".adam_m", optimizer_->first_moments()[i]);
    v[i] = &matching_tensor(state, state_path, name + ".adam_v", optimizer_->second_moments()[i]);
  }
  const int64_t step = meta.integer("step", 0, INT_MAX);
  const std::string up_to_step = " (the checkpoint's step)";
  // Each step updates the optimizer at most once, counts at most one clean or skipped step.
  const int64_t optimizer_steps = meta.integer("optimizer_steps", 0, step, up_to_step);
  const int64_t clean_steps = meta.integer("clean_steps", 0, step, up_to_step);
  const int64_t skipped_steps = meta.integer("skipped_steps", 0, step, up_to_step);
  const double loss_scale = meta.power_of_two("loss_scale");

  for (size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_value().copy_from(*w[i]);
    optimizer_->first_moments()[i].copy_from(*m[i]);
    optimizer_->second_moments()[i].copy_from(*v[i]);
  }
  start_step_ = static_cast<int>(step);
  completed_steps_ = start_step_;
  optimizer_->set_steps(optimizer_steps);
  // Another precision starts its own loss scaling (fp16 at 2^16) rather than
  // inheriting the previous precision's scale of 1.
  if (!precision_changed) {
    loss_scaler_.scale = loss_scale;
    loss_scaler_.clean_steps = static_cast<int>(clean_steps);
    loss_scaler_.skipped_steps = static_cast<int>(skipped_steps);
  }
  // The learning rate at a step depends on --steps, --lr and --warmup: a run
  // resumed with other values continues on another schedule (allowed: longer
  // training is a common reason to resume), so say so.
  const std::string schedule = schedule_identity(options_);
  for (const auto& [k, value] : state.metadata)
    if (k == "schedule" && value != schedule && options_.rank == 0)  // data parallel: rank 0 speaks
      std::fprintf(stderr,
                   "gc_train: note: the checkpoint was written by a run scheduled as %s; this run is %s: its "
                   "learning rates from step %d on follow this run's schedule\n",
                   value.c_str(), schedule.c_str(), start_step_ + 1);
  if (start_step_ >= options_.steps)
    throw std::runtime_error("--resume: the checkpoint is at step " + std::to_string(start_step_) +
                             ", nothing left to do for --steps " + std::to_string(options_.steps));
}

}  // namespace gc
