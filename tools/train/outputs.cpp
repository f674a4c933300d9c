// outputs.cpp: printing and writing the results of a training run. Everything
// written to --out goes through write_file_atomic, so an interrupted run never
// leaves a half-written file behind.
#include "tools/train/outputs.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tools/io/atomic_file.h"
#include "tools/memory/memory_report.h"
#include "tools/memory/trace.h"
#include "tools/train/pictures.h"

namespace gc {

void print_setup_summary(const Trainer& t) {
  if (t.options().quiet) return;
  const TrainOptions& o = t.options();
  const model::GraphCastGeometry& g = const_cast<Trainer&>(t).geometry();
  const model::ParameterCounts pc = const_cast<Trainer&>(t).net().parameter_counts();
  std::fprintf(stderr,
               "gc_train: preset %s on %s, %s, latent %lld x %d layers, mesh %d, batch %d, remat %s\n"
               "  grid %lld nodes (%lld x %lld), mesh %lld nodes, edges: mesh %lld, grid2mesh %lld, mesh2grid %lld\n"
               "  parameters %lld (encoder %lld, processor %lld, decoder %lld)\n",
               o.preset.c_str(), device_name(o.device), o.precision.c_str(), static_cast<long long>(o.latent), o.layers,
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
      std::snprintf(buf, sizeof buf, "  | %*s %7.3f  %7.3f  %7.3f  %5.3f", static_cast<int>(e.variables[v].size() + 1), "",
                    e.rmse_model[v][k], e.rmse_persistence[v][k], e.rmse_climatology[v][k], e.acc_model[v][k]);
      o << buf;
    }
    o << "\n";
  }
  return o.str();
}

void write_outputs(Trainer& t, const EvalResult* eval) {
  const TrainOptions& o = t.options();
  const bool real = o.device != Device::meta;
  std::string out = o.out_dir;
  if (real) {
    make_directories(out);
    std::ostringstream metrics;
    // A resumed run keeps the records of the steps before its checkpoint.
    if (!o.resume_path.empty() && !t.history().empty()) {
      std::ifstream previous(out + "/metrics.jsonl");
      std::string line;
      while (std::getline(previous, line)) {
        try {
          const json::Value v = json::Value::parse(line);
          if (v.find("step") && v.find("step")->as_int() <= t.history().front().step) metrics << line << "\n";
        } catch (const std::exception&) {
          // a torn last line of an interrupted run is dropped
        }
      }
    }
    for (const StepRecord& r : t.history()) {
      json::Value line = json::Value::object();
      line["step"] = r.step + 1;
      line["loss"] = r.loss;
      line["lr"] = r.lr;
      line["grad_norm"] = r.grad_norm;
      line["ms"] = r.ms;
      line["skipped"] = r.skipped;
      metrics << line.dump() << "\n";
    }
    write_file_atomic(out + "/metrics.jsonl", metrics.str());
    t.save_checkpoint(out);
    write_pictures(t, eval, out);
  }
  const std::string table = memory_table(o.device, t.memory().stats, t.memory().top_live, t.memory().by_label,
                                         t.memory().outside_allocator);
  if (!o.quiet) std::fprintf(stderr, "%s", table.c_str());
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
