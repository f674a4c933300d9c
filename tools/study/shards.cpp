// gc_study shards: what graph-sharded model parallelism (gc_train
// --model-parallel Q) cuts, for a grid and mesh: per shard count, each rank's
// grid and mesh nodes, edges, and halo (the sender nodes other ranks own that
// its edges need, received before every edge update), with the bytes a rank
// receives per step at a latent width. The cut is model/partition.h's: latitude
// bands of whole grid rows, the mesh split at the same latitudes.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/partition.h"
#include "runtime/allocator.h"
#include "tools/io/atomic_file.h"
#include "tools/io/json.h"
#include "tools/study/command.h"
#include "tools/study/fit.h"
#include "tools/usage_error.h"

namespace gc::study {
namespace {

const char* kShardsUsage = R"(usage: gc_study shards [flags]

How gc_train --model-parallel Q cuts one sample's graphs: the grid into
latitude bands of whole rows holding even work (nodes and the edges they
receive, mesh edges weighted by --layers / 2), the mesh at the same latitudes; each rank keeps the edges into its own nodes and receives, before
each edge update, the senders other ranks own (its halo). Per Q: each rank's
nodes, edges and halo rows, and the bytes it receives per training step
(forward and backward, no rematerialization: one grid2mesh, `--layers` mesh
and one mesh2grid exchange each way) at --latent in fp32 and bf16.

  --grid DEG            equiangular grid spacing (default 0.25)
  --mesh N              finest mesh level (default 6)
  --shards LIST         shard counts (default 2,4,8,16)
  --latent N            latent width for the byte figures (default 512)
  --layers N            processor layers: the cut's weights and the byte figures (default 16)
  --json FILE           also write the figures as JSON
  --help                this text
)";

struct Row {
  int shards = 0;
  std::vector<model::ShardSummary> ranks;
};

int64_t halo_rows(const model::ShardSummary& s, int layers) {
  return s.g2m_halo + static_cast<int64_t>(layers) * s.mesh_halo + s.m2g_halo;
}

int run_shards(int argc, char** argv) {
  double grid_deg = 0.25;
  int mesh = 6, latent = 512, layers = 16;
  std::vector<int64_t> shard_counts = {2, 4, 8, 16};
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kShardsUsage);
      return 0;
    }
    if (flag == "--grid") {
      const std::string v = value();
      char* end = nullptr;
      grid_deg = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(grid_deg > 0)) throw UsageError("--grid needs degrees > 0, got '" + v + "'");
    } else if (flag == "--mesh") {
      mesh = static_cast<int>(parse_int_flag(flag, value(), 0, 7));
    } else if (flag == "--shards") {
      shard_counts = parse_int_list(flag, value(), 1, 4096);
    } else if (flag == "--latent") {
      latent = static_cast<int>(parse_int_flag(flag, value(), 1, 1 << 20));
    } else if (flag == "--layers") {
      layers = static_cast<int>(parse_int_flag(flag, value(), 1, 1024));
    } else if (flag == "--json") {
      json_path = value();
    } else {
      throw UsageError("unknown flag '" + flag + "' (see gc_study shards --help)");
    }
  }
  if (!json_path.empty()) check_output_file("--json", json_path);
  model::Grid grid;
  try {
    grid = model::make_equiangular_grid(grid_deg);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--grid: ") + e.what());
  }
  std::fprintf(stderr, "gc_study shards: building the graphs of the %g deg grid and mesh %d...\n", grid_deg, mesh);
  const model::GraphCastGeometry geometry = model::build_geometry(grid, mesh);
  std::printf("%g deg grid (%lld nodes), mesh %d (%lld nodes); edges: grid2mesh %lld, mesh %lld, mesh2grid %lld\n\n",
              grid_deg, static_cast<long long>(geometry.num_grid_nodes()), mesh,
              static_cast<long long>(geometry.num_mesh_nodes()), static_cast<long long>(geometry.g2m.num_edges()),
              static_cast<long long>(geometry.mesh.num_edges()), static_cast<long long>(geometry.m2g.num_edges()));
  std::printf("    Q  rank  grid nodes  mesh nodes  g2m edges  mesh edges  m2g edges   halo: g2m   mesh   m2g"
              "   received/step fp32    bf16\n");
  std::vector<Row> rows;
  for (int64_t q : shard_counts) {
    Row row;
    row.shards = static_cast<int>(q);
    model::Partition partition;
    try {
      partition = model::partition_geometry(geometry, row.shards, layers);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    for (int r = 0; r < row.shards; ++r) {
      const model::ShardSummary s = model::summarize(model::shard_geometry(geometry, partition, r));
      row.ranks.push_back(s);
      // Each halo row goes forward once and its gradient comes back once.
      const double bytes = 2.0 * static_cast<double>(halo_rows(s, layers)) * latent;
      std::printf("%5d  %4d  %10lld  %10lld  %9lld  %10lld  %9lld  %10lld  %5lld  %4lld  %19s  %6s\n", row.shards, r,
                  static_cast<long long>(s.grid_nodes), static_cast<long long>(s.mesh_nodes),
                  static_cast<long long>(s.g2m_edges), static_cast<long long>(s.mesh_edges),
                  static_cast<long long>(s.m2g_edges), static_cast<long long>(s.g2m_halo),
                  static_cast<long long>(s.mesh_halo), static_cast<long long>(s.m2g_halo),
                  format_bytes(static_cast<int64_t>(bytes * 4)).c_str(), format_bytes(static_cast<int64_t>(bytes * 2)).c_str());
    }
    std::printf("\n");
    rows.push_back(row);
  }
  if (!json_path.empty()) {
    json::Value out = json::Value::object();
    out["grid_deg"] = grid_deg;
    out["mesh"] = mesh;
    out["latent"] = latent;
    out["layers"] = layers;
    json::Value list = json::Value::array();
    for (const Row& row : rows) {
      json::Value q = json::Value::object();
      q["shards"] = row.shards;
      json::Value ranks = json::Value::array();
      for (const model::ShardSummary& s : row.ranks) {
        json::Value v = json::Value::object();
        v["rank"] = s.rank;
        v["grid_nodes"] = s.grid_nodes;
        v["mesh_nodes"] = s.mesh_nodes;
        v["g2m_edges"] = s.g2m_edges;
        v["mesh_edges"] = s.mesh_edges;
        v["m2g_edges"] = s.m2g_edges;
        v["g2m_halo"] = s.g2m_halo;
        v["mesh_halo"] = s.mesh_halo;
        v["m2g_halo"] = s.m2g_halo;
        ranks.push_back(v);
      }
      q["ranks"] = ranks;
      list.push_back(q);
    }
    out["partitions"] = list;
    write_file_atomic(json_path, out.dump(2) + "\n");
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace

GC_STUDY_COMMAND("shards", "--model-parallel's cut of a grid and mesh: nodes, edges and halo per rank", run_shards);

}  // namespace gc::study
