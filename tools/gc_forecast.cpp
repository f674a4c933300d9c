// gc_forecast: GraphCast forecasts from DeepMind's checkpoints (or converted
// ones) for N autoregressive steps, without a tape (see --help). Exit codes: 0
// done, 1 runtime error, 2 bad usage, 3 out of memory.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "runtime/allocator.h"                     // allocator_for, OutOfMemory
#include "tools/forecast/converted_checkpoint.h"   // load_forecast_checkpoint, --convert-to
#include "tools/forecast/forecast_maps.h"          // PNG maps
#include "tools/forecast/forecast_options.h"       // ForecastOptions, parse_forecast_options
#include "tools/forecast/predictor.h"              // the predictor
#include "tools/io/atomic_file.h"                  // make_directories, write_file_atomic
#include "tools/io/graph_file.h"                   // --graphs
#include "tools/io/json.h"                         // --report
#include "tools/io/safetensors.h"                  // the forecast file
#include "tools/memory/memory_report.h"            // oom_explanation
#include "tools/memory/trace.h"                    // --trace
#include "tools/train/cpu_share.h"                  // threads on a shared machine
#include "tools/usage_error.h"

using namespace gc;
using namespace gc::forecast;

namespace {

std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

json::Value categories_json(const std::array<int64_t, kNumCategories>& bytes) {
  json::Value v = json::Value::object();
  for (int c = 0; c < kNumCategories; ++c) v[category_name(static_cast<Category>(c))] = bytes[static_cast<size_t>(c)];
  return v;
}

int run(const ForecastOptions& o) {
  const DeepMindCheckpoint checkpoint = load_forecast_checkpoint(o.checkpoint);
  if (!o.convert_to.empty()) {
    save_converted_checkpoint(checkpoint, o.convert_to);
    if (!o.quiet) std::printf("gc_forecast: wrote %s (%s)\n", o.convert_to.c_str(), checkpoint.description.c_str());
    return 0;
  }
  if (o.device == Device::meta) set_meta_target(o.meta_target);
  if (o.device == Device::cuda) {
    std::string why;
    if (!cuda_available(&why)) throw std::runtime_error("--device cuda: " + why);
  }
  const DeepMindTaskConfig& task = checkpoint.task;
  const Statistics statistics = load_statistics(o.stats, task);
  const ForecastInputs inputs = load_inputs(o.inputs, task);
  const ForecastForcings forcings =
      o.forcings.empty() ? compute_forcings(task, inputs, o.steps) : load_forcings(o.forcings, task, inputs);
  const model::Grid grid = grid_of(inputs);
  model::GeometryOptions geometry_options = checkpoint.geometry_options();
  GraphFile graphs;
  if (!o.graphs.empty()) {
    try {
      graphs = load_graph_file(o.graphs, grid, model::build_mesh_hierarchy(checkpoint.model.mesh_size).back());
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
    geometry_options.g2m = &graphs.g2m;
    geometry_options.mesh = &graphs.mesh;
    geometry_options.m2g = &graphs.m2g;
  }
  for (const PlotRequest& p : o.plots) {
    if (std::find(task.target_variables.begin(), task.target_variables.end(), p.variable) == task.target_variables.end())
      throw UsageError("--plot: '" + p.variable + "' is not a target variable of this model");
    if (p.level >= 0 && std::find(task.pressure_levels.begin(), task.pressure_levels.end(), p.level) == task.pressure_levels.end())
      throw UsageError("--plot: the model has no level " + std::to_string(p.level) + " hPa");
  }
  if (o.device != Device::meta) make_directories(folder_of(o.out));
  auto geometry = std::make_shared<const model::GraphCastGeometry>(
      model::build_geometry(grid, checkpoint.model.mesh_size, geometry_options));

  CachingAllocator& allocator = allocator_for(o.device);
  allocator.reset_peak();
  if (!o.trace_path.empty() || !o.trace_png.empty()) trace_begin(o.device);
  std::vector<double> step_ms;
  Predictions predictions;
  int64_t parameters = 0;
  {
    const Predictor predictor(checkpoint, statistics, geometry, o.compute_dtype(), o.device);
    parameters = predictor.net().parameter_counts().total();
    auto last = std::chrono::steady_clock::now();
    predictions = predictor.rollout(inputs, forcings, o.steps, [&](int step) {
      const auto now = std::chrono::steady_clock::now();
      step_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
      last = now;
      if (!o.quiet) std::printf("gc_forecast: step %d (+%d h) %.1f ms\n", step + 1, 6 * (step + 1), step_ms.back());
    });
  }
  if (!o.trace_path.empty() || !o.trace_png.empty()) trace_end(o.device, o.trace_path, o.trace_png);
  const AllocatorStats stats = allocator.stats();
  std::vector<double> sorted = step_ms;
  std::sort(sorted.begin(), sorted.end());
  const double median_ms = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
  if (!o.quiet) {
    std::printf("gc_forecast: %s, %lld parameters, %d steps on %s (%s): peak %lld B allocated, %lld B reserved (%s)\n",
                checkpoint.path.c_str(), static_cast<long long>(parameters), o.steps, device_name(o.device),
                o.precision.c_str(), static_cast<long long>(stats.peak_allocated),
                static_cast<long long>(stats.peak_reserved), stats.peak_label.c_str());
    for (int c = 0; c < kNumCategories; ++c)
      if (stats.at_peak[static_cast<size_t>(c)] > 0)
        std::printf("  at the peak: %-16s %lld B\n", category_name(static_cast<Category>(c)),
                    static_cast<long long>(stats.at_peak[static_cast<size_t>(c)]));
  }

  if (o.device != Device::meta) {
    const int64_t n_lat = static_cast<int64_t>(inputs.lat.size()), n_lon = static_cast<int64_t>(inputs.lon.size());
    std::vector<std::pair<std::string, Tensor>> tensors;
    {
      MemoryScope scope(Category::input, "forecast.output");
      for (const ChannelGroup& g : output_channel_groups(task)) {
        Shape shape = {o.steps, n_lat, n_lon};
        if (is_atmospheric_variable(g.variable)) shape.insert(shape.begin() + 1, g.levels);
        tensors.emplace_back(g.variable, Tensor::from_host(predictions.at(g.variable).data(), shape, DType::f32, Device::cpu));
      }
    }
    std::vector<std::pair<std::string, std::string>> metadata = {{"gc.checkpoint", checkpoint.path},
                                                                 {"gc.steps", std::to_string(o.steps)}};
    std::string levels;
    for (int l : task.pressure_levels) levels += (levels.empty() ? "" : ",") + std::to_string(l);
    metadata.emplace_back("gc.levels", levels);
    save_safetensors(o.out, tensors, metadata);
    if (!o.quiet) std::printf("gc_forecast: wrote %s\n", o.out.c_str());
    const std::string plot_dir = o.plot_dir.empty() ? folder_of(o.out) : o.plot_dir;
    if (!o.plots.empty()) make_directories(plot_dir);
    for (const PlotRequest& p : o.plots) {
      const bool atmospheric = is_atmospheric_variable(p.variable);
      const int level_index = !atmospheric || p.level < 0 ? 0
          : static_cast<int>(std::find(task.pressure_levels.begin(), task.pressure_levels.end(), p.level) -
                             task.pressure_levels.begin());
      const int levels_count = atmospheric ? static_cast<int>(task.pressure_levels.size()) : 1;
      const size_t field = static_cast<size_t>(n_lat * n_lon);
      std::vector<float> values;
      const std::vector<float>& all = predictions.at(p.variable);
      for (int s = 0; s < o.steps; ++s) {
        const size_t at = (static_cast<size_t>(s) * levels_count + static_cast<size_t>(level_index)) * field;
        values.insert(values.end(), all.begin() + static_cast<long>(at), all.begin() + static_cast<long>(at + field));
      }
      std::string name = p.variable;
      if (atmospheric) name += "_" + std::to_string(task.pressure_levels[static_cast<size_t>(level_index)]) + "hPa";
      const std::string path = plot_dir + "/forecast_" + name + ".png";
      write_forecast_map(path, "GraphCast forecast of " + name + " (" + std::to_string(o.steps) + " steps of 6 h)", values,
                         o.steps, inputs.lat, static_cast<int>(n_lon), 6);
      if (!o.quiet) std::printf("gc_forecast: wrote %s\n", path.c_str());
    }
  }

  if (!o.report_path.empty()) {
    json::Value r = json::Value::object();
    json::Value c = json::Value::object();
    c["checkpoint"] = o.checkpoint;
    c["mesh_level"] = checkpoint.model.mesh_size;
    c["latent"] = checkpoint.model.latent_size;
    c["layers"] = checkpoint.model.gnn_msg_steps;
    c["in_channels"] = checkpoint.graphcast_config().in_channels;
    c["out_channels"] = checkpoint.graphcast_config().out_channels;
    c["steps"] = o.steps;
    c["precision"] = o.precision;
    c["device"] = device_name(o.device);
    c["graphs"] = o.graphs.empty() ? std::string("gc") : o.graphs;
    r["config"] = c;
    json::Value g = json::Value::object();
    g["grid_nodes"] = geometry->num_grid_nodes();
    g["mesh_nodes"] = geometry->num_mesh_nodes();
    g["mesh_edges"] = geometry->mesh.num_edges();
    g["g2m_edges"] = geometry->g2m.num_edges();
    g["m2g_edges"] = geometry->m2g.num_edges();
    r["graph"] = g;
    json::Value params = json::Value::object();
    params["total"] = parameters;
    r["params"] = params;
    json::Value m = json::Value::object();
    m["device"] = device_name(o.device);
    m["peak_allocated"] = stats.peak_allocated;
    m["peak_reserved"] = stats.peak_reserved;
    m["at_peak"] = categories_json(stats.at_peak);
    m["peak_label"] = stats.peak_label;
    r["memory"] = m;
    json::Value t = json::Value::object();
    t["steps"] = o.steps;
    t["step_ms_median"] = median_ms;
    r["timing"] = t;
    write_file_atomic(o.report_path, r.dump(1) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ForecastOptions options;
  try {
    std::string help;
    if (!parse_forecast_options(std::vector<std::string>(argv + 1, argv + argc), &options, &help)) {
      std::printf("%s", help.c_str());
      return 0;
    }
    // On a shared machine, the cores other processes leave (OMP_NUM_THREADS wins).
    if (std::getenv("OMP_NUM_THREADS") == nullptr) omp_set_num_threads(threads_for_shared_cores(omp_get_num_procs()));
    return run(options);
  } catch (const OutOfMemory& oom) {
    std::fprintf(stderr, "gc_forecast: %s", oom_explanation(oom, 0).c_str());
    return 3;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "gc_forecast: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gc_forecast: error: %s\n", e.what());
    return 1;
  }
}
