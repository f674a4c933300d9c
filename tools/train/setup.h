// setup.h: what a run decides before anything is allocated on the device:
// its data, its graphs and its rematerialization plan (--remat auto's dry runs
// included). The trainer and every dry run of the same configuration share it,
// so no dry run loads the data or builds the graphs again.
#pragma once

#include <memory>

#include "model/graphcast.h"
#include "model/partition.h"
#include "runtime/communicator.h"
#include "tools/data/swe_dataset.h"
#include "tools/data/weather_task.h"
#include "tools/io/deepmind_checkpoint.h"
#include "tools/memory/dry_run.h"
#include "tools/train/options.h"

namespace gc {

struct RunSetup {
  TrainOptions options;                               // data-defined fields filled in
  std::shared_ptr<const data::SweDataset> data;       // demo data; null for the random-input presets
  std::shared_ptr<const data::WeatherTask> weather;   // --data: GraphCast's task on weather data
  std::shared_ptr<const model::GraphCastGeometry> geometry;
  std::shared_ptr<const DeepMindCheckpoint> init_from;  // --init-from: its weights start the run
  // --model-parallel Q > 1: how the geometry is cut, and this rank's shard of it.
  std::shared_ptr<const model::Partition> partition;
  std::shared_ptr<const model::GeometryShard> shard;
  RematPlan plan;                                     // with options.edge_chunks == plan.edge_chunks
  // The ranks of a data-parallel run (options.ranks of them; this process is
  // options.rank): mpirun's world, or a meta communicator for a dry run of one
  // rank. Null: a single process.
  Communicator* comm = nullptr;
  double seconds = 0, graph_seconds = 0;              // set-up time (graphs included), graph building
};

// Loads the data (resolving --in-channels/--out-channels from it), builds the
// graphs and resolves --remat (auto: dry runs on meta). Throws UsageError for
// settings the data or the budget cannot take.
// `reuse` (another rank's setup of the same run, for a dry run of several
// ranks) lends its data, graphs and partition instead of building them again.
RunSetup prepare_run(const TrainOptions& options, const RunSetup* reuse = nullptr);

}  // namespace gc
