// setup.cpp: prepare_run (see setup.h).
#include "tools/train/setup.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "kernels/collectives.h"
#include "runtime/allocator.h"
#include "tools/data/swe_transform.h"
#include "tools/io/atomic_file.h"
#include "tools/io/graph_file.h"
#include "tools/train/predict.h"

namespace gc {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Host memory the kernel reports as available (MemAvailable), or -1 if unknown.
int64_t available_host_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return -1;
}

// Refuses, before allocating, host structures larger than the machine holds.
void check_host_memory(const std::string& what, double bytes) {
  const int64_t available = available_host_bytes();
  if (available > 0 && bytes > static_cast<double>(available))
    throw UsageError(what + " needs about " + format_bytes(static_cast<int64_t>(std::min(bytes, 9e18))) +
                     " of host memory; this machine has " + format_bytes(available) + " available");
}

double swe_dataset_bytes(const data::SweDatasetConfig& dc) {
  int nlat = 0, nlon = 0;
  data::SphericalTransform::default_grid(dc.truncation, nlat, nlon);
  return static_cast<double>(dc.total_trajectories()) * dc.frames_per_trajectory * nlat * nlon * data::kSweChannels *
         sizeof(float);
}

// The demo data set, with the model's input and output widths resolved from it.
std::shared_ptr<const data::SweDataset> load_demo_data(TrainOptions* options) {
  data::SweDatasetConfig dc;
  dc.truncation = options->data_truncation;
  if (options->data_trajectories > 0) {
    dc.train_trajectories = options->data_trajectories;
    dc.validation_trajectories = std::max(2, options->data_trajectories / 8);
    dc.test_trajectories = std::max(2, options->data_trajectories / 8);
  }
  if (options->data_frames > 0) dc.frames_per_trajectory = options->data_frames;
  check_host_memory("the demo data set (" + std::to_string(dc.total_trajectories()) + " trajectories x " +
                        std::to_string(dc.frames_per_trajectory) + " frames at T" + std::to_string(dc.truncation) + ")",
                    swe_dataset_bytes(dc));
  const std::string cache = options->data_cache.empty() ? std::string("runs/data-cache") : options->data_cache;
  make_directories(cache);
  auto data = std::make_shared<const data::SweDataset>(
      data::load_or_generate_swe_dataset(dc, cache, 0, !options->quiet));
  const int64_t data_channels = 2 * data::kSweChannels;
  if (options->in_channels == 0) options->in_channels = data_channels + 3;
  if (options->out_channels == 0) options->out_channels = data::kSweChannels;
  if (options->in_channels != data_channels + 3 || options->out_channels != data::kSweChannels)
    throw UsageError("the demo data has " + std::to_string(data_channels) + " input channels (+3 structural = " +
                     std::to_string(data_channels + 3) + ") and " + std::to_string(data::kSweChannels) +
                     " outputs; --in-channels/--out-channels (or --init-from's checkpoint) cannot change that");
  if (data->frames() < options->rollout + 3)
    throw UsageError("--rollout " + std::to_string(options->rollout) + " is longer than the trajectories allow");
  return data;
}

// --data: the weather data set and GraphCast's task on it, with the model's
// input and output widths resolved from it.
std::shared_ptr<const data::WeatherTask> load_weather_task(TrainOptions* options) {
  std::shared_ptr<const data::WeatherDataset> dataset;
  try {
    dataset = std::make_shared<const data::WeatherDataset>(data::open_weather_dataset(options->data_dir));
  } catch (const data::WeatherDataError& e) {
    throw UsageError(std::string("--data: ") + e.what());
  }
  auto task = std::make_shared<const data::WeatherTask>(
      data::make_weather_task(dataset, options->train_years, options->valid_years));
  const int64_t inputs = task->input_channels() + 3, outputs = task->channels();
  if (options->in_channels == 0) options->in_channels = inputs;
  if (options->out_channels == 0) options->out_channels = outputs;
  if (options->in_channels != inputs || options->out_channels != outputs)
    throw UsageError("the weather data's task has " + std::to_string(inputs) + " inputs (with the 3 structural) and " +
                     std::to_string(outputs) + " outputs; --in-channels/--out-channels (or --init-from's checkpoint) "
                     "cannot change that");
  if (task->sample_starts(task->train, options->rollout).empty())
    throw UsageError("--rollout " + std::to_string(options->rollout) + " needs " + std::to_string(options->rollout + 2) +
                     " consecutive training times; the training range holds " + std::to_string(task->train.count()));
  if (!options->quiet)
    for (const std::string& note : task->notes) std::fprintf(stderr, "gc_train: --data: %s\n", note.c_str());
  return task;
}

}  // namespace

RunSetup prepare_run(const TrainOptions& options, const RunSetup* reuse) {
  const auto start = std::chrono::steady_clock::now();
  RunSetup setup;
  setup.options = options;
  TrainOptions& o = setup.options;
  if (o.device == Device::meta) set_meta_target(o.meta_target);
  // Data parallel: this rank's share of the step's --batch samples (the first
  // batch % ranks ranks take one more); everything below is built for the share.
  // Model parallel: the Q shards of a replica share its samples.
  o.global_batch = o.batch;
  o.batch_offset = 0;
  if (o.model_parallel > 1 && o.ranks == 1)
    throw UsageError("--model-parallel " + std::to_string(o.model_parallel) + " shards each sample over " +
                     std::to_string(o.model_parallel) + " ranks: launch with mpirun -np " +
                     std::to_string(o.model_parallel) + " (or a multiple: replicas of " +
                     std::to_string(o.model_parallel) + " shards), or predict every rank's memory with --device meta");
  if (o.model_parallel < 1 || o.ranks % o.model_parallel != 0)
    throw UsageError("--model-parallel " + std::to_string(o.model_parallel) + " does not divide the " +
                     std::to_string(o.ranks) + " ranks");
  if (o.replicas() > 1) {
    if (o.batch < o.replicas())
      throw UsageError("--batch " + std::to_string(o.batch) + " over " + std::to_string(o.replicas()) +
                       " data-parallel replicas: every replica needs at least one sample; use --batch " +
                       std::to_string(o.replicas()) + " or more (with --accum to keep the memory of a smaller batch)");
    const std::vector<int64_t> shares = kernels::balanced_counts(o.batch, o.replicas());
    for (int r = 0; r < o.replica(); ++r) o.batch_offset += static_cast<int>(shares[static_cast<size_t>(r)]);
    o.batch = static_cast<int>(shares[static_cast<size_t>(o.replica())]);
  }
  if (o.device == Device::cuda) {
    std::string why;
    if (!cuda_available(&why)) throw std::runtime_error("--device cuda: " + why);
  }
  model::GeometryOptions geometry_options;
  if (!o.init_from.empty() && !reuse) {
    // The model comes from the file, not from flags.
    try {
      setup.init_from = std::make_shared<const DeepMindCheckpoint>(load_deepmind_checkpoint(o.init_from));
    } catch (const std::runtime_error& e) {
      throw UsageError(std::string("--init-from: ") + e.what());
    }
    const model::GraphCastConfig c = setup.init_from->graphcast_config();
    o.mesh_level = c.mesh_level;
    o.latent = c.latent;
    o.layers = c.layers;
    o.in_channels = c.in_channels;
    o.out_channels = c.out_channels;
    if (!o.has_data() && !o.has_weather_data()) o.grid_deg = setup.init_from->model.resolution;
    geometry_options = setup.init_from->geometry_options();
  }
  model::Grid grid;
  if (reuse) {
    setup.weather = reuse->weather;
    setup.data = reuse->data;
    setup.init_from = reuse->init_from;
    setup.geometry = reuse->geometry;
    setup.partition = reuse->partition;
    o.in_channels = reuse->options.in_channels;
    o.out_channels = reuse->options.out_channels;
    o.mesh_level = reuse->options.mesh_level;
    o.latent = reuse->options.latent;
    o.layers = reuse->options.layers;
  } else if (o.has_weather_data()) {
    setup.weather = load_weather_task(&o);
    const data::WeatherDataset& d = *setup.weather->data;
    grid = model::make_grid_from_latitudes(d.latitudes_deg, d.n_lon(), setup.weather->latitude_weight);
  } else if (o.has_data()) {
    setup.data = load_demo_data(&o);
    grid = model::make_grid_from_latitudes(setup.data->latitudes_deg, setup.data->nlon, setup.data->gauss_weights);
  } else {
    if (o.grid_deg <= 0) throw UsageError("preset " + o.preset + " needs --grid DEG");
    grid = model::make_equiangular_grid(o.grid_deg);
  }
  const auto graph_start = std::chrono::steady_clock::now();
  GraphFile graphs;
  if (!reuse && !o.graphs_path.empty()) {
    try {
      graphs = load_graph_file(o.graphs_path, grid, model::build_mesh_hierarchy(o.mesh_level).back());
    } catch (const std::runtime_error& e) {
      throw UsageError(std::string("--graphs: ") + e.what());
    }
    geometry_options.g2m = &graphs.g2m;
    geometry_options.mesh = &graphs.mesh;
    geometry_options.m2g = &graphs.m2g;
  }
  if (!reuse)
    setup.geometry = std::make_shared<const model::GraphCastGeometry>(model::build_geometry(grid, o.mesh_level, geometry_options));
  if (o.model_parallel > 1) {
    try {
      if (!setup.partition)
        setup.partition = std::make_shared<const model::Partition>(model::partition_geometry(*setup.geometry, o.model_parallel, o.layers));
      setup.shard = std::make_shared<const model::GeometryShard>(
          model::shard_geometry(*setup.geometry, *setup.partition, o.shard()));
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }
  setup.graph_seconds = seconds_since(graph_start);
  if (o.device != Device::meta) {
    // Parameters are initialized through a host buffer of the largest weight
    // (doubles); on the cpu the step's bytes are host memory too: parameters,
    // gradients and AdamW's two moments at least (the dry run has the rest).
    const double L = static_cast<double>(o.latent);
    const double largest = 8.0 * std::max({static_cast<double>(o.in_channels) * L, 3.0 * L * L,
                                           L * static_cast<double>(o.out_channels)});
    const double parameters = (2.0 * o.layers + 12.0) * 3.0 * L * L;  // a lower bound: the MLPs' square weights
    check_host_memory("--latent " + std::to_string(o.latent) + " with " + std::to_string(o.layers) + " layers",
                      largest + (o.device == Device::cpu ? 16.0 * parameters : 0.0));
  }
  const model::GraphCastGeometry& g = *setup.geometry;
  {
    // The batch's graphs are replicas indexed in 32 bits, built on the host (on
    // every device, meta included): indices, orders, offsets and edge features.
    const double batch = o.batch;
    double edges = 0;
    for (const model::Graph* graph : {&g.g2m, &g.mesh, &g.m2g}) {
      const double replicated = std::max({static_cast<double>(graph->num_edges()),
                                          static_cast<double>(graph->num_senders),
                                          static_cast<double>(graph->num_receivers)}) * batch;
      if (replicated > 2147483647.0)
        throw UsageError("--batch " + std::to_string(o.batch) + ": the batch's graphs would hold " +
                         std::to_string(static_cast<long long>(std::min(replicated, 9e18))) +
                         " edges or nodes in one graph; gc indexes them in 32 bits (at most 2147483647)");
      edges += static_cast<double>(graph->num_edges()) * batch;
    }
    check_host_memory("--batch " + std::to_string(o.batch) + " (the batch's graphs)", edges * (6 * 4 + 16));
  }
  const model::Graph& g2m = setup.shard ? setup.shard->g2m.graph : g.g2m;
  const model::Graph& m2g = setup.shard ? setup.shard->m2g.graph : g.m2g;
  const int blocks = std::min(model::edge_blocks_for(g2m.num_edges() * o.batch, g2m.num_receivers * o.batch),
                              model::edge_blocks_for(m2g.num_edges() * o.batch, m2g.num_receivers * o.batch));
  if (o.edge_chunks > blocks)
    throw UsageError("--edge-chunks " + std::to_string(o.edge_chunks) + ": this graph's encoder and decoder edges are "
                     "computed in " + std::to_string(blocks) + " fixed blocks, which chunks group: use 1.." +
                     std::to_string(blocks));
  setup.plan = resolve_remat_plan(setup);
  o.edge_chunks = setup.plan.edge_chunks;
  setup.seconds = seconds_since(start);
  return setup;
}

}  // namespace gc
