// outputs.cpp: printing and writing the results of a training run. Everything
// written to --out goes through write_file_atomic, so an interrupted run never
// leaves a half-written file behind.
#include "tools/train/outputs.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cctype>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>
#include <sstream>

#include "tools/io/atomic_file.h"
#include "tools/memory/memory_report.h"
#include "tools/memory/time_report.h"
#include "tools/memory/trace.h"
#include "tools/train/pictures.h"

namespace gc {

void print_setup_summary(const Trainer& t) {
  if (t.options().quiet) return;
  const TrainOptions& o = t.options();
  const model::GraphCastGeometry& g = const_cast<Trainer&>(t).geometry();
  const model::ParameterCounts pc = const_cast<Trainer&>(t).net().parameter_counts();
  std::fprintf(stderr,
               "gc_train: preset %s on %s, %s, latent %lld x %d layers%s%s, mesh %d, batch %d, remat %s\n"
               "  grid %lld nodes (%lld x %lld), mesh %lld nodes, edges: mesh %lld, grid2mesh %lld, mesh2grid %lld\n"
               "  parameters %lld (encoder %lld, processor %lld, decoder %lld)\n",
               o.preset.c_str(), device_name(o.device), o.precision.c_str(), static_cast<long long>(o.latent), o.layers,
               o.processor == "interaction" ? "" : " ", o.processor == "interaction" ? "" : o.processor.c_str(),
               o.mesh_level, o.batch, o.remat.c_str(), static_cast<long long>(g.num_grid_nodes()),
               static_cast<long long>(g.grid.num_lat()), static_cast<long long>(g.grid.num_lon()),
               static_cast<long long>(g.num_mesh_nodes()), static_cast<long long>(g.mesh.num_edges()),
               static_cast<long long>(g.g2m.num_edges()), static_cast<long long>(g.m2g.num_edges()),
               static_cast<long long>(pc.total()), static_cast<long long>(pc.encoder),
               static_cast<long long>(pc.processor), static_cast<long long>(pc.decoder));
}

std::string evaluation_table(const EvalResult& e) {
  std::ostringstream o;
  o << "evaluation on " << e.cases << " held-out cases: latitude-weighted RMSE (model / persistence / climatology) and ACC\n";
  o << "  lead";
  for (const std::string& v : e.variables) o << "  | " << v << ": model  persist  climat    ACC";
  o << "\n";
  for (size_t k = 0; k < e.lead_hours.size(); ++k) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %3dh", e.lead_hours[k]);
    o << buf;
    for (size_t v = 0; v < e.variables.size(); ++v) {
      // Weather data (units given): 4 significant digits, whatever the unit's scale.
      std::snprintf(buf, sizeof buf, e.units.empty() ? "  | %*s %7.3f  %7.3f  %7.3f  %5.3f" : "  | %*s %7.4g  %7.4g  %7.4g  %5.3f",
                    static_cast<int>(e.variables[v].size() + 1), "", e.rmse_model[v][k], e.rmse_persistence[v][k],
                    e.rmse_climatology[v][k], e.acc_model[v][k]);
      o << buf;
    }
    o << "\n";
  }
  return o.str();
}

namespace {

std::string errno_text() { return std::strerror(errno); }

// Whether a new file can be made in `folder` (made, then removed at once).
std::string write_probe_error(const std::string& folder) {
  const std::string probe = folder + "/.gc-write-probe." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno_text();
  ::close(fd);
  ::unlink(probe.c_str());
  return std::string();
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string real_path(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) return path;
  std::string out(resolved);
  std::free(resolved);
  return out;
}

// `folder` can hold new files: it exists and takes them, or (create=false) the
// nearest folder above it that exists does, so it can be made when first needed.
// Else a usage error naming the flag.
void check_folder(const std::string& flag, const std::string& shown, const std::string& folder, bool create) {
  std::string existing = folder;
  while (::access(existing.c_str(), F_OK) != 0 && existing != "." && existing != "/") existing = parent_of(existing);
  if (!is_directory(existing))
    throw UsageError(flag + " " + shown + ": " + existing + " is a file, not a folder");
  std::string error = write_probe_error(existing);
  if (!error.empty()) throw UsageError(flag + " " + shown + ": cannot write in " + existing + ": " + error);
  if (!create || existing == folder) return;
  try {
    make_directories(folder);
  } catch (const std::exception& e) {
    throw UsageError(flag + " " + shown + ": " + e.what());
  }
}

// The run folder a --resume path belongs to: itself when it names the newest
// checkpoint through `latest`, else the folder holding the checkpoint.
std::string run_folder_of(const std::string& resume) {
  if (::access((resume + "/latest").c_str(), F_OK) == 0) return resume;
  return parent_of(resume);
}

}  // namespace

void check_outputs(const TrainOptions& o) {
  if (o.device != Device::meta) {
    check_folder("--out", o.out_dir, o.out_dir, false);
    const std::string latest = o.out_dir + "/latest";
    const bool holds_a_run = ::access(latest.c_str(), F_OK) == 0;
    if (holds_a_run && !o.overwrite) {
      if (o.resume_path.empty())
        throw UsageError("--out " + o.out_dir + " holds another run's checkpoint: continue it with --resume " +
                         o.out_dir + ", or let this run replace it with --overwrite (or choose another --out)");
      if (real_path(run_folder_of(o.resume_path)) != real_path(o.out_dir))
        throw UsageError("--out " + o.out_dir + " holds another run's checkpoint than --resume " + o.resume_path +
                         ": write the continued run elsewhere, or replace that run with --overwrite");
    }
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"--trace", &o.trace_path}, {"--trace-png", &o.trace_png}, {"--report", &o.report_path}};
  for (const auto& [flag, path] : files) {
    if (path->empty()) continue;
    if (is_directory(*path)) throw UsageError(std::string(flag) + " " + *path + " is a folder, not a file name");
    check_folder(flag, *path, parent_of(*path), true);
  }
}

namespace {
// N of "checkpoint-N", -1 for anything else.
long step_of(const std::string& name) {
  if (name.rfind("checkpoint-", 0) != 0 || name.size() == 11 || name.size() > 20) return -1;
  const std::string digits = name.substr(11);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stol(digits);
}
}  // namespace

void tidy_out_folder(const std::string& out_dir) {
  remove_stale_temporaries(out_dir);
  std::string latest;
  {
    std::ifstream in(out_dir + "/latest");
    std::getline(in, latest);
    while (!latest.empty() && std::isspace(static_cast<unsigned char>(latest.back()))) latest.pop_back();
  }
  DIR* dir = ::opendir(out_dir.c_str());
  if (!dir) return;
  std::vector<std::string> orphans;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind("checkpoint-", 0) != 0 || name == latest || !is_directory(out_dir + "/" + name)) continue;
    remove_stale_temporaries(out_dir + "/" + name);
    if (step_of(name) > step_of(latest) && step_of(latest) >= 0) orphans.push_back(name);
  }
  ::closedir(dir);
  // A checkpoint folder newer than the one `latest` names was never completed
  // (the run was killed while saving it): nothing resumes it. Older ones are
  // complete (their removal was cut short) and stay.
  for (const std::string& name : orphans) {
    const std::string folder = out_dir + "/" + name;
    for (const char* file : {"/weights.safetensors", "/train_state.safetensors"}) ::unlink((folder + file).c_str());
    if (::rmdir(folder.c_str()) == 0) std::fprintf(stderr, "gc_train: removed %s, a checkpoint never completed\n", folder.c_str());
  }
}

std::string metrics_history_source(const TrainOptions& o) {
  if (o.resume_path.empty()) return std::string();
  return run_folder_of(o.resume_path) + "/metrics.jsonl";
}

MetricsLog::MetricsLog(const std::string& out_dir, const std::string& history_source, int start_step)
    : path_(out_dir + "/metrics.jsonl") {
  make_directories(out_dir);
  // The records of the steps before the checkpoint, once, in order; a torn last
  // line of an interrupted run is dropped.
  std::ostringstream kept;
  if (!history_source.empty() && start_step > 0) {
    std::ifstream previous(history_source);
    std::string line;
    int64_t next_step = 1;
    while (std::getline(previous, line)) {
      try {
        const json::Value v = json::Value::parse(line);
        const json::Value* step = v.find("step");
        if (step && step->as_int() == next_step && next_step <= start_step) {
          kept << line << "\n";
          ++next_step;
        }
      } catch (const std::exception&) {
      }
    }
  }
  write_file_atomic(path_, kept.str());
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw std::runtime_error("cannot append to " + path_ + ": " + errno_text());
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::append_eval(const Trainer& t, const EvalResult& eval) {
  if (eval.lead_hours.empty()) return;
  json::Value line = json::Value::object();
  line["step"] = t.completed_steps();
  line["eval"] = t.report(&eval).at("eval");
  const std::string text = line.dump() + "\n";
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
    throw std::runtime_error("cannot append to " + path_ + ": " + errno_text());
}

void MetricsLog::append(const StepRecord& r) {
  json::Value line = json::Value::object();
  line["step"] = r.step + 1;
  line["loss"] = r.loss;
  line["lr"] = r.lr;
  line["grad_norm"] = r.grad_norm;
  line["ms"] = r.ms;
  line["skipped"] = r.skipped;
  const std::string text = line.dump() + "\n";
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
    throw std::runtime_error("cannot append to " + path_ + ": " + errno_text());
}

void write_outputs(Trainer& t, const EvalResult* eval) {
  const TrainOptions& o = t.options();
  const bool real = o.device != Device::meta;
  std::string out = o.out_dir;
  if (real) {
    make_directories(out);
    t.save_checkpoint(out);
    write_pictures(t, eval, out);
  }
  const std::string table = memory_table(o.device, t.memory().stats, t.memory().top_live, t.memory().by_label,
                                         t.memory().outside_allocator);
  if (!o.quiet) std::fprintf(stderr, "%s", table.c_str());
  if (o.profile && t.profiled_steps() > 0)
    std::fprintf(stderr, "%s", time_table(t.profile_sum(), t.profiled_steps(), t.profiled_wall_ms()).c_str());
  if (!o.quiet && o.device == Device::meta && t.profiled_steps() > 0)
    std::fprintf(stderr, "%s", traffic_table(t.last_step_profile(), o.card).c_str());
  if (!o.quiet && t.weather())
    std::fprintf(stderr,
                 "  host memory of the data reader: %s (%d buffers of a micro-batch's frames and TOA radiation; "
                 "in the cpu allocator's `input`, label data.prefetch)\n"
                 "  steps that waited for the reader: %lld, %.1f ms in all\n",
                 format_bytes(t.host_data_bytes()).c_str(), o.prefetch_slots, static_cast<long long>(t.data_waits()),
                 t.data_wait_seconds() * 1e3);
  if (eval && !eval->lead_hours.empty()) std::printf("%s", evaluation_table(*eval).c_str());
  if (!o.report_path.empty()) write_file_atomic(o.report_path, t.report(eval).dump(2) + "\n");
  if (!o.quiet && real) std::fprintf(stderr, "gc_train: wrote %s/ (metrics.jsonl, checkpoint, pictures)\n", out.c_str());
}

void start_trace_if_asked(Trainer& t) {
  const TrainOptions& o = t.options();
  if (!o.trace_path.empty() || !o.trace_png.empty()) trace_begin(o.device);
}

void finish_trace_if_asked(Trainer& t) {
  const TrainOptions& o = t.options();
  if ((o.trace_path.empty() && o.trace_png.empty()) || !trace_recording()) return;
  trace_end(o.device, o.trace_path, o.trace_png);
}

}  // namespace gc
